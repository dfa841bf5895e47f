/**
 * The `observability` block of a deployment, resolved and checked: the metrics port, what
 * scrapes it (annotations, a ServiceMonitor or a PodMonitor), the exporter, the Grafana
 * dashboard and the thresholds of the alert rules. Read by deploy/config.ts with the same
 * {@linkcode FieldReader}, so a bad value is one problem naming its field.
 *
 * @module
 */
import type { FieldReader, KnownFields, Resources } from "./field_reader.ts";
import { LABEL } from "./labels.ts";
import {
  type AlertsProps,
  type Mode,
  PROMETHEUS_OPERATOR_KINDS,
  type PrometheusOperatorKind,
} from "./props.ts";

/** The known fields of the block, by dotted path (merged into the config's). */
export const OBSERVABILITY_FIELDS: KnownFields = {
  observability: [
    "metricsPort",
    "prometheusOperator",
    "scrapeIntervalSeconds",
    "monitorLabels",
    "exporter",
    "grafanaDashboard",
    "dashboardNamespace",
    "alerts",
  ],
  "observability.exporter": ["enabled", "resources"],
  "observability.exporter.resources": ["cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"],
  "observability.alerts": [
    "queueBackupReadyChunks",
    "queueBackupMinutes",
    "readyWithoutConsumersMinutes",
    "deadLetterGrowthPerMinute",
    "deadLetterWindowMinutes",
    "workerLostMinutes",
    "workerRestarts",
    "workerRestartWindowMinutes",
    "reclaimRatePerSecond",
    "reclaimMinutes",
    "starvationSeconds",
    "stuckMinutes",
    "runbookUrl",
  ],
};

/** The port workers and the exporter serve metrics on, unless configured. */
export const DEFAULT_METRICS_PORT = 9464;

/** Requests and limits of the exporter, unless configured. */
export const DEFAULT_EXPORTER_RESOURCES: Resources = {
  cpuRequest: "50m",
  cpuLimit: "200m",
  memoryRequest: "128Mi",
  memoryLimit: "256Mi",
};

/** Alert thresholds, resolved. */
export type AlertThresholds = Required<Omit<AlertsProps, "runbookUrl">> & {
  readonly runbookUrl: string | undefined;
};

/** The observability block, resolved. */
export interface ObservabilityConfig {
  readonly metricsPort: number;
  readonly prometheusOperator: PrometheusOperatorKind;
  readonly scrapeIntervalSeconds: number;
  readonly monitorLabels: Readonly<Record<string, string>>;
  readonly exporter: { readonly enabled: boolean; readonly resources: Resources };
  readonly grafanaDashboard: boolean;
  readonly dashboardNamespace: string;
  readonly alerts: AlertThresholds;
}

/** What the block is checked against. */
export interface ObservabilityContext {
  readonly mode: Mode;
  readonly namespace: string;
  /** The configured chunk timeout (TTGJobStuck must wait longer); unset: not checked. */
  readonly chunkTimeoutSeconds: number | undefined;
}

/**
 * Reads `observability` from the top-level reader. Static mode has no broker and no worker
 * loop: the exporter, the dashboard and the operator objects are off there, and asking for one
 * is a problem.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveConfig } from "./config.ts";
 * const { config } = resolveConfig({}, { randomSecret: () => "s".repeat(32) });
 * assert.equal(config.observability.metricsPort, 9464);
 * assert.ok(config.observability.exporter.enabled);
 * ```
 */
export function resolveObservability(
  top: FieldReader,
  context: ObservabilityContext,
): ObservabilityConfig {
  const o = top.child("observability");
  const broker = context.mode !== "static"; // queue and fleet mode have one
  const withBroker = (reader: FieldReader, key: string, value: boolean, what: string) => {
    if (value && !broker) {
      reader.problem(key, `expected false with mode "static" (${what})`);
      return false;
    }
    return value;
  };
  let prometheusOperator = o.choice("prometheusOperator", "none", PROMETHEUS_OPERATOR_KINDS);
  if (prometheusOperator !== "none" && !broker) {
    o.problem(
      "prometheusOperator",
      'expected "none" with mode "static" (static pods serve no metrics)',
    );
    prometheusOperator = "none";
  }
  const e = o.child("exporter");
  const exporter = {
    enabled: withBroker(e, "enabled", e.boolean("enabled", broker), "it reads the broker"),
    resources: e.resources("resources", DEFAULT_EXPORTER_RESOURCES),
  };
  if (prometheusOperator === "servicemonitor" && broker && !exporter.enabled) {
    o.problem(
      "prometheusOperator",
      'expected "podmonitor" or "none" with observability.exporter.enabled false (the ServiceMonitor selects the exporter\'s Service)',
    );
  }
  const a = o.child("alerts");
  const alerts: AlertThresholds = {
    queueBackupReadyChunks: a.int("queueBackupReadyChunks", 100, 0, 1e9),
    queueBackupMinutes: a.int("queueBackupMinutes", 15, 1, 1440),
    readyWithoutConsumersMinutes: a.int("readyWithoutConsumersMinutes", 5, 1, 1440),
    deadLetterGrowthPerMinute: a.number("deadLetterGrowthPerMinute", 0, 0, 1e6),
    deadLetterWindowMinutes: a.int("deadLetterWindowMinutes", 10, 1, 1440),
    workerLostMinutes: a.int("workerLostMinutes", 5, 1, 1440),
    workerRestarts: a.int("workerRestarts", 3, 1, 1000),
    workerRestartWindowMinutes: a.int("workerRestartWindowMinutes", 15, 1, 1440),
    reclaimRatePerSecond: a.number("reclaimRatePerSecond", 0.1, 0, 1e6),
    reclaimMinutes: a.int("reclaimMinutes", 10, 1, 1440),
    starvationSeconds: a.int("starvationSeconds", 900, 60, 86_400),
    stuckMinutes: a.int("stuckMinutes", 15, 1, 1440),
    runbookUrl: a.optionalString(
      "runbookUrl",
      /^https?:\/\/[^\s#]+$/,
      "an http(s) URL without a #fragment",
    ),
  };
  const timeout = context.chunkTimeoutSeconds;
  if (timeout !== undefined && alerts.stuckMinutes * 60 <= timeout) {
    a.problem(
      "stuckMinutes",
      `expected more than workers.chunkTimeoutSeconds (${timeout} s) in minutes (a chunk may run that long), got ${alerts.stuckMinutes}`,
    );
  }
  return {
    metricsPort: o.int("metricsPort", DEFAULT_METRICS_PORT, 1024, 65_535),
    prometheusOperator,
    scrapeIntervalSeconds: o.int("scrapeIntervalSeconds", 30, 5, 3600),
    monitorLabels: o.labelMap("monitorLabels", Object.values(LABEL)),
    exporter,
    grafanaDashboard: withBroker(
      o,
      "grafanaDashboard",
      o.boolean("grafanaDashboard", broker),
      "its panels read queue and worker metrics",
    ),
    dashboardNamespace: o.dnsLabel("dashboardNamespace", context.namespace),
    alerts,
  };
}
