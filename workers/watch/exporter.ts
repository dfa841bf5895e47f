/**
 * `ttg exporter`: the queue-level gauges of every job of one broker, from one place, so they are
 * never summed over N workers (kube-state-metrics' pattern). A scrape reads a snapshot (one stats
 * read per job); scrapes within `cacheMs` of each other share it, however many Prometheus servers
 * ask.
 *
 * @module
 */
import { Gauge, Registry } from "prom-client";
import type { Broker } from "../../brokers/broker.ts";
import { readSnapshot, type Snapshot } from "./snapshot.ts";
import { chunksOf } from "./snapshot.ts";

/** The exporter's registry, and its readiness (the broker answered the last read). */
export interface Exporter {
  readonly registry: Registry;
  /** Why it is not ready, or undefined. */
  notReady(): string | undefined;
  /** The exposition text, after reading the broker if the cached snapshot is stale. */
  metrics(): Promise<string>;
}

const JOB_STATES = ["running", "paused", "cancelled", "completed", "failed"] as const;
const WORKER_STATES = ["starting", "busy", "idle", "draining", "stopped", "lost"] as const;

/** Creates the exporter of `broker`'s jobs. */
export function createExporter(broker: Broker, cacheMs = 1000): Exporter {
  const registry = new Registry();
  registry.setDefaultLabels({ backend: broker.backend });
  const gauge = (name: string, help: string, labelNames: string[] = ["job_id"]) =>
    new Gauge({ name, help, labelNames, registers: [registry] });
  const g = {
    ready: gauge("ttg_queue_ready", "Chunks waiting to be pulled."),
    inFlight: gauge("ttg_queue_in_flight", "Chunks under a lease."),
    delayed: gauge("ttg_queue_delayed", "Chunks waiting out a retry backoff."),
    dead: gauge("ttg_queue_dead_lettered", "Dead letters of the job."),
    completed: gauge("ttg_queue_completed", "Chunks with a counted result."),
    cancelled: gauge("ttg_queue_cancelled", "Chunks of a cancelled job that will not run."),
    consumers: gauge("ttg_queue_consumers", "Consumers alive now."),
    oldest: gauge(
      "ttg_queue_oldest_ready_age_seconds",
      "How long the oldest ready chunk of each priority band has waited.",
      ["job_id", "priority"],
    ),
    chunks: gauge("ttg_job_chunks", "Chunks of the job: planned, plus bisected halves."),
    info: gauge("ttg_job_info", "1 for the job's state.", ["job_id", "state"]),
    workers: gauge("ttg_workers", "Workers of the job in each state.", ["job_id", "state"]),
  };
  let snapshot: Snapshot | undefined;
  let failure: string | undefined;
  const refresh = async () => {
    if (snapshot && Date.now() - snapshot.at < cacheMs) return;
    try {
      snapshot = await readSnapshot(broker, { all: true });
      failure = undefined;
    } catch (error) {
      failure = `the broker is unreachable: ${(error as Error).message}`;
      return; // the last values stay; /readyz tells
    }
    for (const gaugeOf of Object.values(g)) gaugeOf.reset();
    for (const job of snapshot.jobs) {
      const s = job.stats;
      const labels = { job_id: job.jobId };
      g.ready.set(labels, s.ready);
      g.inFlight.set(labels, s.inFlight);
      g.delayed.set(labels, s.delayed);
      g.dead.set(labels, s.deadLettered);
      g.completed.set(labels, s.completed);
      g.cancelled.set(labels, s.cancelled);
      g.consumers.set(labels, s.consumers);
      for (const { priority, ageMs } of s.oldestReady ?? []) {
        g.oldest.set({ job_id: job.jobId, priority: String(priority) }, ageMs / 1000);
      }
      const chunks = chunksOf(job);
      if (chunks !== undefined) g.chunks.set(labels, chunks);
      for (const state of JOB_STATES) {
        g.info.set({ job_id: job.jobId, state }, job.state === state ? 1 : 0);
      }
      for (const state of WORKER_STATES) {
        const n = job.workers.filter((w) => w.state === state).length;
        g.workers.set({ job_id: job.jobId, state }, n);
      }
    }
  };
  return {
    registry,
    notReady: () => failure,
    async metrics() {
      await refresh();
      return await registry.metrics();
    },
  };
}
