/**
 * The checks every broker call makes, made once: a closed broker, an invalid job id, invalid
 * pull, reclaim or list options and invalid dead-letter ids fail with the same typed error and
 * the same message on every broker and every method; a nack becomes a plan of the failure policy
 * (policy.ts) before it reaches the broker; native errors are translated by the one function each
 * broker gives ({@linkcode BrokerDriver.translate}).
 *
 * A broker module implements {@linkcode BrokerDriver} (only how each step is made atomic, with
 * input already checked and one job per call) and hands it to {@linkcode guardBroker}, which
 * returns the {@linkcode Broker} the rest of TTG sees.
 *
 * @module
 */
import type {
  AckOutcome,
  AckRequest,
  Broker,
  BrokerCapabilities,
  BrokerOptions,
  BrokerStats,
  DeadLetterStore,
  Delivery,
  ExtendOutcome,
  NackOutcome,
  NackRequest,
  PullOptions,
  ReclaimOptions,
  ResultPage,
  ResultsOptions,
  Retention,
} from "./broker.ts";
import { BrokerError, TtgError } from "../errors.ts";
import { assertCount } from "./options.ts";
import { planNack } from "./policy.ts";
import { HeadCache } from "./head_cache.ts";
import { pullAcross } from "./pull_across.ts";
import { guardedDeadLetters, guardedFleet, guardedRetention, type Run } from "./guard_parts.ts";
import {
  type ControlAction,
  type ControlOutcome,
  type FleetRegistry,
  type JobSummary,
  jobsVersion,
  listJobs,
  markJobsChanged,
  swapControl,
} from "./registry.ts";
import { assertJobId, assertTask, type ChunkTask, type JobRecord } from "./task.ts";

export { assertCount, brokerOptions } from "./options.ts";

export type { BrokerDriver, PlannedNack, PullAcrossRequest, PullRequest } from "./driver.ts";
import type { BrokerDriver } from "./driver.ts";

/** Groups items by job id, keeping each item's index, in first-seen order. */
function byJob<T>(items: readonly T[], jobOf: (item: T) => string): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  items.forEach((item, i) => {
    const jobId = jobOf(item);
    assertJobId(jobId);
    const list = groups.get(jobId);
    if (list) list.push(i);
    else groups.set(jobId, [i]);
  });
  return groups;
}

const NACK_KINDS: ReadonlySet<string> = new Set(["failed", "timeout", "unrecoverable", "released"]);

/** The {@linkcode Broker} over a driver: checks, plans, grouping per job, errors and closing. */
class GuardedBroker implements Broker {
  readonly #driver: BrokerDriver;
  readonly #closing = new AbortController();
  /** The job heads this consumer's pulls across jobs last read. */
  readonly #heads = new HeadCache();
  #closed: Promise<void> | undefined;
  readonly deadLetters: DeadLetterStore;
  readonly fleet: FleetRegistry;
  readonly retention: Retention;

  constructor(driver: BrokerDriver) {
    this.#driver = driver;
    const run: Run = (action, fn) => this.#run(action, fn);
    this.fleet = guardedFleet(driver.kv, run);
    this.retention = guardedRetention(driver, run, (jobId) => this.reset(jobId));
    this.deadLetters = guardedDeadLetters(driver, run);
  }

  get backend(): string {
    return this.#driver.backend;
  }

  get options(): BrokerOptions {
    return this.#driver.options;
  }

  get capabilities(): BrokerCapabilities {
    return this.#driver.capabilities;
  }

