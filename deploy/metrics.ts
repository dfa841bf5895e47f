/**
 * How a `ttg` pod serves metrics: the named container port `metrics`, the
 * `prometheus.io/*` scrape annotations (for a Prometheus that discovers pods by them), the
 * worker's `TTG_METRICS_PORT`, and the HTTP probes on `/readyz` and `/healthz`.
 *
 * Probes are given only to long-running pods (the worker Deployment, the exporter): a Job's
 * worker exits when the queue is drained and is never restarted in place (restartPolicy
 * Never), so a liveness probe could only kill a worker whose chunks a reclaim would then have to
 * rescue, and no Service routes to it, so readiness would gate nothing.
 *
 * @module
 */
import type { IContainerPort, IEnvVar, IProbe } from "kubernetes-models/v1";
import type { DeploymentConfig } from "./config.ts";

/** Name of the metrics port on every container, Service and monitor that uses it. */
export const METRICS_PORT_NAME = "metrics";
/** Paths the workers and the exporter serve. */
export const METRICS_PATHS = { metrics: "/metrics", health: "/healthz", ready: "/readyz" } as const;

/** The named container port. */
export function metricsContainerPort(config: DeploymentConfig): IContainerPort {
  return {
    name: METRICS_PORT_NAME,
    containerPort: config.observability.metricsPort,
    protocol: "TCP",
  };
}

/** Pod annotations a Prometheus that discovers pods by `prometheus.io/*` scrapes. */
export function scrapeAnnotations(config: DeploymentConfig): Record<string, string> {
  return {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": String(config.observability.metricsPort),
    "prometheus.io/path": METRICS_PATHS.metrics,
  };
}

/** The worker's setting of the port (docs/SETTINGS.md). */
export function metricsEnv(config: DeploymentConfig): IEnvVar[] {
  return [{ name: "TTG_METRICS_PORT", value: String(config.observability.metricsPort) }];
}

/**
 * Readiness on `/readyz` (taken out of a Service's endpoints after 30 s of failures) and
 * liveness on `/healthz` (restarted after a minute without an answer: long enough for a busy
 * process, whose handlers run on threads, to answer).
 */
export function metricsProbes(): {
  readonly readinessProbe: IProbe;
  readonly livenessProbe: IProbe;
} {
  const probe = (path: string, failureThreshold: number): IProbe => ({
    httpGet: { path, port: METRICS_PORT_NAME },
    periodSeconds: 10,
    timeoutSeconds: 5,
    failureThreshold,
  });
  return {
    readinessProbe: probe(METRICS_PATHS.ready, 3),
    livenessProbe: probe(METRICS_PATHS.health, 6),
  };
}

/**
 * The metrics every worker serves (labels `job_id`, `backend`, `worker`; never a chunk id),
 * besides prom-client's default `process_*` metrics. Histograms are named without their
 * `_bucket`, `_sum` and `_count` series.
 */
export const WORKER_METRICS: readonly string[] = [
  "ttg_chunks_completed_total",
  "ttg_chunks_failed_total",
  "ttg_chunks_timed_out_total",
  "ttg_chunks_dead_lettered_total",
  "ttg_chunks_retried_total",
  "ttg_chunks_duplicate_total",
  "ttg_chunks_zombie_total",
  "ttg_chunks_reclaimed_total",
  "ttg_chunks_released_total",
  "ttg_worker_starts_total",
  "ttg_chunk_duration_seconds",
  "ttg_broker_operation_duration_seconds",
  "ttg_chunks_in_flight",
  "ttg_handler_threads_busy",
];

/** The gauges the exporter serves for every job of its broker (labels `job_id`, `backend`). */
export const EXPORTER_METRICS: readonly string[] = [
  "ttg_queue_ready",
  "ttg_queue_in_flight",
  "ttg_queue_delayed",
  "ttg_queue_dead_lettered",
  "ttg_queue_completed",
  "ttg_queue_consumers",
  "ttg_queue_oldest_ready_age_seconds",
  "ttg_job_chunks",
  "ttg_job_info",
  "ttg_workers",
];
