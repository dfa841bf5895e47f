/**
 * The atomic steps of the SQLite broker: each method is one statement or one `BEGIN IMMEDIATE`
 * transaction over prepared statements, synchronous, and knows nothing of waiting, closing or
 * error translation (those are sqlite.ts's). Arguments are validated by the caller.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import {
  type AckOutcome,
  type AckRequest,
  agedPriority,
  type AttemptRecord,
  type BrokerOptions,
  type BrokerStats,
  type ChunkTask,
  type DeadLetter,
  type Delivery,
  type ExtendOutcome,
  type JobRecord,
  type NackOutcome,
  type NackRequest,
  parseTask,
  retryDelayMs,
  type StoredResult,
} from "./contract.ts";
import { errorMessage } from "./errors.ts";
import { prepareStatements, type Statements } from "./sqlite_schema.ts";

/** A consumer's "last seen" row is written at most this often. */
const TOUCH_INTERVAL_MS = 1000;
/** A consumer counts in stats while seen within this many lease periods. */
const CONSUMER_WINDOW_LEASES = 3;
const RESETS = [
  "resetReady",
  "resetLeased",
  "resetResults",
  "resetDeadLetters",
  "resetCounters",
  "resetConsumers",
  "resetJob",
] as const satisfies readonly (keyof Statements)[];

interface ClaimedRow {
  id: number;
  payload: string;
  priority: number;
  enqueued_ms: number;
  attempt: number;
  epoch: number;
  history: string;
}

interface FencedRow {
  id: number;
  epoch: number;
  job_id: string;
  chunk_id: string | null;
}

interface LeasedRow {
  id: number;
  job_id: string;
  chunk_id: string | null;
  payload: string;
  attempt: number;
  epoch: number;
  history: string;
}

interface ExpiredRow extends LeasedRow {
  consumer: string | null;
}

interface DeadLetterRow {
  id: number;
  job_id: string;
  chunk_id: string | null;
  payload: string | null;
  raw: string | null;
  kind: AttemptRecord["kind"];
  reason: string;
  attempts: number;
  epoch: number;
  history: string;
  at: string;
}

interface ResultRow {
  chunk_id: string;
  value: string;
  params: number;
  worker_id: string;
  duration_ms: number;
  completed_at: string;
}

/** What one claim took: deliveries, and how many rows it claimed (malformed ones included). */
export interface Claim {
  /** The claimed rows that are tasks, best first. */
  readonly deliveries: Delivery[];
  /** Rows claimed, malformed ones (now dead letters) included. */
  readonly claimed: number;
}

/** Reads a stored payload as a task of `jobId`, or returns why it is not one. */
function readTask(payload: string, jobId: string): ChunkTask | string {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch (error) {
    return `message is not JSON: ${errorMessage(error)}`;
  }
  const task = parseTask(value);
  if (typeof task === "string" || task.jobId === jobId) return task;
  return `field "jobId" is "${task.jobId}", not the queue's job "${jobId}"`;
}

/** The row a delivery fences on: `[id, epoch]`, its receipt (row id) and epoch. */
function fence(delivery: Delivery): [number, number] {
  return [Number(delivery.receipt), delivery.epoch];
}

/** JSON array of dead-letter ids for `json_each`, or null for all. */
function idList(ids: readonly string[] | undefined): string | null {
  return ids ? JSON.stringify(ids.map(Number)) : null;
}

type CounterName = "duplicates" | "zombies" | "retried" | "reclaimed";

/** Counter increments of one batch, written once per job at the end of its transaction. */
class CounterBatch {
  readonly #byJob = new Map<string, Record<CounterName, number>>();
  add(jobId: string, name: CounterName, count = 1): void {
    let counts = this.#byJob.get(jobId);
    if (!counts) {
      counts = { duplicates: 0, zombies: 0, retried: 0, reclaimed: 0 };
      this.#byJob.set(jobId, counts);
    }
    counts[name] += count;
  }
  flush(statement: StatementSync): void {
    for (const [job, counts] of this.#byJob) statement.run({ job, ...counts });
  }
}

/** The broker's tables behind prepared statements, one atomic step per method. */
export class SqliteStore {
  readonly #db: DatabaseSync;
  readonly #s: Statements;
  readonly #options: BrokerOptions;
  /** When this consumer last wrote its "seen" row, per job. */
  readonly #touched = new Map<string, number>();

