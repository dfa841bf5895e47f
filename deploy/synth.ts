/**
 * `synth`: props → validated Kubernetes objects → YAML, in the manner of cdk8s. Every problem,
 * of the config and of the generated objects (schema, labels, references between objects), is
 * collected and thrown once as a {@linkcode SynthError}. The YAML has stable names, a stable
 * object order and sorted keys, so a diff of two outputs shows only what changed.
 *
 * @module
 */
import {
  type DeploymentConfig,
  type DeploymentProps,
  resolveConfig,
  type ResolveOptions,
} from "./config.ts";
import { dashboardConfigMap } from "./dashboard.ts";
import { exporterObjects } from "./exporter.ts";
import { fleetDeployment } from "./fleet.ts";
import { kedaScaledJob, kedaTriggerAuthentication } from "./keda.ts";
import { fleetScaledObject, scaledObjectReferenceProblems } from "./keda_fleet.ts";
import { LABEL } from "./labels.ts";
import { monitoringObjects, monitorReferenceProblems } from "./monitoring.ts";
import { brokerNetworkPolicy, namespaceObjects } from "./network.ts";
import { describe, type KubeObject } from "./object.ts";
import { type Problem, SynthError } from "./problems.ts";
import { rabbitmqObjects } from "./rabbitmq.ts";
import { redisObjects } from "./redis.ts";
import { yamlText } from "./yaml.ts";
import { progressJob, reportJob, submitJob } from "./submit.ts";
import { webDashboardObjects } from "./web_dashboard.ts";
import { queueWorkers, staticJob } from "./workers.ts";

export { SynthError } from "./problems.ts";
export { sortKeys } from "./yaml.ts";

/**
 * When an object is applied: `infra` first (namespace, broker, policy), then `submit`, then
 * `workers`; `report` runs after the workers are done and `progress` whenever a task checks on
 * the job; neither is part of the manifests.
 */
export type Stage = "infra" | "submit" | "workers" | "report" | "progress";
/** Stages in apply order. */
export const STAGES: readonly Stage[] = ["infra", "submit", "workers", "report", "progress"];
/** The stages `deno task manifests` writes. */
export const MANIFEST_STAGES: readonly Stage[] = ["infra", "submit", "workers"];

/** One generated object and its stage. */
export interface Manifest {
  readonly stage: Stage;
  readonly object: KubeObject;
}

/** What {@linkcode synth} produces. */
export interface Synthesized {
  readonly config: DeploymentConfig;
  readonly manifests: readonly Manifest[];
}

/** Every label each object must carry. */
export const REQUIRED_LABELS: readonly string[] = [
  LABEL.name,
  LABEL.instance,
  LABEL.partOf,
  LABEL.component,
  LABEL.managedBy,
];

/**
 * The objects of a resolved config, by stage, in apply order. The exporter, the web dashboard and
 * the monitoring objects (operator resources, Grafana dashboard) are `infra`: they serve every
 * job of the broker. In fleet mode the workers are the fleet (and its ScaledObject), and the
 * submit Job is generated only when `fleet.submit` asks for it.
 */
export function build(config: DeploymentConfig): Manifest[] {
  const stage = (s: Stage, objects: readonly KubeObject[]) =>
    objects.map((object) => ({ stage: s, object }));
  const namespace = stage("infra", namespaceObjects(config));
  if (config.mode === "static") {
    return [...namespace, ...stage("workers", [staticJob(config)])];
  }
  const broker = config.backend === "redis" ? redisObjects(config) : rabbitmqObjects(config);
  const fleet = config.mode === "fleet";
  const workers = fleet
    ? [fleetDeployment(config), ...(config.keda.enabled ? [fleetScaledObject(config)] : [])]
    : config.keda.enabled
    ? [kedaScaledJob(config)]
    : queueWorkers(config);
  return [
    ...namespace,
    ...stage("infra", broker),
    ...stage("infra", config.networkPolicy.enabled ? [brokerNetworkPolicy(config)] : []),
    // The queue-mode scalers read the broker; the fleet's reads Prometheus (keda_fleet.ts).
    ...stage("infra", config.keda.enabled && !fleet ? [kedaTriggerAuthentication(config)] : []),
    ...stage("infra", exporterObjects(config)),
    ...stage("infra", webDashboardObjects(config)),
    ...stage("infra", monitoringObjects(config)),
    ...stage("infra", config.observability.grafanaDashboard ? [dashboardConfigMap(config)] : []),
    ...stage("submit", !fleet || config.fleet.submit ? [submitJob(config)] : []),
    ...stage("workers", workers),
    ...stage("report", [reportJob(config)]),
    ...stage("progress", [progressJob(config)]),
  ];
}

/**
 * Resolves props, builds every object, validates all of it and throws one {@linkcode SynthError}
 * listing every problem.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { synth } from "./synth.ts";
 * const { manifests } = synth({ backend: "redis" }, { randomSecret: () => "s".repeat(32) });
 * assert.ok(manifests.some((m) => m.object.kind === "StatefulSet"));
 * ```
 */
