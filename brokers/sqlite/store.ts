/**
 * The atomic steps of the SQLite broker: each method is one statement or one `BEGIN IMMEDIATE`
 * transaction over prepared statements, synchronous, and applies what the failure policy decided
 * (policy.ts); taking leases back is reclaim.ts's, and waiting, closing, validation and error
 * translation are sqlite.ts's and guard.ts's.
 *
 * @module
 */
import type {
  AckOutcome,
  AckRequest,
  BrokerOptions,
  Delivery,
  ExtendOutcome,
  NackOutcome,
} from "../broker.ts";
import type { PlannedNack } from "../guard.ts";
import { agedPriority, malformedLetter, underControl } from "../policy.ts";
import type { JobHead } from "../share.ts";
import { type ChunkTask, readTaskJson } from "../task.ts";
import { CounterBatch, type Tables } from "./tables.ts";

/** A consumer's "last seen" row is written at most this often (and at least thrice a lease). */
const TOUCH_INTERVAL_MS = 1000;
interface ClaimedRow {
  id: number;
  payload: string;
  priority: number;
  enqueued_ms: number;
  attempt: number;
  crashes: number;
  epoch: number;
  history: string;
}

interface HeadRow {
  best: number | null;
  ready: number;
  in_flight: number;
  cap: number | null;
}

interface FencedRow {
  id: number;
  epoch: number;
  job_id: string;
  chunk_id: string | null;
}

interface FateRow {
  row_epoch: number | null;
  result_epoch: number | null;
  letter_epoch: number | null;
}

/** The row a delivery fences on: `[id, epoch]`, its receipt (row id) and epoch. */
function fence(delivery: Delivery): [number, number] {
  return [Number(delivery.receipt), delivery.epoch];
}

/** The steps on a job's chunks, one atomic step per method. */
export class SqliteStore {
  readonly #t: Tables;
  readonly #options: BrokerOptions;
  /** When this consumer last wrote its "seen" row, per job. */
  readonly #touched = new Map<string, number>();

  constructor(tables: Tables, options: BrokerOptions) {
    this.#t = tables;
    this.#options = options;
  }

  /** Enqueues tasks in one statement. */
  publish(tasks: readonly ChunkTask[], now: number): void {
    this.#t.insertTasks(tasks, now, 0);
  }

  /** Each job's head for a pull across jobs: a read per job, no write lock. */
  heads(jobIds: readonly string[], max: number, now: number): JobHead[] {
    const aging = this.#options.priorityAgingMs;
    const head = this.#t.sized("head", max);
    return jobIds.map((jobId) => {
      const row = head.get({
        job: jobId,
        now,
        aging,
      }) as unknown as HeadRow;
      return {
        jobId,
        priority: row.best,
        ready: Math.min(max, row.ready),
        inFlight: row.in_flight,
        ...(row.cap === null ? {} : { maxInFlight: row.cap }),
      };
    });
  }

  /** Whether a claim could find a row: a read, so idle polling takes no write lock. */
  hasClaimable(jobId: string, now: number): boolean {
    return this.#t.s.probe.get({ job: jobId, now }) !== undefined;
  }

