/**
 * Synthetic series for each generated alert, with the default thresholds of
 * `observability.alerts`: cases in which the alert fires and cases in which it must stay
 * silent. tests/alerts_test.ts turns them into `promtool test rules` files.
 *
 * @module
 */
import type { AlertName } from "../deploy/alerts.ts";

/** A set of input series, evaluated at one time, and the alerts expected then. */
export interface Scenario {
  /** What the case shows, as a sentence. */
  readonly name: string;
  /** Series (`metric{labels}`) and their values in promtool's notation, one sample a minute. */
  readonly series: Readonly<Record<string, string>>;
  /** When the rules are evaluated, e.g. `20m`. */
  readonly evalTime: string;
  /** The labels of each expected alert, besides `severity`; empty: the alert stays silent. */
  readonly fires: readonly Readonly<Record<string, string>>[];
}

/** The scenarios of one alert. */
export interface AlertCases {
  readonly alert: AlertName;
  readonly scenarios: readonly Scenario[];
}

/** The labels of one job's series, as a scrape in namespace `ttg` gives them. */
export const JOB = { namespace: "ttg", job_id: "sweep", backend: "redis" } as const;

/** `metric{labels}` in promtool's series notation. */
export function series(metric: string, labels: Readonly<Record<string, string>> = {}): string {
  const all = { ...JOB, ...labels };
  const text = Object.entries(all).map(([k, v]) => `${k}="${v}"`).join(", ");
  return `${metric}{${text}}`;
}

const running = { [series("ttg_job_info", { state: "running" })]: "1x40" };

