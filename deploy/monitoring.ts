/**
 * The Prometheus Operator's resources (monitoring.coreos.com/v1), generated when
 * `observability.prometheusOperator` names one: a ServiceMonitor on the exporter's Service, or
 * a PodMonitor on the worker pods and the exporter; with either, a PrometheusRule with the
 * alert rules of deploy/alerts.ts. They are not in kubernetes-models, so they are typed here
 * with their own validation (like KEDA's, deploy/keda.ts), and
 * {@linkcode monitorReferenceProblems} checks that each monitor selects a generated object
 * that declares the port it scrapes.
 *
 * @module
 */
import { alertGroups, type RuleGroup } from "./alerts.ts";
import type { DeploymentConfig } from "./config.ts";
import { type CustomResourceMetadata, metadataProblems, throwIfAny } from "./custom_resource.ts";
import { LABEL, labels, names, selectorLabels } from "./labels.ts";
import { METRICS_PATHS, METRICS_PORT_NAME } from "./metrics.ts";
import { describe, type KubeObject } from "./object.ts";
import type { Problem } from "./problems.ts";

/** API version of the Prometheus Operator's resources. */
export const MONITORING_API_VERSION = "monitoring.coreos.com/v1";

/** A label selector (matchLabels and matchExpressions, all of which must hold). */
export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly {
    readonly key: string;
    readonly operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
    readonly values?: readonly string[];
  }[];
}

/** One scrape endpoint: a named port, a path and an interval. */
export interface ScrapeEndpoint {
  readonly port: string;
  readonly path: string;
  readonly interval: string;
}

/** The namespaces a monitor looks in. */
export interface NamespaceSelector {
  readonly matchNames: readonly string[];
}