  /** Prepares the statements on `db`, an open database with the schema. */
  constructor(db: DatabaseSync, options: BrokerOptions) {
    this.#db = db;
    this.#s = prepareStatements(db);
    this.#options = options;
  }

  /** Records a job; false when it was already recorded. */
  createJob(job: JobRecord): boolean {
    return Number(
      this.#s.insertJob.run({ job: job.jobId, record: JSON.stringify(job) }).changes,
    ) ===
      1;
  }

  /** A job's record, or null. */
  getJob(jobId: string): JobRecord | null {
    const row = this.#s.selectJob.get({ job: jobId }) as { record: string } | undefined;
    return row ? JSON.parse(row.record) as JobRecord : null;
  }

  /** Enqueues tasks in one statement. */
  publish(tasks: readonly ChunkTask[], now: number): void {
    this.#insertTasks(tasks, now, 0);
  }

  /** Whether a claim could find a row: a read, so idle polling takes no write lock. */
  hasClaimable(jobId: string, now: number): boolean {
    return this.#s.probe.get({ job: jobId, now }) !== undefined;
  }

  /** Claims up to `max` rows in one statement; dead-letters the ones that are not tasks. */
  claim(jobId: string, max: number, now: number): Claim {
    const { consumerId: consumer, leaseMs: lease, priorityAgingMs: aging } = this.#options;
    const rows = this.#s.claim.all({
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
      const task = readTask(row.payload, jobId);
      if (typeof task === "string") {
        malformed.push({ row, reason: task });
        continue;
      }
      deliveries.push({
        task,
        attempt: row.attempt,
        maxAttempts: this.#options.retry.maxAttempts,
        epoch: row.epoch,
        receipt: String(row.id),
        history: JSON.parse(row.history),
      });
    }
    if (malformed.length > 0) {
      this.#transaction(() => {
        for (const { row, reason } of malformed) {
          if (Number(this.#s.deleteTask.run({ id: row.id, epoch: row.epoch }).changes) === 0) {
            continue;
          }
          const record = this.#record(row.attempt, "malformed", reason, now);
          this.#s.insertDeadLetter.run({
            job: jobId,
            chunk: null,
            payload: null,
            raw: row.payload,
            kind: "malformed",
            reason,
            attempts: row.attempt,
            epoch: row.epoch,
            history: JSON.stringify([...JSON.parse(row.history), record]),
            at: record.at,
          });
        }
      });
    }
    return { deliveries, claimed: rows.length };
  }

  /** Records that this consumer pulled from `jobId`, at most once per second. */
  touch(jobId: string, now: number): void {
    const last = this.#touched.get(jobId);
    if (last !== undefined && now - last < TOUCH_INTERVAL_MS) return;
    this.#s.touchConsumer.run({ job: jobId, consumer: this.#options.consumerId, now });
    this.#touched.set(jobId, now);
  }

  /** Deletes the leased rows and stores their results: two statements in one transaction. */
  ack(requests: readonly AckRequest[]): AckOutcome[] {
    const counters = new CounterBatch();
    return this.#transaction(() => {
      const fences = JSON.stringify(requests.map(({ delivery }) => fence(delivery)));
      const deleted = new Map<string, { job_id: string; chunk_id: string | null }>();
      for (const row of this.#s.deleteLeased.all({ fences }) as unknown as FencedRow[]) {
        deleted.set(`${row.id}:${row.epoch}`, row);
      }
      const targets = requests.map(({ delivery }) => {
        const row = deleted.get(fence(delivery).join(":"));
        return row && [row.job_id, row.chunk_id ?? delivery.task.chunkId] as const;
      });
      const results = requests.flatMap(({ result }, i) => {
        const target = targets[i];
        if (!target) return [];
        const { value = null, params, workerId, durationMs, completedAt } = result;
        return [[...target, value, params, workerId, durationMs, completedAt]];
      });
      const stored = new Set<string>();
      if (results.length > 0) {
        const rows = this.#s.insertResults.all({ results: JSON.stringify(results) });
        for (const row of rows) stored.add(JSON.stringify([row.job_id, row.chunk_id]));
      }
      const outcomes = requests.map(({ delivery }, i): AckOutcome => {
        const target = targets[i];
        if (!target) {
          counters.add(delivery.task.jobId, "zombies");
          return "zombie";
        }
        // Of several requests for one chunk, the first is the one stored.
        if (stored.delete(JSON.stringify(target))) return "stored";
        counters.add(delivery.task.jobId, "duplicates");
        return "duplicate";
      });
      counters.flush(this.#s.addCounters);
      return outcomes;
    });
  }

  /** Retries, releases, dead-letters or splits leased rows, in one transaction. */
  nack(requests: readonly NackRequest[], now: number): NackOutcome[] {
    const counters = new CounterBatch();
    return this.#transaction(() => {
      const outcomes = requests.map((request) => this.#nackOne(request, now, counters));
      counters.flush(this.#s.addCounters);
      return outcomes;
    });
  }

  /** Extends the leases still held, in one statement. */
  extend(deliveries: readonly Delivery[], now: number): ExtendOutcome[] {
    const until = now + this.#options.leaseMs;
    const fences = JSON.stringify(deliveries.map(fence));
    const counters = new CounterBatch();
    return this.#transaction(() => {
      const rows = this.#s.extend.all({ fences, until }) as unknown as FencedRow[];
      const extended = new Set(rows.map((row) => `${row.id}:${row.epoch}`));
      const outcomes = deliveries.map((delivery): ExtendOutcome => {
        if (extended.has(fence(delivery).join(":"))) return "extended";
        counters.add(delivery.task.jobId, "zombies");
        return "zombie";
      });
      counters.flush(this.#s.addCounters);
      return outcomes;
    });
  }

  /**
   * Makes rows whose lease expired claimable again, the lost attempt in their history; one that
   * expired on its last attempt (a chunk that kills its workers, say) is dead-lettered as
   * `expired`. A read first, so idle calls lock nothing.
   */
  reclaim(jobId: string, max: number, now: number): number {
    if (this.#s.probeExpired.get({ job: jobId, now }) === undefined) return 0;
    const reason = `Lease expired: no heartbeat for ${this.#options.leaseMs} ms`;
    return this.#transaction(() => {
      const rows = this.#s.selectExpired.all({ job: jobId, now, max }) as unknown as ExpiredRow[];
      for (const row of rows) {
        const record = {
          ...this.#record(row.attempt, "expired", reason, now),
          workerId: row.consumer ?? "unknown",
        };
        const history = JSON.stringify([...JSON.parse(row.history), record]);
        if (row.attempt < this.#options.retry.maxAttempts) {
          this.#s.expire.run({ id: row.id, epoch: row.epoch, now, history });
          continue;
        }
        this.#s.insertDeadLetter.run({
          job: row.job_id,
          chunk: row.chunk_id,
          payload: row.payload,
          raw: null,
          kind: "expired",
          reason,
          attempts: row.attempt,
          epoch: row.epoch,
          history,
          at: record.at,
        });
        this.#s.deleteTask.run({ id: row.id, epoch: row.epoch });
      }
      const counters = new CounterBatch();
      if (rows.length > 0) counters.add(jobId, "reclaimed", rows.length);
      counters.flush(this.#s.addCounters);
      return rows.length;
    });
  }

  /** The job's counts, read in one statement (one snapshot). */
  stats(jobId: string, now: number): BrokerStats {
    const since = now - CONSUMER_WINDOW_LEASES * this.#options.leaseMs;
    return { ...this.#s.stats.get({ job: jobId, now, since }) } as unknown as BrokerStats;
  }

  /** The job's stored results, by chunk id. */
  results(jobId: string): StoredResult[] {
    const rows = this.#s.selectResults.all({ job: jobId }) as unknown as ResultRow[];
    return rows.map((row) => ({
      chunkId: row.chunk_id,
      value: JSON.parse(row.value),
      params: row.params,
      workerId: row.worker_id,
      durationMs: row.duration_ms,
      completedAt: row.completed_at,
    }));
  }

  /** The job's dead letters, oldest first; `limit` -1 for all. */
  listDeadLetters(jobId: string, limit: number): DeadLetter[] {
    const rows = this.#s.listDeadLetters.all({ job: jobId, limit }) as unknown as DeadLetterRow[];
    return rows.map((row) => {
      const task = row.payload === null ? null : readTask(row.payload, row.job_id);
      return {
        id: String(row.id),
        jobId: row.job_id,
        task: typeof task === "string" ? null : task,
        ...(row.raw === null ? {} : { raw: row.raw }),
        kind: row.kind,
        reason: row.reason,
        attempts: row.attempts,
        history: JSON.parse(row.history),
        at: row.at,
      };
    });
  }

  /** Puts dead letters back as new rows, attempt 1 on their next claim; skips unreadable ones. */
  replayDeadLetters(jobId: string, ids: readonly string[] | undefined, now: number): number {
    return this.#transaction(() => {
      const selector = { job: jobId, ids: idList(ids) };
      const rows = this.#s.selectReplayable.all(selector) as unknown as DeadLetterRow[];
      let replayed = 0;
      for (const row of rows) {
        const task = readTask(row.payload ?? "", jobId);
        if (typeof task === "string") continue;
        this.#insertTasks([task], now, row.epoch); // the epoch keeps growing across the replay
        this.#s.deleteDeadLetter.run({ id: row.id });
        replayed += 1;
      }
      return replayed;
    });
  }

  /** Deletes the selected dead letters (all of the job's without `ids`); returns how many. */
  purgeDeadLetters(jobId: string, ids: readonly string[] | undefined): number {
    return Number(this.#s.purgeDeadLetters.run({ job: jobId, ids: idList(ids) }).changes);
  }

  /** Deletes every row of the job, in one transaction. */
  reset(jobId: string): void {
    this.#transaction(() => {
      for (const name of RESETS) this.#s[name].run({ job: jobId });
    });
    this.#touched.delete(jobId);
  }

  /** Closes the database. */
  close(): void {
    this.#db.close();
  }

  /** One nack, inside the batch's transaction. */
  #nackOne(request: NackRequest, now: number, counters: CounterBatch): NackOutcome {
    const { delivery, kind, reason, workerId, split } = request;
    const [id, epoch] = fence(delivery);
    const row = this.#s.selectLeased.get({ id, epoch }) as LeasedRow | undefined;
    if (!row) {
      counters.add(delivery.task.jobId, "zombies");
      return "zombie";
    }
    if (split && split.length > 0) {
      this.#insertTasks(split, now, 0);
      this.#s.deleteTask.run({ id: row.id, epoch: row.epoch });
      return "split";
    }
    if (kind === "released") {
      this.#s.release.run({ id: row.id, now });
      return "released";
    }
    const record = { ...this.#record(row.attempt, kind, String(reason), now), workerId };
    const history = JSON.stringify([...JSON.parse(row.history), record]);
    if (kind === "unrecoverable" || row.attempt >= this.#options.retry.maxAttempts) {
      this.#s.insertDeadLetter.run({
        job: row.job_id,
        chunk: row.chunk_id,
        payload: row.payload,
        raw: null,
        kind,
        reason: record.reason,
        attempts: row.attempt,
        epoch: row.epoch,
        history,
        at: record.at,
      });
      this.#s.deleteTask.run({ id: row.id, epoch: row.epoch });
      return "dead_lettered";
    }
    const at = now + retryDelayMs(this.#options.retry, row.attempt);
    this.#s.retry.run({ id: row.id, at, history });
    counters.add(row.job_id, "retried");
    return "retrying";
  }

  #record(attempt: number, kind: AttemptRecord["kind"], reason: string, now: number) {
    const at = new Date(now).toISOString();
    return { attempt, kind, reason, workerId: this.#options.consumerId, at };
  }

  #insertTasks(tasks: readonly ChunkTask[], now: number, epoch: number): void {
    this.#s.insertTasks.run({ tasks: JSON.stringify(tasks), now, epoch });
  }

  #transaction<T>(fn: () => T): T {
    this.#s.begin.run();
    try {
      const result = fn();
      this.#s.commit.run();
      return result;
    } catch (error) {
      if (this.#db.isTransaction) this.#s.rollback.run();
      throw error;
    }
  }
}