  createJob(job: JobRecord): Promise<boolean> {
    return this.#run(`record job "${job?.jobId}"`, async () => {
      assertJobId(job.jobId);
      if (!(await this.#driver.createJob(job))) return false;
      await this.#driver.kv.put("jobs", job.jobId, JSON.stringify(job));
      await markJobsChanged(this.#driver.kv);
      return true;
    });
  }

  listJobs(): Promise<JobSummary[]> {
    return this.#run("list jobs", () => listJobs(this.#driver.kv));
  }

  jobsVersion(): Promise<string> {
    return this.#run("read the job index's version", () => jobsVersion(this.#driver.kv));
  }

  control(jobId: string, action: ControlAction): Promise<ControlOutcome> {
    return this.#run(`${action} job "${jobId}"`, async () => {
      assertJobId(jobId);
      if (!["pause", "resume", "cancel"].includes(action)) {
        throw new TypeError(`Invalid action "${action}": expected pause, resume or cancel`);
      }
      const kv = this.#driver.kv;
      const { before, after } = await swapControl(kv, jobId, action);
      if (after !== before) await markJobsChanged(kv);
      // Cancelled first, then the queue emptied: from now on nothing of the job is handed out.
      const cancelled = after === "cancelled" ? await this.#driver.cancelQueued(jobId) : 0;
      this.#heads.changed(jobId);
      return { before, after, cancelled };
    });
  }

  getJob(jobId: string): Promise<JobRecord | null> {
    return this.#run(`read job "${jobId}"`, () => {
      assertJobId(jobId);
      return this.#driver.getJob(jobId);
    });
  }

  publish(tasks: readonly ChunkTask[]): Promise<void> {
    return this.#run(`publish ${tasks?.length} tasks`, async () => {
      const groups = byJob(tasks, (t) => t?.jobId);
      for (const task of tasks) assertTask(task);
      for (const [jobId, indexes] of groups) {
        await this.#driver.publish(jobId, indexes.map((i) => tasks[i]!));
        this.#heads.changed(jobId);
      }
    });
  }

  pull(options: PullOptions): Promise<Delivery[]> {
    const { jobId, jobIds, max = 1, waitMs = 1000, signal } = options ?? {};
    const ids = jobIds === undefined ? [jobId!] : [...new Set(jobIds)];
    const action = ids.length === 1 ? `pull from job "${ids[0]}"` : `pull from ${ids.length} jobs`;
    return this.#run(action, async () => {
      if (jobIds !== undefined && jobId !== undefined) {
        throw new TypeError(`Invalid pull of job "${jobId}" and jobIds: expected one of them`);
      }
      if (jobIds !== undefined && (!Array.isArray(jobIds) || jobIds.length === 0)) {
        throw new TypeError(`Invalid jobIds "${String(jobIds)}": expected a non-empty array`);
      }
      for (const id of ids) assertJobId(id);
      assertCount("max", max, 1);
      if (!(waitMs >= 0) || !Number.isFinite(waitMs)) {
        throw new RangeError(`Invalid waitMs "${waitMs}": expected 0 or more milliseconds`);
      }
      if (signal?.aborted) return [];
      const both = signal ? AbortSignal.any([signal, this.#closing.signal]) : this.#closing.signal;
      const driver = this.#driver;
      let deliveries: Delivery[];
      if (ids.length === 1) {
        deliveries = await driver.pull({ jobId: ids[0]!, max, waitMs, signal: both });
      } else if (driver.pullAcross) {
        deliveries = await driver.pullAcross({ jobIds: ids, max, waitMs, signal: both });
      } else if (driver.heads) {
        const heads = { heads: driver.heads.bind(driver), pull: driver.pull.bind(driver) };
        deliveries = await pullAcross(heads, this.#heads, {
          jobIds: ids,
          max,
          waitMs,
          signal: both,
        });
      } else {
        throw new BrokerError(
          "NOT_IMPLEMENTED",
          `Cannot ${action}: ${driver.displayName} pulls from one job at a time`,
        );
      }
      this.#assertOpen(action);
      return deliveries;
    });
  }

  ack(requests: readonly AckRequest[]): Promise<AckOutcome[]> {
    return this.#batch(
      "ack",
      requests,
      (r) => r.delivery.task.jobId,
      (jobId, list) => {
        this.#heads.settled(jobId);
        return this.#driver.ack(jobId, list);
      },
    );
  }

  nack(requests: readonly NackRequest[]): Promise<NackOutcome[]> {
    const policy = this.#driver.options.retry;
    return this.#batch(
      "nack",
      requests,
      (r) => r.delivery.task.jobId,
      (jobId, list) => {
        this.#heads.changed(jobId);
        const now = Date.now();
        return this.#driver.nack(
          jobId,
          list.map((request) => {
            if (!NACK_KINDS.has(request.kind)) {
              throw new TypeError(
                `Invalid nack kind "${request.kind}": expected failed, timeout, unrecoverable or released`,
              );
            }
            return {
              delivery: request.delivery,
              plan: planNack(request.delivery, request, policy, now),
            };
          }),
        );
      },
    );
  }

  extend(deliveries: readonly Delivery[]): Promise<ExtendOutcome[]> {
    return this.#batch(
      "extend",
      deliveries,
      (d) => d.task.jobId,
      (jobId, list) => this.#driver.extend(jobId, list),
    );
  }

  reclaim(options: ReclaimOptions): Promise<number> {
    const { jobId, max = 1000 } = options ?? {};
    const action = `reclaim leases of job "${jobId}"`;
    return this.#run(action, () => {
      assertJobId(jobId);
      assertCount("max", max, 1);
      const reclaim = this.#driver.reclaim?.bind(this.#driver);
      if (!reclaim) {
        throw new BrokerError(
          "NOT_IMPLEMENTED",
          `Cannot ${action}: ${this.#driver.displayName} holds leases on the consumer's connection and takes them back itself`,
        );
      }
      return reclaim(jobId, max);
    });
  }

  stats(jobId: string): Promise<BrokerStats> {
    return this.#run(`read stats of job "${jobId}"`, () => {
      assertJobId(jobId);
      return this.#driver.stats(jobId);
    });
  }

  results(jobId: string, options: ResultsOptions = {}): Promise<ResultPage> {
    return this.#run(`read results of job "${jobId}"`, () => {
      assertJobId(jobId);
      const { cursor, limit = 1000 } = options;
      assertCount("limit", limit, 1);
      if (cursor !== undefined && (typeof cursor !== "string" || cursor === "")) {
        throw new TypeError(`Invalid cursor "${cursor}": expected the cursor of a previous page`);
      }
      return this.#driver.results(jobId, cursor ?? null, limit);
    });
  }

  reset(jobId: string): Promise<void> {
    return this.#run(`reset job "${jobId}"`, async () => {
      assertJobId(jobId);
      await this.#driver.reset(jobId);
      this.#heads.changed(jobId);
      for (const space of ["jobs", "controls", "finished"] as const) {
        await this.#driver.kv.delete(space, jobId);
      }
      await markJobsChanged(this.#driver.kv);
    });
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closing.abort(this.#closedError("finish a call"));
      this.#closed = this.#driver.close();
    }
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** One driver call per job of the batch; outcomes keep the order of the requests. */
  #batch<T, O>(
    verb: string,
    items: readonly T[],
    jobOf: (item: T) => string,
    call: (jobId: string, list: T[]) => Promise<O[]>,
  ): Promise<O[]> {
    return this.#run(`${verb} ${items?.length} deliveries`, async () => {
      const out = new Array<O>(items.length);
      for (const [jobId, indexes] of byJob(items, jobOf)) {
        const outcomes = await call(jobId, indexes.map((i) => items[i]!));
        indexes.forEach((index, k) => out[index] = outcomes[k]!);
      }
      return out;
    });
  }

  #assertOpen(action: string): void {
    if (this.#closed) throw this.#closedError(action);
  }

  #closedError(action: string, cause?: unknown): BrokerError {
    return new BrokerError(
      "CLOSED",
      `Cannot ${action}: the ${this.#driver.displayName} broker is closed`,
      cause === undefined ? undefined : { cause },
    );
  }

  /** Runs one operation: `CLOSED` before and after close, native errors translated once. */
  async #run<T>(action: string, fn: () => T | Promise<T>): Promise<T> {
    this.#assertOpen(action);
    try {
      return await fn();
    } catch (error) {
      if (error instanceof TypeError || error instanceof RangeError) throw error;
      if (this.#closed) {
        if (error instanceof BrokerError && error.code === "CLOSED") throw error;
        throw this.#closedError(action, error);
      }
      if (error instanceof TtgError) throw error;
      throw this.#driver.translate(error, action);
    }
  }
}

/**
 * Wraps a broker module's driver into the {@linkcode Broker} the rest of TTG uses.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openSqliteBroker } from "./sqlite/sqlite.ts";
 * const broker = await openSqliteBroker({ path: ":memory:" });
 * await broker.close();
 * await assert.rejects(broker.stats("demo"), { code: "CLOSED" });
 * ```
 */
export function guardBroker(driver: BrokerDriver): Broker {
  return new GuardedBroker(driver);
}
