/**
 * Autoscaling a fleet with KEDA: a ScaledObject scales the fleet's Deployment, down to zero, on
 * the backlog of every job the fleet serves.
 *
 * Why Prometheus, on both brokers. KEDA's broker scalers watch one queue each: `redis-streams`
 * one stream and consumer group, `redis` one list, while each TTG job has streams of its own
 * (one per priority band, `ttg:<job>:tasks`, `…:tasks.p<N>`, and more for chunks coming back),
 * made when it is submitted, so no Redis trigger can sum them. RabbitMQ's scaler can sum the
 * queues whose name matches a regex, but only through the management API, and it counts
 * messages, not TTG's meaning of the backlog: a chunk waiting out a retry sits in a delay queue
 * (`<tasks>.retry.<ms>ms`), and a paused or cancelled job still holds messages. The exporter (`ttg exporter`, one per broker) already serves
 * the backlog of every job the way TTG means it (`ttg_queue_ready`, `…_delayed`, `…_in_flight`,
 * and `ttg_job_info{state}`), so the trigger is KEDA's `prometheus` scaler over those gauges,
 * the same on both brokers: the running jobs the fleet serves (the fleet's glob becomes the
 * `job_id` regex), in this namespace. In-flight chunks count, so the fleet is not scaled below
 * the work it holds, and so do delayed ones, so it is not scaled to zero while a retry waits.
 * KEDA then needs no broker credentials and no way through the broker's NetworkPolicy.
 *
 * @module
 */
import type { DeploymentConfig } from "./config.ts";
import {
  type CustomResourceMetadata,
  metadataProblems,
  throwIfAny,
  wholeNumberProblems,
} from "./custom_resource.ts";
import { globRegex } from "./job_glob.ts";
import { KEDA_API_VERSION } from "./keda.ts";
import { labels, names } from "./labels.ts";
import { describe, type KubeObject } from "./object.ts";
import type { Problem } from "./problems.ts";

/** A `prometheus` trigger; metadata values are strings, as KEDA requires. */
export interface PrometheusTrigger {
  readonly type: "prometheus";
  readonly metadata: {
    readonly serverAddress: string;
    readonly query: string;
    readonly threshold: string;
    readonly activationThreshold: string;
  };
}

/** The part of KEDA's ScaledObject spec TTG uses. */
export interface ScaledObjectSpec {
  readonly scaleTargetRef: {
    readonly apiVersion: "apps/v1";
    readonly kind: "Deployment";
    readonly name: string;
  };
  readonly pollingInterval: number;
  readonly minReplicaCount: number;
  readonly maxReplicaCount: number;
  readonly triggers: readonly PrometheusTrigger[];
}

/** KEDA `ScaledObject` (keda.sh/v1alpha1). */
export class ScaledObject implements KubeObject {
  readonly apiVersion: string = KEDA_API_VERSION;
  readonly kind: "ScaledObject" = "ScaledObject";
  readonly metadata: CustomResourceMetadata;
  readonly spec: ScaledObjectSpec;

  constructor(data: { metadata: CustomResourceMetadata; spec: ScaledObjectSpec }) {
    this.metadata = data.metadata;
    this.spec = data.spec;
  }

