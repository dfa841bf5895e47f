/**
 * TTG's alert rules, from the typed thresholds of `observability.alerts`: one list of rule
 * groups, written as a PrometheusRule (deploy/monitoring.ts) for the Prometheus Operator and as
 * a plain rules file (`deno task manifests --rules`) for a Prometheus without it. Each alert
 * carries `labels.severity` and the annotations `summary`, `description` and `runbook` (and
 * `runbook_url` when `alerts.runbookUrl` is set); the annotations' only templates are
 * `{{ $labels.<name> }}`, so the text is fixed by the config and the alert's labels.
 *
 * Every queue alert reads the exporter's gauges (one series per job, never summed over
 * workers) and fires only while the job is running (`ttg_job_info{state="running"}`): a paused
 * job with ready chunks is not backing up. With the exporter disabled only the alerts on the
 * workers' own counters and on kube-state-metrics remain. Series are matched on
 * `namespace, job_id, backend`: `namespace` is the scrape target's (absent, it matches too), so
 * two deployments with the same job id in different namespaces stay apart.
 *
 * @module
 */
import type { DeploymentConfig } from "./config.ts";
import { names } from "./labels.ts";
import { yamlText } from "./yaml.ts";

/** A Prometheus alerting rule (the rules-file and PrometheusRule format). */
export interface AlertingRule {
  readonly alert: string;
  readonly expr: string;
  /** How long the expression must hold before the alert fires; unset: at once. */
  readonly for?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

/** A named group of rules, evaluated together. */
export interface RuleGroup {
  readonly name: string;
  readonly rules: readonly AlertingRule[];
}

/** How urgent an alert is (`labels.severity`). */
export type Severity = "warning" | "critical";

/** Names of every alert TTG generates. */
export const ALERT_NAMES = [
  "TTGQueueBackingUp",
  "TTGReadyWithoutConsumers",
  "TTGDeadLettersGrowing",
  "TTGWorkersLost",
  "TTGJobStuck",
  "TTGPriorityStarvation",
  "TTGWorkerRestarts",
  "TTGLeaseReclaimsSpiking",
] as const;
/** One of {@linkcode ALERT_NAMES}. */
export type AlertName = typeof ALERT_NAMES[number];

/** The labels a job's series are matched on. */
const JOB = "namespace, job_id, backend";
/** Keeps only series of jobs that are running. */
const RUNNING = `and on (${JOB}) ttg_job_info{state="running"} == 1`;
/** Task priorities (brokers/contract.ts: 0 lowest, 10 highest). */
const PRIORITY_MAX = 10;

interface AlertSpec {
  readonly alert: AlertName;
  readonly severity: Severity;
  readonly expr: readonly string[];
  readonly for?: string;
  readonly summary: string;
  readonly description: string;
  readonly runbook: string;
}

/**
 * The oldest ready chunk of a band waited longer than `seconds` while a higher band has ready
 * chunks whose oldest is younger than that (the higher band is being served): one clause per
 * band below the top, joined by `or`.
 */
function starvationClauses(seconds: number): string[] {
  const clauses: string[] = [];
  for (let band = 0; band < PRIORITY_MAX; band++) {
    const higher = Array.from({ length: PRIORITY_MAX - band }, (_, i) => band + 1 + i).join("|");
    const open = band === 0 ? "  (" : "  or (";
    clauses.push(
      `${open}ttg_queue_oldest_ready_age_seconds{priority="${band}"} > ${seconds}`,
      `    and on (${JOB}) (min by (${JOB}) (ttg_queue_oldest_ready_age_seconds{priority=~"${higher}"} > 0) < ${seconds}))`,
    );
  }
  return clauses;
}

function queueAlerts(config: DeploymentConfig): AlertSpec[] {
  const a = config.observability.alerts;
  const job = "Job {{ $labels.job_id }} on {{ $labels.backend }}";
  const notMoving = (minutes: number) =>
    `and on (${JOB}) ttg_queue_completed <= ttg_queue_completed offset ${minutes}m`;
  const window = a.deadLetterWindowMinutes;
  return [{
    alert: "TTGQueueBackingUp",
    severity: "warning",
    expr: [
      `ttg_queue_ready > ${a.queueBackupReadyChunks}`,
      notMoving(a.queueBackupMinutes),
      RUNNING,
    ],
    for: "1m",
    summary: "TTG job {{ $labels.job_id }} is backing up",
    description:
      `${job} has more than ${a.queueBackupReadyChunks} ready chunks and has completed none in ${a.queueBackupMinutes} minutes.`,
    runbook:
      "Look at the job's consumers and in-flight chunks (ttg status --job-id <id>): no consumers means no worker is running; chunks in flight that never finish point to a hanging handler. Scale the workers or fix the handler.",
  }, {
    alert: "TTGReadyWithoutConsumers",
    severity: "critical",
    expr: ["ttg_queue_ready > 0", `and on (${JOB}) ttg_queue_consumers == 0`, RUNNING],
    for: `${a.readyWithoutConsumersMinutes}m`,
    summary: "TTG job {{ $labels.job_id }} has ready chunks and no consumer",
    description:
      `${job} has had ready chunks and no consumer for ${a.readyWithoutConsumersMinutes} minutes.`,
    runbook:
      "No worker is pulling this job: check the worker pods (kubectl get pods -l app.kubernetes.io/component=worker), their logs and events, the KEDA ScaledJob if autoscaled, and that the workers' --job-id matches.",
  }, {
    alert: "TTGDeadLettersGrowing",
    severity: "warning",
    expr: [
      "(",
      "  ttg_queue_dead_lettered",
      `  - (ttg_queue_dead_lettered offset ${window}m or ttg_queue_dead_lettered * 0)`,
      `) / ${window} > ${a.deadLetterGrowthPerMinute}`,
    ],
    summary: "TTG job {{ $labels.job_id }} is dead-lettering chunks",
    description: a.deadLetterGrowthPerMinute === 0
      ? `${job} dead-lettered chunks in the last ${window} minutes.`
      : `${job} dead-lettered more than ${a.deadLetterGrowthPerMinute} chunks per minute over the last ${window} minutes.`,
    runbook:
      "List the dead letters and their reasons (ttg dlq list --job-id <id>); fix the handler or its input, then replay them (ttg dlq replay).",
  }, {
    alert: "TTGWorkersLost",
    severity: "warning",
    expr: ['ttg_workers{state="lost"} > 0', RUNNING],
    for: `${a.workerLostMinutes}m`,
    summary: "TTG job {{ $labels.job_id }} lost workers",
    description:
      `${job} has had workers that stopped heartbeating without stopping for ${a.workerLostMinutes} minutes.`,
    runbook:
      "A worker died without releasing its chunks (killed, OOM, node lost); its chunks are reclaimed after their lease. Check pod events and restarts (kubectl describe pod) and the node.",
  }, {
    alert: "TTGJobStuck",
    severity: "critical",
    expr: ["ttg_queue_in_flight > 0", notMoving(a.stuckMinutes), RUNNING],
    for: "1m",
    summary: "TTG job {{ $labels.job_id }} is stuck",
    description: `${job} has chunks in flight and has completed none in ${a.stuckMinutes} minutes.`,
    runbook:
      "Workers hold chunks that never finish: look for a handler that hangs or a broker that does not take acks (worker logs, ttg_broker_operation_duration_seconds); restarting the workers releases the chunks.",
  }, {
    alert: "TTGPriorityStarvation",
    severity: "warning",
    expr: [
      "(",
      ...starvationClauses(a.starvationSeconds),
      ")",
      `and on (${JOB}) ttg_queue_completed > ttg_queue_completed offset ${a.starvationSeconds}s`,
      RUNNING,
    ],
    for: "1m",
    summary: "TTG job {{ $labels.job_id }} starves priority {{ $labels.priority }}",
    description:
      `${job}: the oldest ready chunk of priority {{ $labels.priority }} has waited more than ${a.starvationSeconds} s while higher priorities are being served.`,
    runbook:
      "Higher-priority work keeps arriving ahead of this band. Add workers, or publish less at high priority; on Redis priorities age (priorityAgingMs), on RabbitMQ they do not.",
  }];
}

function workerAlerts(config: DeploymentConfig): AlertSpec[] {
  const a = config.observability.alerts;
  const n = names(config);
  const pods = config.mode === "fleet" ? `${n.fleet}|${n.exporter}` : `${n.worker}|${n.exporter}`;
  return [{
    alert: "TTGWorkerRestarts",
    severity: "warning",
    expr: [
      "sum by (namespace, pod, container) (",
      `  increase(kube_pod_container_status_restarts_total{namespace="${config.namespace}", pod=~"(${pods})-.+", container=~"worker|exporter"}[${a.workerRestartWindowMinutes}m])`,
      `) >= ${a.workerRestarts}`,
    ],
    summary: "TTG pod {{ $labels.pod }} is restarting",
    description:
      `Container {{ $labels.container }} of pod {{ $labels.pod }} restarted at least ${a.workerRestarts} times in ${a.workerRestartWindowMinutes} minutes.`,
    runbook:
      "Read the previous container's log (kubectl logs --previous) and the pod's last state (OOMKilled: raise the memory limit; a failing liveness probe: the process stopped answering /healthz).",
  }, {
    alert: "TTGLeaseReclaimsSpiking",
    severity: "warning",
    expr: [
      `sum by (${JOB}) (rate(ttg_chunks_reclaimed_total[5m])) > ${a.reclaimRatePerSecond}`,
    ],
    for: `${a.reclaimMinutes}m`,
    summary: "TTG job {{ $labels.job_id }} reclaims many leases",
    description:
      `Workers of {{ $labels.job_id }} on {{ $labels.backend }} have reclaimed more than ${a.reclaimRatePerSecond} expired chunk leases per second for ${a.reclaimMinutes} minutes.`,
    runbook:
      "Leases expire before their holders renew them: workers are dying, or too busy or throttled to heartbeat. Check restarts and CPU throttling; raise workers.leaseMs or lower workers.heartbeatMs.",
  }];
}

function rule(config: DeploymentConfig, spec: AlertSpec): AlertingRule {
  const base = config.observability.alerts.runbookUrl;
  return {
    alert: spec.alert,
    expr: spec.expr.join("\n"),
    ...(spec.for === undefined ? {} : { for: spec.for }),
    labels: { severity: spec.severity },
    annotations: {
      summary: spec.summary,
      description: spec.description,
      runbook: spec.runbook,
      ...(base === undefined ? {} : { runbook_url: `${base}#${spec.alert.toLowerCase()}` }),
    },
  };
}

/**
 * The rule groups of a deployment: `ttg.queue` (the exporter's gauges, when it is enabled) and
 * `ttg.workers` (the workers' counters and kube-state-metrics' restarts). Static mode has none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveConfig } from "./config.ts";
 * import { alertGroups } from "./alerts.ts";
 * const { config } = resolveConfig({}, { randomSecret: () => "s".repeat(32) });
 * const alerts = alertGroups(config).flatMap((g) => g.rules.map((r) => r.alert));
 * assert.ok(alerts.includes("TTGJobStuck"));
 * assert.equal(alerts.length, 8);
 * ```
 */
export function alertGroups(config: DeploymentConfig): RuleGroup[] {
  if (config.mode === "static") return [];
  const group = (name: string, specs: readonly AlertSpec[]): RuleGroup[] =>
    specs.length === 0 ? [] : [{ name, rules: specs.map((spec) => rule(config, spec)) }];
  return [
    ...group("ttg.queue", config.observability.exporter.enabled ? queueAlerts(config) : []),
    ...group("ttg.workers", workerAlerts(config)),
  ];
}

/** The header of a generated rules file. */
export const RULES_HEADER =
  "# Generated by TTG deploy/ (deno task manifests --rules); edit deploy/config.ts props, not this file.\n";

/**
 * The plain Prometheus rules file (`rule_files:`) of a deployment, keys sorted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveConfig } from "./config.ts";
 * import { rulesFile } from "./alerts.ts";
 * const { config } = resolveConfig({}, { randomSecret: () => "s".repeat(32) });
 * assert.ok(rulesFile(config).includes("alert: TTGQueueBackingUp"));
 * ```
 */
export function rulesFile(config: DeploymentConfig): string {
  return RULES_HEADER + yamlText({ groups: alertGroups(config) });
}
