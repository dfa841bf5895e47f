/**
 * The `keda` block of a deployment, resolved and checked. What KEDA scales depends on the mode:
 * in queue mode a ScaledJob watches the one job's queue on the broker (its stream, group or queue
 * name, derived from the job id); in fleet mode a ScaledObject scales the fleet's Deployment on
 * the backlog of every job it serves, which no broker scaler can sum, so it asks the Prometheus
 * that scrapes the exporter (deploy/keda_fleet.ts says why). Each mode's own fields are problems
 * in the other. Read by deploy/config.ts with the same {@linkcode FieldReader}.
 *
 * @module
 */
import type { FieldReader, KnownFields } from "./field_reader.ts";
import type { KedaProps, Mode } from "./props.ts";

/** The known fields of the block (merged into the config's). */
export const KEDA_FIELDS: KnownFields = {
  keda: [
    "enabled",
    "namespace",
    "minReplicas",
    "maxReplicas",
    "pollingIntervalSeconds",
    "targetPerWorker",
    "prometheusUrl",
    "redisStream",
    "redisConsumerGroup",
    "rabbitmqQueue",
  ],
};

/**
 * The Prometheus KEDA asks in fleet mode, unless configured: the Service the Prometheus
 * Operator creates for its Prometheus servers (`prometheus-operated`), in namespace
 * `monitoring`, where kube-prometheus-stack is usually installed.
 */
export const DEFAULT_PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090";

/** The block, resolved. */
export type KedaConfig = Required<KedaProps>;

/** What the block is checked against. */
export interface KedaContext {
  readonly mode: Mode;
  /** The names KEDA watches in queue mode, derived from the job id. */
  readonly queueNames: {
    readonly redisStream: string;
    readonly redisConsumerGroup: string;
    readonly rabbitmqQueue: string;
  };
  readonly idleTimeoutSeconds: number;
}

/** Fields of the block that name one job's queue: queue mode only. */
const QUEUE_NAME_FIELDS = ["redisStream", "redisConsumerGroup", "rabbitmqQueue"] as const;

/**
 * Reads `keda` from the top-level reader; returns the block and its reader (for checks that
 * need other blocks resolved first).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveConfig } from "./config.ts";
 * const { config, problems } = resolveConfig({ mode: "fleet", keda: { enabled: true } });
 * assert.deepEqual(problems, []);
 * assert.ok(config.keda.prometheusUrl.startsWith("http://"));
 * ```
 */
export function resolveKeda(
  top: FieldReader,
  context: KedaContext,
): { readonly keda: KedaConfig; readonly reader: FieldReader } {
  const k = top.child("keda");
  const fleet = context.mode === "fleet";
  const queueName = (key: typeof QUEUE_NAME_FIELDS[number]): string => {
    const value = k.optionalString(key, /^\S{1,255}$/, "a name");
    if (value !== undefined && fleet) {
      k.problem(
        key,
        `expected unset with mode "fleet" (the fleet scales on the backlog of every job it serves), got "${value}"`,
      );
    }
    return value ?? context.queueNames[key];
  };
  const prometheusUrl = k.optionalString(
    "prometheusUrl",
    /^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/,
    "an http(s) URL of a Prometheus server",
  );
  if (prometheusUrl !== undefined && !fleet) {
    k.problem(
      "prometheusUrl",
      `expected unset with mode "${context.mode}" (only the fleet's ScaledObject reads Prometheus), got "${prometheusUrl}"`,
    );
  }
  const keda: KedaConfig = {
    enabled: k.boolean("enabled", false),
    namespace: k.dnsLabel("namespace", "keda"),
    minReplicas: k.int("minReplicas", 0, 0, 1000),
    maxReplicas: k.int("maxReplicas", 10, 1, 1000),
    pollingIntervalSeconds: k.int("pollingIntervalSeconds", 5, 1, 3600),
    targetPerWorker: k.int("targetPerWorker", 10, 1, 1_000_000),
    prometheusUrl: prometheusUrl ?? DEFAULT_PROMETHEUS_URL,
    redisStream: queueName("redisStream"),
    redisConsumerGroup: queueName("redisConsumerGroup"),
    rabbitmqQueue: queueName("rabbitmqQueue"),
  };
  if (keda.minReplicas > keda.maxReplicas) {
    k.problem(
      "minReplicas",
      `expected at most keda.maxReplicas (${keda.maxReplicas}), got ${keda.minReplicas}`,
    );
  }
  if (keda.enabled && context.mode === "static") {
    k.problem("enabled", 'expected false with mode "static" (KEDA scales queue or fleet workers)');
  }
  if (keda.enabled && context.mode === "queue" && context.idleTimeoutSeconds === 0) {
    k.problem(
      "enabled",
      "expected workers.idleTimeoutSeconds above 0 (a scaled worker must exit when the queue is drained)",
    );
  }
  return { keda, reader: k };
}