  /** Checks the target, the counts and every trigger's required metadata. */
  validate(): void {
    const s = this.spec;
    const problems = metadataProblems(this.metadata);
    if (!s.scaleTargetRef.name) problems.push("spec.scaleTargetRef.name is required");
    problems.push(...wholeNumberProblems({
      pollingInterval: s.pollingInterval,
      minReplicaCount: s.minReplicaCount,
      maxReplicaCount: s.maxReplicaCount,
    }));
    if (s.pollingInterval < 1) problems.push("spec.pollingInterval must be at least 1");
    if (s.maxReplicaCount < 1) problems.push("spec.maxReplicaCount must be at least 1");
    if (s.minReplicaCount > s.maxReplicaCount) {
      problems.push("spec.minReplicaCount must not exceed spec.maxReplicaCount");
    }
    if (s.triggers.length === 0) problems.push("spec.triggers must not be empty");
    s.triggers.forEach((trigger, i) => {
      const at = `spec.triggers[${i}]`;
      if (trigger.type !== "prometheus") {
        problems.push(`${at}.type "${trigger.type}" is not supported`);
        return;
      }
      const m = trigger.metadata;
      if (!/^https?:\/\/\S+$/.test(m.serverAddress ?? "")) {
        problems.push(`${at}.metadata.serverAddress must be an http(s) URL`);
      }
      if (!m.query) problems.push(`${at}.metadata.query is required`);
      for (const key of ["threshold", "activationThreshold"] as const) {
        if (typeof m[key] !== "string" || !(Number(m[key]) >= 0) || m[key].trim() === "") {
          problems.push(`${at}.metadata.${key} must be a number in a string, got ${m[key]}`);
        }
      }
    });
    throwIfAny("ScaledObject", problems);
  }
}

/** A PromQL string literal. */
function promString(text: string): string {
  return `"${text.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** The gauges whose sum is a job's backlog: waiting, waiting out a retry, and running. */
export const BACKLOG_GAUGES = ["ttg_queue_ready", "ttg_queue_delayed", "ttg_queue_in_flight"];

/**
 * The backlog of the jobs the fleet serves, in chunks: the sum of {@linkcode BACKLOG_GAUGES}
 * over the running jobs whose id matches the fleet's glob, of this namespace and broker; 0 when
 * there is none (an empty result would leave KEDA without a value).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveConfig } from "./config.ts";
 * import { fleetBacklogQuery } from "./keda_fleet.ts";
 * const { config } = resolveConfig({ mode: "fleet", fleet: { jobs: "nightly-*" } });
 * assert.ok(fleetBacklogQuery(config).includes('job_id=~"nightly-.*"'));
 * ```
 */
export function fleetBacklogQuery(config: DeploymentConfig): string {
  const scope = `namespace=${promString(config.namespace)}, backend=${promString(config.backend)}`;
  const jobs = config.fleet.jobs === undefined
    ? ""
    : `, job_id=~${promString(globRegex(config.fleet.jobs))}`;
  const gauges = `{__name__=~${promString(BACKLOG_GAUGES.join("|"))}, ${scope}${jobs}}`;
  const running = `ttg_job_info{${scope}, state="running"} == 1`;
  return `sum(${gauges} and on (namespace, job_id, backend) (${running})) or vector(0)`;
}

/** The ScaledObject that scales the fleet's Deployment on its backlog. */
export function fleetScaledObject(config: DeploymentConfig): ScaledObject {
  const n = names(config);
  const k = config.keda;
  return new ScaledObject({
    metadata: { name: n.fleet, namespace: config.namespace, labels: labels(config, "autoscaler") },
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: n.fleet },
      pollingInterval: k.pollingIntervalSeconds,
      minReplicaCount: k.minReplicas,
      maxReplicaCount: k.maxReplicas,
      triggers: [{
        type: "prometheus",
        metadata: {
          serverAddress: k.prometheusUrl,
          query: fleetBacklogQuery(config),
          threshold: String(k.targetPerWorker),
          activationThreshold: "0",
        },
      }],
    },
  });
}

/** Each ScaledObject must target a generated Deployment of its namespace. */
export function scaledObjectReferenceProblems(objects: readonly KubeObject[]): Problem[] {
  const deployments = new Set(
    objects.filter((o) => o.kind === "Deployment").map((o) =>
      `${o.metadata?.namespace}/${o.metadata?.name}`
    ),
  );
  return objects.filter((o): o is ScaledObject => o instanceof ScaledObject).flatMap((o) => {
    const target = `${o.metadata.namespace}/${o.spec.scaleTargetRef.name}`;
    return deployments.has(target) ? [] : [{
      field: describe(o),
      message: `scales Deployment "${o.spec.scaleTargetRef.name}", which is not generated`,
    }];
  });
}
