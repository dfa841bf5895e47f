/**
 * What a watcher remembers between snapshots: per job, the last minutes of samples, from which
 * come the throughput now and on average, the ETA, the queue-depth trend, and each worker's
 * rate.
 *
 * @module
 */
import { doneOf, type JobView, type Snapshot } from "./snapshot.ts";

/** One job's figures at one snapshot. */
export interface Sample {
  /** `Date.now()` of the snapshot. */
  readonly at: number;
  /** Chunks accounted for (completed, dead-lettered or cancelled). */
  readonly done: number;
  /** Queue depth: ready + delayed + in flight. */
  readonly depth: number;
  /** Chunks under a lease. */
  readonly inFlight: number;
}

/** Rates and trends of one job. */
export interface JobTrend {
  /** Chunks per second over the last interval (0 before a second sample). */
  readonly rateNow: number;
  /** Chunks per second since the first sample. */
  readonly rateAverage: number;
  /** Seconds to go at the recent rate (undefined when unknown). */
  readonly etaSeconds: number | undefined;
  /** Queue depth (ready + delayed + in flight) of the samples kept, oldest first. */
  readonly depths: readonly number[];
}

/** Keeps the last `windowMs` of samples per job. */
export class History {
  readonly #windowMs: number;
  readonly #samples = new Map<string, Sample[]>();
  readonly #first = new Map<string, Sample>();
  readonly #workerChunks = new Map<string, { at: number; chunks: number; rate: number }>();

  constructor(windowMs = 5 * 60_000) {
    this.#windowMs = windowMs;
  }

  /** Adds a snapshot's samples. */
  add(snapshot: Snapshot): void {
    for (const job of snapshot.jobs) {
      const s = job.stats;
      const sample = {
        at: snapshot.at,
        done: doneOf(job),
        depth: s.ready + s.delayed + s.inFlight,
        inFlight: s.inFlight,
      };
      const list = this.#samples.get(job.jobId) ?? [];
      list.push(sample);
      while (list.length > 2 && snapshot.at - list[0]!.at > this.#windowMs) list.shift();
      this.#samples.set(job.jobId, list);
      if (!this.#first.has(job.jobId)) this.#first.set(job.jobId, sample);
      for (const w of job.workers) {
        // Between two of the worker's own reports (a snapshot may see the same one twice).
        const key = `${job.jobId}\n${w.workerId}`;
        const before = this.#workerChunks.get(key);
        const at = Date.parse(w.lastSeen);
        if (before && at <= before.at) continue;
        const seconds = before ? (at - before.at) / 1000 : 0;
        const rate = before && seconds > 0 ? Math.max(0, w.chunks - before.chunks) / seconds : 0;
        this.#workerChunks.set(key, { at, chunks: w.chunks, rate });
      }
    }
  }

  /** The trend of a job. */
  trend(job: JobView, total: number | undefined): JobTrend {
    const list = this.#samples.get(job.jobId) ?? [];
    const last = list[list.length - 1];
    const previous = list[list.length - 2];
    const first = this.#first.get(job.jobId);
    const rate = (a?: Sample, b?: Sample) =>
      a && b && b.at > a.at ? Math.max(0, (b.done - a.done) / ((b.at - a.at) / 1000)) : 0;
    // The recent rate over up to the last ten samples, so one slow interval does not swing the ETA.
    const recent = list[Math.max(0, list.length - 11)];
    const rateRecent = rate(recent, last);
    const left = total !== undefined && last ? Math.max(0, total - last.done) : undefined;
    return {
      rateNow: rate(previous, last),
      rateAverage: rate(first, last),
      etaSeconds: left === undefined
        ? undefined
        : left === 0
        ? 0
        : rateRecent > 0
        ? left / rateRecent
        : undefined,
      depths: list.map((s) => s.depth),
    };
  }

  /** The samples kept of a job, oldest first (for charts). */
  samples(jobId: string): readonly Sample[] {
    return this.#samples.get(jobId) ?? [];
  }

  /** A worker's chunks per second over the last interval. */
  workerRate(jobId: string, workerId: string): number {
    return this.#workerChunks.get(`${jobId}\n${workerId}`)?.rate ?? 0;
  }
}

const BARS = "▁▂▃▄▅▆▇█";

/**
 * A sparkline of `values` in at most `width` characters (the latest last).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sparkline } from "./history.ts";
 * assert.equal(sparkline([0, 4, 8], 10), "▁▅█");
 * ```
 */
export function sparkline(values: readonly number[], width: number): string {
  const shown = values.slice(-width);
  const max = Math.max(1, ...shown);
  return shown.map((v) =>
    BARS[Math.min(BARS.length - 1, Math.round((v / max) * (BARS.length - 1)))]
  )
    .join("");
}
