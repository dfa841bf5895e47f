/**
 * A worker's Prometheus metrics (npm:prom-client), in Prometheus's own manner: base units,
 * `_total` on counters, the labels job_id, backend and worker (never a chunk). Counters follow the
 * broker's answers, fed by the worker's counters ({@linkcode WorkerEvents}); broker call latencies
 * come from {@linkcode instrumentBroker}; gauges are read when scraped, so the hot path pays only
 * a counter increment and a histogram observation per chunk.
 *
 * Loaded only when a metrics port is set (prom-client costs ~90 ms to start).
 *
 * @module
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type {
  AckOutcome,
  Broker,
  ExtendOutcome,
  NackKind,
  NackOutcome,
} from "../brokers/broker.ts";
import type { WorkerEvents } from "./counters.ts";
import type { WorkerHealth } from "./health.ts";

/** Who the metrics are about. */
export interface MetricLabels {
  readonly jobId: string;
  readonly backend: string;
  readonly workerId: string;
}

/** What a worker's metrics read when scraped. */
export interface MetricSources {
  /** Chunks the worker holds now. */
  inFlight(): number;
  /** Handlers running now. */
  busy(): number;
}

/** A worker's registry, and the sinks the worker feeds. */
export interface WorkerMetrics {
  readonly registry: Registry;
  /** Receives what the worker's counters receive. */
  readonly events: WorkerEvents;
  /** Times one broker call. */
  observeBroker(operation: string, seconds: number): void;
}

const LINT_FAILURES = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];
const BROKER_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

/** Creates a worker's metrics on a registry of its own (no global state). */
export function createWorkerMetrics(labels: MetricLabels, sources: MetricSources): WorkerMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({
    job_id: labels.jobId,
    backend: labels.backend,
    worker: labels.workerId,
  });
  collectDefaultMetrics({ register: registry });
  // prom-client names three gauges `_total`, which Prometheus keeps for counters (promtool says so).
  for (const name of LINT_FAILURES) registry.removeSingleMetric(name);
  const counter = (name: string, help: string) =>
    new Counter({ name, help, registers: [registry] });
  const completed = counter(
    "ttg_chunks_completed_total",
    "Chunks whose result this worker stored.",
  );
  const failed = counter("ttg_chunks_failed_total", "Handler runs that failed (timeouts apart).");
  const timedOut = counter("ttg_chunks_timed_out_total", "Handler runs stopped at their timeout.");
  const dead = counter("ttg_chunks_dead_lettered_total", "Chunks this worker dead-lettered.");
  const retried = counter("ttg_chunks_retried_total", "Failed chunks scheduled for a retry.");
  const duplicate = counter("ttg_chunks_duplicate_total", "Results discarded as duplicates.");
  const zombie = counter(
    "ttg_chunks_zombie_total",
    "Acks, nacks or renewals of claims another claim had taken over.",
  );
  const reclaimed = counter("ttg_chunks_reclaimed_total", "Lapsed leases this worker took over.");
  const released = counter("ttg_chunks_released_total", "Chunks given back without an attempt.");
  counter("ttg_worker_starts_total", "Starts of this worker process.").inc();
  const split = counter("ttg_chunks_split_total", "Chunks this worker bisected.");
  const cancelled = counter(
    "ttg_chunks_cancelled_total",
    "Chunks given back that the broker cancelled (their job was cancelled).",
  );
  const duration = new Histogram({
    name: "ttg_chunk_duration_seconds",
    help: "Run time of a chunk's handler.",
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const brokerCalls = new Histogram({
    name: "ttg_broker_operation_duration_seconds",
    help: "Latency of broker calls, by operation.",
    labelNames: ["operation"],
    buckets: BROKER_BUCKETS,
    registers: [registry],
  });
  const brokerChildren = new Map<string, ReturnType<typeof brokerCalls.labels>>();
  new Gauge({
    name: "ttg_chunks_in_flight",
    help: "Chunks this worker holds (queued, running or committing).",
    registers: [registry],
    collect() {
      this.set(sources.inFlight());
    },
  });
  new Gauge({
    name: "ttg_handler_threads_busy",
    help: "Handlers running now.",
    registers: [registry],
    collect() {
      this.set(sources.busy());
    },
  });
  const nacked: Record<NackOutcome, Counter | undefined> = {
    retrying: retried,
    released,
    dead_lettered: dead,
    split,
    cancelled,
    zombie,
  };
  const events: WorkerEvents = {
    ack(outcome: AckOutcome) {
      (outcome === "stored" ? completed : outcome === "duplicate" ? duplicate : zombie).inc();
    },
    failure(kind: NackKind) {
      if (kind === "timeout") timedOut.inc();
      else if (kind !== "released") failed.inc();
    },
    nack(outcome: NackOutcome) {
      nacked[outcome]?.inc();
    },
    extend(outcome: ExtendOutcome) {
      if (outcome === "zombie") zombie.inc();
    },
    reclaimed(count: number) {
      reclaimed.inc(count);
    },
    ran(seconds: number) {
      duration.observe(seconds);
    },
  };
  return {
    registry,
    events,
    observeBroker(operation, seconds) {
      let child = brokerChildren.get(operation);
      if (!child) {
        child = brokerCalls.labels(operation);
        brokerChildren.set(operation, child);
      }
      child.observe(seconds);
    },
  };
}

/** The broker calls a worker makes in its loop, timed. */
const TIMED = new Set(["pull", "ack", "nack", "extend", "reclaim"]);

/**
 * The same broker, with `pull`, `ack`, `nack`, `extend` and `reclaim` timed into `observe`, and
 * each call's success or failure told to `health` (readiness follows the broker). Every other
 * member is the broker's own.
 */
export function instrumentBroker(
  broker: Broker,
  observe: (operation: string, seconds: number) => void,
  health?: WorkerHealth,
): Broker {
  // Made once per member, not on every access: the worker's loop reaches for them per chunk.
  const made = new Map<PropertyKey, unknown>();
  return new Proxy(broker, {
    get(target, key) {
      const member = Reflect.get(target, key, target);
      if (typeof member !== "function") return member;
      if (made.has(key)) return made.get(key);
      const wrapped = typeof key !== "string" || !TIMED.has(key)
        ? member.bind(target)
        : timed(key, member.bind(target));
      made.set(key, wrapped);
      return wrapped;
    },
  });

  function timed(key: string, member: (...args: unknown[]) => unknown) {
    return async (...args: unknown[]) => {
      const t0 = performance.now();
      try {
        const value = await member(...args);
        health?.brokerAnswered(true);
        return value;
      } catch (error) {
        health?.brokerAnswered(false);
        throw error;
      } finally {
        observe(key, (performance.now() - t0) / 1000);
      }
    };
  }
}
