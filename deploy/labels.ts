/**
 * Names and labels of every generated object. All objects carry the recommended
 * `app.kubernetes.io/*` labels, so cleanup selects exactly ours with {@linkcode ownedSelector}.
 *
 * @module
 */
import type { DeploymentConfig } from "./config.ts";

/** Label keys. */
export const LABEL = {
  name: "app.kubernetes.io/name",
  instance: "app.kubernetes.io/instance",
  partOf: "app.kubernetes.io/part-of",
  component: "app.kubernetes.io/component",
  managedBy: "app.kubernetes.io/managed-by",
} as const;

/** Value of `app.kubernetes.io/part-of` on every object. */
export const PART_OF = "ttg";
/** Value of `app.kubernetes.io/managed-by` on every object. */
export const MANAGED_BY = "ttg-deploy";

/** What an object is for (`app.kubernetes.io/component`). */
export type Component =
  | "namespace"
  | "broker"
  | "worker"
  | "exporter"
  | "dashboard"
  | "monitoring"
  | "submit"
  | "static"
  | "report"
  | "network-policy"
  | "autoscaler";

/** Components that make up one run of a job (deleted before a new run is deployed). */
export const RUN_COMPONENTS: readonly Component[] = ["submit", "worker", "static", "report"];

/** The application an object belongs to (`app.kubernetes.io/name`). */
export type AppName = "ttg" | "redis" | "rabbitmq";

/** Labels that identify pods of a component (used as selectors; never change them). */
export function selectorLabels(
  config: Pick<DeploymentConfig, "name">,
  component: Component,
  app: AppName = "ttg",
): Record<string, string> {
  return { [LABEL.name]: app, [LABEL.instance]: config.name, [LABEL.component]: component };
}

/**
 * Every label of an object: its selector labels plus part-of and managed-by.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { labels, LABEL } from "./labels.ts";
 * const l = labels({ name: "ttg" }, "broker", "redis");
 * assert.equal(l[LABEL.managedBy], "ttg-deploy");
 * assert.equal(l[LABEL.name], "redis");
 * ```
 */
export function labels(
  config: Pick<DeploymentConfig, "name">,
  component: Component,
  app: AppName = "ttg",
): Record<string, string> {
  return {
    ...selectorLabels(config, component, app),
    [LABEL.partOf]: PART_OF,
    [LABEL.managedBy]: MANAGED_BY,
  };
}

/**
 * The label selector of every object TTG's deploy generated, optionally of one instance.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ownedSelector } from "./labels.ts";
 * assert.equal(
 *   ownedSelector(),
 *   "app.kubernetes.io/managed-by=ttg-deploy,app.kubernetes.io/part-of=ttg",
 * );
 * ```
 */
export function ownedSelector(instance?: string): string {
  const parts = [`${LABEL.managedBy}=${MANAGED_BY}`, `${LABEL.partOf}=${PART_OF}`];
  if (instance) parts.push(`${LABEL.instance}=${instance}`);
  return parts.join(",");
}

/** The selector of one component's objects of one instance. */
export function componentSelector(instance: string, ...components: readonly Component[]): string {
  const component = components.length === 1
    ? `${LABEL.component}=${components[0]}`
    : `${LABEL.component} in (${components.join(",")})`;
  return `${ownedSelector(instance)},${component}`;
}

/** Stable names of the objects of a deployment. */
export interface Names {
  readonly namespace: string;
  readonly redis: string;
  readonly redisSecret: string;
  readonly rabbitmq: string;
  readonly rabbitmqSecret: string;
  readonly rabbitmqTls: string;
  readonly worker: string;
  /** The fleet's Deployment (and its ScaledObject), fleet mode. */
  readonly fleet: string;
  readonly submit: string;
  readonly static: string;
  readonly report: string;
  readonly networkPolicy: string;
  readonly kedaAuth: string;
  readonly exporter: string;
  readonly podMonitor: string;
  readonly alertRules: string;
  readonly dashboard: string;
  /** The web dashboard's Deployment and Service (`ttg dashboard`). */
  readonly webDashboard: string;
  /** The Secret generated with the web dashboard's token. */
  readonly webDashboardToken: string;
}

/** The names of a deployment's objects, all prefixed with its name. */
export function names(config: Pick<DeploymentConfig, "name" | "namespace">): Names {
  const n = config.name;
  return {
    namespace: config.namespace,
    redis: `${n}-redis`,
    redisSecret: `${n}-redis-auth`,
    rabbitmq: `${n}-rabbitmq`,
    rabbitmqSecret: `${n}-rabbitmq-auth`,
    rabbitmqTls: `${n}-rabbitmq-tls`,
    worker: `${n}-worker`,
    fleet: `${n}-fleet`,
    submit: `${n}-submit`,
    static: `${n}-static`,
    report: `${n}-report`,
    networkPolicy: `${n}-broker-ingress`,
    kedaAuth: `${n}-keda-auth`,
    exporter: `${n}-exporter`,
    podMonitor: `${n}-metrics`,
    alertRules: `${n}-alerts`,
    dashboard: `${n}-grafana-dashboard`,
    webDashboard: `${n}-dashboard`,
    webDashboardToken: `${n}-dashboard-token`,
  };
}

/** DNS name of a Service, reachable from any namespace and any cluster domain. */
export function serviceHost(service: string, namespace: string): string {
  return `${service}.${namespace}.svc`;
}
