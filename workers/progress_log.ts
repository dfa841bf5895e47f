/**
 * A worker's PROGRESS lines: one per long chunk every interval with its handler's latest
 * `ctx.progress` count, and one for the worker as a whole on `ttg run`'s plain schedule (at most
 * one every 3 s, and only when it counted chunks since the last), so a lone `ttg worker` on a long
 * job is never silent between STARTING and COMPLETED. Never a line per parameter.
 *
 * @module
 */
import type { Logger } from "../jobs/define_job.ts";
import type { Clock } from "./clock.ts";
import type { WorkerCounts } from "./counters.ts";
import type { Entry } from "./in_flight.ts";
import { PLAIN_PROGRESS_MS } from "./progress.ts";

/** Default interval of a long chunk's PROGRESS lines. */
export const PROGRESS_LOG_MS = 5000;

/** Writes PROGRESS lines at most once per interval per chunk, and per worker. */
export class ProgressLog {
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #workerIntervalMs: number;
  readonly #startedAt: number;
  #lastWorkerLine: number;
  #lastChunks = 0;

  constructor(
    log: Logger,
    clock: Clock,
    intervalMs = PROGRESS_LOG_MS,
    workerIntervalMs = PLAIN_PROGRESS_MS,
  ) {
    this.#log = log;
    this.#clock = clock;
    this.#intervalMs = intervalMs;
    this.#workerIntervalMs = workerIntervalMs;
    this.#startedAt = clock.now();
    this.#lastWorkerLine = this.#startedAt;
  }

  /** A handler reported `done` parameters: keep the count, and log it if the chunk is long. */
  report(entry: Entry, done: number): void {
    if (entry.state !== "running" || entry.dropped || entry.controller.signal.aborted) return;
    if (typeof done !== "number" || !Number.isFinite(done)) return;
    entry.progress = done;
    this.chunk(entry);
  }

  /**
   * A chunk running longer than the interval that reported progress logs its latest count once
   * per interval (checked on every report and every tick of the worker's line); short chunks log
   * nothing.
   */
  chunk(entry: Entry): void {
    if (entry.progress === undefined || entry.state !== "running" || entry.dropped) return;
    const now = this.#clock.now();
    if (now - (entry.startedAt ?? now) < this.#intervalMs) return;
    if (now - (entry.progressLoggedAt ?? -Infinity) < this.#intervalMs) return;
    entry.progressLoggedAt = now;
    const task = entry.delivery.task;
    const done = Math.min(entry.params, Math.max(0, entry.progress));
    this.#log.info("PROGRESS", {
      job_id: task.jobId,
      chunk_id: task.chunkId,
      done,
      of: entry.params,
      percent: entry.params > 0 ? Math.round((done / entry.params) * 100) : 100,
    });
  }

  /** The lines due now: each long chunk's, then the worker's own (`held` are its chunks). */
  due(held: Iterable<Entry>, counts: WorkerCounts): Promise<void> {
    let inFlight = 0;
    for (const entry of held) {
      inFlight++;
      this.chunk(entry);
    }
    this.worker(counts, inFlight);
    return Promise.resolve();
  }

  /** The worker's own line, once per its interval while it has counted chunks since the last. */
  worker(counts: WorkerCounts, inFlight: number): void {
    const now = this.#clock.now();
    if (now - this.#lastWorkerLine < this.#workerIntervalMs) return;
    if (counts.chunks === this.#lastChunks) return;
    const seconds = (now - this.#lastWorkerLine) / 1000;
    const rate = (counts.chunks - this.#lastChunks) / seconds;
    this.#lastWorkerLine = now;
    this.#lastChunks = counts.chunks;
    this.#log.info("PROGRESS", {
      chunks: counts.chunks,
      params: counts.params,
      in_flight: inFlight,
      chunks_per_second: Math.round(rate * 10) / 10,
      failures: counts.failures,
      timeouts: counts.timeouts,
    });
  }
}