  /**
   * Claims up to `max` rows of a running job in one statement and dead-letters the ones that are
   * not tasks; returns the deliveries, best first, and how many rows were claimed.
   */
  claim(jobId: string, max: number, now: number): { deliveries: Delivery[]; claimed: number } {
    const { consumerId: consumer, leaseMs: lease, priorityAgingMs: aging } = this.#options;
    const rows = this.#t.sized("claim", max).all({
      job: jobId,
      now,
      max,
      consumer,
      lease,
      aging,
    }) as unknown as ClaimedRow[];
    const aged = (row: ClaimedRow) => agedPriority(row.priority, now - row.enqueued_ms, aging);
    rows.sort((a, b) => aged(b) - aged(a) || a.enqueued_ms - b.enqueued_ms || a.id - b.id);
    const deliveries: Delivery[] = [];
    const malformed: { row: ClaimedRow; reason: string }[] = [];
    for (const row of rows) {
      const task = readTaskJson(row.payload, jobId);
      if (typeof task === "string") {
        malformed.push({ row, reason: task });
        continue;
      }
      deliveries.push({
        task,
        attempt: row.attempt,
        maxAttempts: this.#options.retry.maxAttempts,
        crashes: row.crashes,
        epoch: row.epoch,
        receipt: String(row.id),
        history: JSON.parse(row.history),
      });
    }
    if (malformed.length > 0) {
      this.#t.transaction(() => {
        for (const { row, reason } of malformed) {
          if (Number(this.#t.s.deleteTask.run({ id: row.id, epoch: row.epoch }).changes) === 0) {
            continue;
          }
          const letter = malformedLetter(reason, consumer, now);
          this.#t.deadLetter(jobId, null, row.payload, row.epoch, letter);
        }
      });
    }
    return { deliveries, claimed: rows.length };
  }

  /** Records that this consumer is alive for `jobId` (pulls and heartbeats), at most once a second. */
  touch(jobId: string, now: number): void {
    const last = this.#touched.get(jobId);
    const every = Math.min(TOUCH_INTERVAL_MS, this.#options.leaseMs / 3);
    if (last !== undefined && now - last < every) return;
    this.#t.s.touchConsumer.run({ job: jobId, consumer: this.#options.consumerId, now });
    this.#touched.set(jobId, now);
  }

  /** Forgets what this consumer wrote about a job (its rows are gone). */
  forget(jobId: string): void {
    this.#touched.delete(jobId);
  }

  /** Deletes the leased rows and stores their results: two statements in one transaction. */
  ack(jobId: string, requests: readonly AckRequest[]): AckOutcome[] {
    const { s } = this.#t;
    const counters = new CounterBatch();
    return this.#t.transaction(() => {
      const fences = JSON.stringify(requests.map(({ delivery }) => fence(delivery)));
      const deleted = new Map<string, FencedRow>();
      for (const row of s.deleteLeased.all({ fences }) as unknown as FencedRow[]) {
        deleted.set(`${row.id}:${row.epoch}`, row);
      }
      const targets = requests.map(({ delivery }) => {
        const row = deleted.get(fence(delivery).join(":"));
        return row && [row.job_id, row.chunk_id ?? delivery.task.chunkId] as const;
      });
      const results = requests.flatMap(({ delivery, result }, i) => {
        const target = targets[i];
        if (!target) return [];
        const { value = null, params, workerId, durationMs, completedAt } = result;
        const attempt = result.attempt ?? null;
        return [[
          ...target,
          value,
          params,
          workerId,
          durationMs,
          completedAt,
          delivery.epoch,
          attempt,
        ]];
      });
      const stored = new Set<string>();
      if (results.length > 0) {
        const rows = s.insertResults.all({ results: JSON.stringify(results) });
        for (const row of rows) stored.add(JSON.stringify([row.job_id, row.chunk_id]));
      }
      const outcomes = requests.map((_, i): AckOutcome => {
        const target = targets[i];
        if (!target) {
          counters.add("zombies");
          return "zombie";
        }
        // Of several requests for one chunk, the first is the one stored.
        if (stored.delete(JSON.stringify(target))) {
          counters.add("params", requests[i]!.result.params);
          return "stored";
        }
        counters.add("duplicates");
        return "duplicate";
      });
      counters.flush(s.addCounters, jobId);
      return outcomes;
    });
  }

  /**
   * Applies each plan to its row while the claim is current, in one transaction; in a
   * cancelled job (the control read in the same transaction), the chunk is cancelled instead.
   */
  nack(jobId: string, requests: readonly PlannedNack[], now: number): NackOutcome[] {
    const { s } = this.#t;
    const counters = new CounterBatch();
    return this.#t.transaction(() => {
      const control = this.#t.control(jobId, now);
      const outcomes = requests.map(({ delivery, plan: planned }): NackOutcome => {
        const [id, epoch] = fence(delivery);
        if (!s.selectLeased.get({ id, epoch })) {
          counters.add("zombies");
          return "zombie";
        }
        const plan = underControl(planned, control);
        switch (plan.action) {
          case "release":
            s.release.run({ id, now });
            return "released";
          case "retry":
            s.retry.run({
              id,
              at: now + plan.delayMs,
              attempt: plan.attempt - 1,
              history: JSON.stringify(plan.history),
            });
            counters.add("retried");
            return "retrying";
          case "split":
            this.#t.insertTasks(plan.parts, now, 0);
            s.deleteTask.run({ id, epoch });
            counters.add("splits");
            return "split";
          case "dead":
            this.#t.deadLetter(jobId, delivery.task, null, epoch, plan.letter);
            s.deleteTask.run({ id, epoch });
            return "dead_lettered";
          case "cancel":
            s.deleteTask.run({ id, epoch });
            counters.add("cancelled");
            return "cancelled";
        }
      });
      counters.flush(s.addCounters, jobId);
      return outcomes;
    });
  }

  /**
   * Extends the leases still held, in one statement (`cancelled` for those of a cancelled job).
   * A claim that is not current is `gone` when its holder settled it (the row is back with the
   * same epoch, or its result or dead letter carries that epoch) and `zombie` (counted) when a
   * later claim or a takeover superseded it.
   */
  extend(jobId: string, deliveries: readonly Delivery[], now: number): ExtendOutcome[] {
    const until = now + this.#options.leaseMs;
    const fences = JSON.stringify(deliveries.map(fence));
    const counters = new CounterBatch();
    return this.#t.transaction(() => {
      this.touch(jobId, now);
      const live = this.#t.control(jobId, now) === "cancelled" ? "cancelled" : "extended";
      const rows = this.#t.s.extend.all({ fences, until }) as unknown as FencedRow[];
      const extended = new Set(rows.map((row) => `${row.id}:${row.epoch}`));
      const outcomes = deliveries.map((delivery): ExtendOutcome => {
        if (extended.has(fence(delivery).join(":"))) return live;
        if (this.#settledBy(jobId, delivery)) return "gone";
        counters.add("zombies");
        return "zombie";
      });
      counters.flush(this.#t.s.addCounters, jobId);
      return outcomes;
    });
  }

  /** True when the claim of `delivery` was settled by its own holder, not superseded. */
  #settledBy(jobId: string, delivery: Delivery): boolean {
    const [id, epoch] = fence(delivery);
    const fate = this.#t.s.selectFate.get({ id, job: jobId, chunk: delivery.task.chunkId }) as
      | FateRow
      | undefined;
    if (!fate) return false;
    if (fate.row_epoch !== null) return fate.row_epoch === epoch; // back in the queue by a nack
    if (fate.result_epoch !== null) return fate.result_epoch === epoch;
    if (fate.letter_epoch !== null) return fate.letter_epoch === epoch;
    return true; // split into halves, cancelled, or the job was reset: nothing superseded it
  }

  /** Cancels the job's queued rows in one transaction; returns how many. */
  cancelQueued(jobId: string): number {
    return this.#t.transaction(() => {
      const n = Number(this.#t.s.cancelQueued.run({ job: jobId }).changes);
      const counters = new CounterBatch();
      counters.add("cancelled", n);
      counters.flush(this.#t.s.addCounters, jobId);
      return n;
    });
  }
}