export function synth(props: DeploymentProps = {}, options: ResolveOptions = {}): Synthesized {
  const { config, problems } = resolveConfig(props, options);
  const manifests = build(config);
  const all: Problem[] = [...problems];
  const external = [
    ...(config.tls.secretName === undefined ? [] : [config.tls.secretName]),
    ...(config.dashboard.enabled && config.dashboard.token.generated === undefined
      ? [config.dashboard.token.secretName]
      : []),
  ];
  all.push(...objectProblems(manifests.map((m) => m.object), external));
  if (all.length > 0) throw new SynthError(all);
  return { config, manifests };
}

/**
 * Schema, label, uniqueness and reference problems of a set of objects (a monitor must select
 * a generated object with the port it scrapes). References to the
 * `externalSecrets` (Secrets the user provides, such as the TLS certificate) are not checked.
 */
export function objectProblems(
  objects: readonly KubeObject[],
  externalSecrets: readonly string[] = [],
): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  const secrets = new Map<string, Set<string>>();
  const triggerAuths = new Set<string>();
  for (const object of objects) {
    const data = plain(object) as {
      stringData?: Record<string, string>;
      data?: Record<string, string>;
    };
    if (object.kind === "Secret") {
      secrets.set(
        object.metadata?.name ?? "",
        new Set(Object.keys({ ...data.data, ...data.stringData })),
      );
    }
    if (object.kind === "TriggerAuthentication") triggerAuths.add(object.metadata?.name ?? "");
  }
  for (const object of objects) {
    const field = describe(object);
    const key = `${object.kind}/${object.metadata?.namespace ?? ""}/${object.metadata?.name}`;
    if (seen.has(key)) problems.push({ field, message: "generated twice" });
    seen.add(key);
    try {
      object.validate();
    } catch (error) {
      problems.push({ field, message: error instanceof Error ? error.message : String(error) });
    }
    const missing = REQUIRED_LABELS.filter((label) => !object.metadata?.labels?.[label]);
    if (missing.length > 0) {
      problems.push({ field, message: `missing labels ${missing.join(", ")}` });
    }
    visit(plain(object), (node) => {
      const ref = node.secretKeyRef as { name?: string; key?: string } | undefined;
      if (
        ref && !externalSecrets.includes(ref.name ?? "") &&
        !secrets.get(ref.name ?? "")?.has(ref.key ?? "")
      ) {
        problems.push({
          field,
          message: `refers to Secret "${ref.name}" key "${ref.key}", which is not generated`,
        });
      }
      const auth = node.authenticationRef as { name?: string } | undefined;
      if (auth && !triggerAuths.has(auth.name ?? "")) {
        problems.push({
          field,
          message: `refers to TriggerAuthentication "${auth.name}", which is not generated`,
        });
      }
      const targets = node.secretTargetRef as { name?: string; key?: string }[] | undefined;
      for (const target of Array.isArray(targets) ? targets : []) {
        if (externalSecrets.includes(target.name ?? "")) continue;
        if (!secrets.get(target.name ?? "")?.has(target.key ?? "")) {
          problems.push({
            field,
            message:
              `refers to Secret "${target.name}" key "${target.key}", which is not generated`,
          });
        }
      }
    });
  }
  problems.push(...monitorReferenceProblems(objects), ...scaledObjectReferenceProblems(objects));
  return problems;
}

function visit(node: unknown, fn: (node: Record<string, unknown>) => void): void {
  if (Array.isArray(node)) {
    for (const item of node) visit(item, fn);
  } else if (typeof node === "object" && node !== null) {
    fn(node as Record<string, unknown>);
    for (const value of Object.values(node)) visit(value, fn);
  }
}

/** An object as plain JSON data (what kubectl receives). */
export function plain(object: KubeObject): Record<string, unknown> {
  return JSON.parse(JSON.stringify(object));
}

/** One YAML document of an object, keys sorted (YAML 1.1 quoting, as Kubernetes parses it). */
export function objectYaml(object: KubeObject): string {
  return yamlText(plain(object));
}

/** The header of generated YAML. */
export const YAML_HEADER =
  "# Generated by TTG deploy/ (deno task manifests); edit deploy/config.ts props, not this file.\n";

/** A multi-document YAML stream of objects. */
export function toYaml(objects: readonly KubeObject[]): string {
  return YAML_HEADER + objects.map((o) => `---\n${objectYaml(o)}`).join("");
}

/** The manifests of some stages. */
export function stageObjects(synthesized: Synthesized, stages: readonly Stage[]): KubeObject[] {
  return synthesized.manifests.filter((m) => stages.includes(m.stage)).map((m) => m.object);
}

/** A stable file name for an object written to a directory (apply order by prefix). */
export function fileName(index: number, object: KubeObject): string {
  return `${String(index).padStart(2, "0")}-${object.kind.toLowerCase()}-${
    object.metadata?.name ?? "unnamed"
  }.yaml`;
}