/** Every alert's scenarios (default thresholds). */
export const ALERT_CASES: readonly AlertCases[] = [
  {
    alert: "TTGQueueBackingUp",
    scenarios: [
      {
        name: "fires: more than 100 ready chunks and none completed for 15 minutes",
        series: {
          ...running,
          [series("ttg_queue_ready")]: "500x30",
          [series("ttg_queue_completed")]: "10x30",
        },
        evalTime: "20m",
        fires: [JOB],
      },
      {
        name: "silent: chunks keep completing",
        series: {
          ...running,
          [series("ttg_queue_ready")]: "500x30",
          [series("ttg_queue_completed")]: "10+5x30",
        },
        evalTime: "20m",
        fires: [],
      },
      {
        name: "silent: the job is paused",
        series: {
          [series("ttg_job_info", { state: "running" })]: "0x30",
          [series("ttg_job_info", { state: "paused" })]: "1x30",
          [series("ttg_queue_ready")]: "500x30",
          [series("ttg_queue_completed")]: "10x30",
        },
        evalTime: "20m",
        fires: [],
      },
      {
        name: "silent: 50 ready chunks are not a backlog",
        series: {
          ...running,
          [series("ttg_queue_ready")]: "50x30",
          [series("ttg_queue_completed")]: "10x30",
        },
        evalTime: "20m",
        fires: [],
      },
      {
        name: "silent: a job younger than 15 minutes",
        series: {
          ...running,
          [series("ttg_queue_ready")]: "500x30",
          [series("ttg_queue_completed")]: "10x30",
        },
        evalTime: "10m",
        fires: [],
      },
    ],
  },
  {
    alert: "TTGReadyWithoutConsumers",
    scenarios: [
      {
        name: "fires: ready chunks and no consumer for 5 minutes",
        series: {
          ...running,
          [series("ttg_queue_ready")]: "20x20",
          [series("ttg_queue_consumers")]: "0x20",
        },
        evalTime: "10m",
        fires: [JOB],
      },
      {
        name: "silent: only 4 minutes without a consumer",
        series: {
          ...running,
          [series("ttg_queue_ready")]: "20x20",
          [series("ttg_queue_consumers")]: "0x20",
        },
        evalTime: "4m",
        fires: [],
      },
      {
        name: "silent: two consumers",
        series: {
          ...running,
          [series("ttg_queue_ready")]: "20x20",
          [series("ttg_queue_consumers")]: "2x20",
        },
        evalTime: "10m",
        fires: [],
      },
    ],
  },
  {
    alert: "TTGDeadLettersGrowing",
    scenarios: [
      {
        name: "fires: three new dead letters in the last 10 minutes",
        series: { [series("ttg_queue_dead_lettered")]: "0x10 1 2 3 3 3" },
        evalTime: "15m",
        fires: [JOB],
      },
      {
        name: "fires: a job's first dead letters, before it is 10 minutes old",
        series: { [series("ttg_queue_dead_lettered")]: "2x5" },
        evalTime: "3m",
        fires: [JOB],
      },
      {
        name: "silent: the dead letters stopped growing 10 minutes ago",
        series: { [series("ttg_queue_dead_lettered")]: "0 1 2 3x30" },
        evalTime: "20m",
        fires: [],
      },
    ],
  },
  {
    alert: "TTGWorkersLost",
    scenarios: [
      {
        name: "fires: a running job has had a lost worker for 5 minutes",
        series: { ...running, [series("ttg_workers", { state: "lost" })]: "1x20" },
        evalTime: "10m",
        fires: [{ ...JOB, state: "lost" }],
      },
      {
        name: "silent: no worker is lost",
        series: { ...running, [series("ttg_workers", { state: "lost" })]: "0x20" },
        evalTime: "10m",
        fires: [],
      },
      {
        name: "silent: the job is completed",
        series: {
          [series("ttg_job_info", { state: "running" })]: "0x20",
          [series("ttg_job_info", { state: "completed" })]: "1x20",
          [series("ttg_workers", { state: "lost" })]: "1x20",
        },
        evalTime: "10m",
        fires: [],
      },
    ],
  },
  {
    alert: "TTGJobStuck",
    scenarios: [
      {
        name: "fires: chunks in flight and none completed for 15 minutes",
        series: {
          ...running,
          [series("ttg_queue_in_flight")]: "4x30",
          [series("ttg_queue_completed")]: "7x30",
        },
        evalTime: "20m",
        fires: [JOB],
      },
      {
        name: "silent: chunks in flight keep completing",
        series: {
          ...running,
          [series("ttg_queue_in_flight")]: "4x30",
          [series("ttg_queue_completed")]: "7+1x30",
        },
        evalTime: "20m",
        fires: [],
      },
    ],
  },
  {
    alert: "TTGPriorityStarvation",
    scenarios: [
      {
        name: "fires: priority 0 waits over 900 s while priority 5 is served",
        series: {
          ...running,
          [series("ttg_queue_oldest_ready_age_seconds", { priority: "0" })]: "0+60x30",
          [series("ttg_queue_oldest_ready_age_seconds", { priority: "5" })]: "5x30",
          [series("ttg_queue_completed")]: "0+10x30",
        },
        evalTime: "20m",
        fires: [{ ...JOB, priority: "0" }],
      },
      {
        name: "silent: no higher band has ready chunks (one band's backlog)",
        series: {
          ...running,
          [series("ttg_queue_oldest_ready_age_seconds", { priority: "0" })]: "0+60x30",
          [series("ttg_queue_oldest_ready_age_seconds", { priority: "5" })]: "0x30",
          [series("ttg_queue_completed")]: "0+10x30",
        },
        evalTime: "20m",
        fires: [],
      },
      {
        name: "silent: nothing completes (no band is being served)",
        series: {
          ...running,
          [series("ttg_queue_oldest_ready_age_seconds", { priority: "0" })]: "0+60x30",
          [series("ttg_queue_oldest_ready_age_seconds", { priority: "5" })]: "5x30",
          [series("ttg_queue_completed")]: "10x30",
        },
        evalTime: "20m",
        fires: [],
      },
      {
        name: "silent: the high band is the old one",
        series: {
          ...running,
          [series("ttg_queue_oldest_ready_age_seconds", { priority: "0" })]: "5x30",
          [series("ttg_queue_oldest_ready_age_seconds", { priority: "5" })]: "0+60x30",
          [series("ttg_queue_completed")]: "0+10x30",
        },
        evalTime: "20m",
        fires: [],
      },
    ],
  },
  {
    alert: "TTGWorkerRestarts",
    scenarios: [
      {
        name: "fires: a worker container restarted 3 times within 15 minutes",
        series: {
          'kube_pod_container_status_restarts_total{namespace="ttg", pod="ttg-worker-7d9f8-x2x4z", container="worker"}':
            "0 0 1 1 2 2 3 3 3 3",
        },
        evalTime: "9m",
        fires: [{ namespace: "ttg", pod: "ttg-worker-7d9f8-x2x4z", container: "worker" }],
      },
      {
        name: "silent: two restarts",
        series: {
          'kube_pod_container_status_restarts_total{namespace="ttg", pod="ttg-worker-7d9f8-x2x4z", container="worker"}':
            "0 0 1 1 2 2 2 2 2 2",
        },
        evalTime: "9m",
        fires: [],
      },
      {
        name: "silent: another deployment's pod",
        series: {
          'kube_pod_container_status_restarts_total{namespace="other", pod="ttg-worker-7d9f8-x2x4z", container="worker"}':
            "0 0 1 1 2 2 3 3 3 3",
          'kube_pod_container_status_restarts_total{namespace="ttg", pod="redis-0", container="redis"}':
            "0 0 1 1 2 2 3 3 3 3",
        },
        evalTime: "9m",
        fires: [],
      },
    ],
  },
  {
    alert: "TTGLeaseReclaimsSpiking",
    scenarios: [
      {
        name: "fires: 0.2 reclaims per second for 10 minutes",
        series: { [series("ttg_chunks_reclaimed_total", { worker: "ttg-worker-0" })]: "0+12x30" },
        evalTime: "15m",
        fires: [JOB],
      },
      {
        name: "silent: 0.05 reclaims per second",
        series: { [series("ttg_chunks_reclaimed_total", { worker: "ttg-worker-0" })]: "0+3x30" },
        evalTime: "15m",
        fires: [],
      },
      {
        name: "silent: a burst that lasts less than 10 minutes",
        series: {
          [series("ttg_chunks_reclaimed_total", { worker: "ttg-worker-0" })]: "0x5 64x25",
        },
        evalTime: "15m",
        fires: [],
      },
    ],
  },
];