/** A Prometheus duration such as `30s`, `5m` or `1h30m`. */
const DURATION = /^(0|(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?)$/;
/** An IANA service name: what a named port is called. */
const PORT_NAME = /^(?=.*[a-z])[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/;
/** A Prometheus label or alert name. */
const PROMETHEUS_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function selectorProblems(selector: LabelSelector, field: string): string[] {
  const problems: string[] = [];
  const expressions = selector.matchExpressions ?? [];
  if (Object.keys(selector.matchLabels ?? {}).length === 0 && expressions.length === 0) {
    problems.push(`${field} must not be empty (it would select every object)`);
  }
  expressions.forEach((e, i) => {
    const set = e.operator === "In" || e.operator === "NotIn";
    if (set && (e.values ?? []).length === 0) {
      problems.push(`${field}.matchExpressions[${i}].values must not be empty for ${e.operator}`);
    }
    if (!set && e.values !== undefined) {
      problems.push(`${field}.matchExpressions[${i}].values must be unset for ${e.operator}`);
    }
  });
  return problems;
}

function endpointProblems(endpoints: readonly ScrapeEndpoint[], field: string): string[] {
  if (endpoints.length === 0) return [`${field} must not be empty`];
  return endpoints.flatMap((e, i) => [
    ...(PORT_NAME.test(e.port) ? [] : [`${field}[${i}].port "${e.port}" is not a port name`]),
    ...(e.path.startsWith("/") ? [] : [`${field}[${i}].path "${e.path}" must start with /`]),
    ...(DURATION.test(e.interval) && e.interval !== "0"
      ? []
      : [`${field}[${i}].interval "${e.interval}" is not a duration such as 30s`]),
  ]);
}

function namespaceProblems(selector: NamespaceSelector): string[] {
  return selector.matchNames.length === 0
    ? ["spec.namespaceSelector.matchNames must not be empty"]
    : [];
}

/** `ServiceMonitor`: Prometheus scrapes the endpoints of the Services it selects. */
export class ServiceMonitor implements KubeObject {
  readonly apiVersion: string = MONITORING_API_VERSION;
  readonly kind: "ServiceMonitor" = "ServiceMonitor";
  readonly metadata: CustomResourceMetadata;
  readonly spec: {
    readonly selector: LabelSelector;
    readonly namespaceSelector: NamespaceSelector;
    readonly endpoints: readonly ScrapeEndpoint[];
  };

  constructor(data: { metadata: CustomResourceMetadata; spec: ServiceMonitor["spec"] }) {
    this.metadata = data.metadata;
    this.spec = data.spec;
  }

  /** Checks the selector, the namespaces and every endpoint. */
  validate(): void {
    throwIfAny("ServiceMonitor", [
      ...metadataProblems(this.metadata),
      ...selectorProblems(this.spec.selector, "spec.selector"),
      ...namespaceProblems(this.spec.namespaceSelector),
      ...endpointProblems(this.spec.endpoints, "spec.endpoints"),
    ]);
  }
}

/** `PodMonitor`: Prometheus scrapes a named container port of the pods it selects. */
export class PodMonitor implements KubeObject {
  readonly apiVersion: string = MONITORING_API_VERSION;
  readonly kind: "PodMonitor" = "PodMonitor";
  readonly metadata: CustomResourceMetadata;
  readonly spec: {
    readonly selector: LabelSelector;
    readonly namespaceSelector: NamespaceSelector;
    readonly podMetricsEndpoints: readonly ScrapeEndpoint[];
  };

  constructor(data: { metadata: CustomResourceMetadata; spec: PodMonitor["spec"] }) {
    this.metadata = data.metadata;
    this.spec = data.spec;
  }

  /** Checks the selector, the namespaces and every endpoint. */
  validate(): void {
    throwIfAny("PodMonitor", [
      ...metadataProblems(this.metadata),
      ...selectorProblems(this.spec.selector, "spec.selector"),
      ...namespaceProblems(this.spec.namespaceSelector),
      ...endpointProblems(this.spec.podMetricsEndpoints, "spec.podMetricsEndpoints"),
    ]);
  }
}

/** `PrometheusRule`: rule groups the operator loads into Prometheus. */
export class PrometheusRule implements KubeObject {
  readonly apiVersion: string = MONITORING_API_VERSION;
  readonly kind: "PrometheusRule" = "PrometheusRule";
  readonly metadata: CustomResourceMetadata;
  readonly spec: { readonly groups: readonly RuleGroup[] };

  constructor(data: { metadata: CustomResourceMetadata; spec: PrometheusRule["spec"] }) {
    this.metadata = data.metadata;
    this.spec = data.spec;
  }

  /**
   * Checks names (unique groups, alert and label names), durations and that every rule has an
   * expression; the expressions themselves are PromQL, checked by `promtool` in the tests.
   */
  validate(): void {
    const problems = metadataProblems(this.metadata);
    if (this.spec.groups.length === 0) problems.push("spec.groups must not be empty");
    const groups = new Set<string>();
    this.spec.groups.forEach((group, g) => {
      const at = `spec.groups[${g}]`;
      if (!group.name || groups.has(group.name)) {
        problems.push(`${at}.name "${group.name}" must be set and unique`);
      }
      groups.add(group.name);
      if (group.rules.length === 0) problems.push(`${at}.rules must not be empty`);
      group.rules.forEach((rule, r) => {
        const where = `${at}.rules[${r}]`;
        if (!PROMETHEUS_NAME.test(rule.alert)) {
          problems.push(`${where}.alert "${rule.alert}" is not a valid name`);
        }
        if (rule.expr.trim() === "") problems.push(`${where}.expr must not be empty`);
        if (rule.for !== undefined && !DURATION.test(rule.for)) {
          problems.push(`${where}.for "${rule.for}" is not a duration`);
        }
        for (const [kind, map] of [["labels", rule.labels], ["annotations", rule.annotations]]) {
          for (const name of Object.keys(map as Record<string, string>)) {
            if (!PROMETHEUS_NAME.test(name)) {
              problems.push(`${where}.${kind}.${name} is not a valid label name`);
            }
          }
        }
      });
    });
    throwIfAny("PrometheusRule", problems);
  }
}

function metadata(config: DeploymentConfig, name: string): CustomResourceMetadata {
  return {
    name,
    namespace: config.namespace,
    labels: { ...config.observability.monitorLabels, ...labels(config, "monitoring") },
  };
}

function endpoint(config: DeploymentConfig): ScrapeEndpoint {
  return {
    port: METRICS_PORT_NAME,
    path: METRICS_PATHS.metrics,
    interval: `${config.observability.scrapeIntervalSeconds}s`,
  };
}

/** The ServiceMonitor of the exporter's Service. */
export function exporterServiceMonitor(config: DeploymentConfig): ServiceMonitor {
  return new ServiceMonitor({
    metadata: metadata(config, names(config).exporter),
    spec: {
      selector: { matchLabels: selectorLabels(config, "exporter") },
      namespaceSelector: { matchNames: [config.namespace] },
      endpoints: [endpoint(config)],
    },
  });
}

/** The PodMonitor of this instance's worker pods (and the exporter's, when enabled). */
export function ttgPodMonitor(config: DeploymentConfig): PodMonitor {
  const components = config.observability.exporter.enabled ? ["worker", "exporter"] : ["worker"];
  return new PodMonitor({
    metadata: metadata(config, names(config).podMonitor),
    spec: {
      selector: {
        matchLabels: { [LABEL.name]: "ttg", [LABEL.instance]: config.name },
        matchExpressions: [{ key: LABEL.component, operator: "In", values: components }],
      },
      namespaceSelector: { matchNames: [config.namespace] },
      podMetricsEndpoints: [endpoint(config)],
    },
  });
}

/** The PrometheusRule with every alert of the deployment. */
export function ttgPrometheusRule(config: DeploymentConfig): PrometheusRule {
  return new PrometheusRule({
    metadata: metadata(config, names(config).alertRules),
    spec: { groups: alertGroups(config) },
  });
}

/** The operator's objects of the configured kind (none without an operator). */
export function monitoringObjects(config: DeploymentConfig): KubeObject[] {
  switch (config.observability.prometheusOperator) {
    case "none":
      return [];
    case "servicemonitor":
      return [exporterServiceMonitor(config), ttgPrometheusRule(config)];
    case "podmonitor":
      return [ttgPodMonitor(config), ttgPrometheusRule(config)];
  }
}

/** Whether labels satisfy a selector. */
export function selects(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>>,
): boolean {
  const has = (key: string) => Object.hasOwn(labels, key);
  return Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
    (selector.matchExpressions ?? []).every((e) => {
      const listed = has(e.key) && (e.values ?? []).includes(labels[e.key]!);
      switch (e.operator) {
        case "In":
          return listed;
        case "NotIn":
          return !listed;
        case "Exists":
          return has(e.key);
        case "DoesNotExist":
          return !has(e.key);
      }
    });
}

/** What the reference check reads of a pod or pod template, as plain JSON. */
interface PodData {
  readonly metadata?: { readonly labels?: Readonly<Record<string, string>> };
  readonly spec?: {
    readonly containers?: readonly { readonly ports?: readonly { readonly name?: string }[] }[];
  };
}

/** What the reference check reads of a generated object, as plain JSON. */
interface ObjectData extends PodData {
  readonly kind: string;
  readonly metadata?: PodData["metadata"] & { readonly namespace?: string };
  readonly spec?: PodData["spec"] & {
    /** A Service's ports. */
    readonly ports?: readonly { readonly name?: string }[];
    /** A workload's pod template. */
    readonly template?: PodData;
    /** A ScaledJob's Job. */
    readonly jobTargetRef?: { readonly template?: PodData };
  };
}

/** Something a monitor can scrape: where it is, its labels and its port names. */
interface Target {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ports: readonly string[];
}

/** What a ServiceMonitor can scrape: the Services. */
function serviceTargets(objects: readonly ObjectData[]): Target[] {
  return objects.filter((o) => o.kind === "Service").map((o) => ({
    namespace: o.metadata?.namespace ?? "",
    labels: o.metadata?.labels ?? {},
    ports: (o.spec?.ports ?? []).map((p) => p.name ?? ""),
  }));
}

/** What a PodMonitor can scrape: the pods that Pods, workloads and ScaledJobs run. */
function podTargets(objects: readonly ObjectData[]): Target[] {
  return objects.flatMap((o) => {
    const pod = o.kind === "Pod" ? o : o.spec?.template ?? o.spec?.jobTargetRef?.template;
    if (!pod) return [];
    return [{
      namespace: o.metadata?.namespace ?? "",
      labels: pod.metadata?.labels ?? {},
      ports: (pod.spec?.containers ?? []).flatMap((c) => (c.ports ?? []).map((p) => p.name ?? "")),
    }];
  });
}

/**
 * Problems of monitors that would scrape nothing: a ServiceMonitor whose selector matches no
 * generated Service with the port it names, a PodMonitor whose selector matches no pod with a
 * container port of that name, in the namespaces it looks in.
 */
export function monitorReferenceProblems(objects: readonly KubeObject[]): Problem[] {
  const data = objects.map((o) => JSON.parse(JSON.stringify(o)) as ObjectData);
  const targets = { Service: serviceTargets(data), pod: podTargets(data) };
  return objects.flatMap((object) => {
    if (!(object instanceof ServiceMonitor || object instanceof PodMonitor)) return [];
    const [what, endpoints] = object instanceof ServiceMonitor
      ? ["Service" as const, object.spec.endpoints]
      : ["pod" as const, object.spec.podMetricsEndpoints];
    const { selector, namespaceSelector } = object.spec;
    const offered = targets[what].filter((t) =>
      namespaceSelector.matchNames.includes(t.namespace) && selects(selector, t.labels)
    ).flatMap((t) => t.ports);
    return endpoints.filter((e) => !offered.includes(e.port)).map((e) => ({
      field: describe(object),
      message: `selects no generated ${what} with a port named "${e.port}"`,
    }));
  });
}
