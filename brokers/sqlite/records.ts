/**
 * What the SQLite broker keeps besides the queue: job records, counts, results, dead letters and
 * the key-value store of the job index, controls and fleet registry; each method one statement or
 * one transaction.
 *
 * @module
 */
import type {
  BrokerOptions,
  BrokerStats,
  DeadLetter,
  ResultPage,
  StoredResult,
} from "../broker.ts";
import type { AttemptRecord } from "../policy.ts";
import type { DriverKv, KvSpace } from "../registry.ts";
import { type JobRecord, readTaskJson } from "../task.ts";
import type { Statements } from "./schema.ts";
import type { Tables } from "./tables.ts";

const RESETS = [
  "resetReady",
  "resetLeased",
  "resetResults",
  "resetDeadLetters",
  "resetCounters",
  "resetConsumers",
  "resetJob",
] as const satisfies readonly (keyof Statements)[];

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
  attempt: number | null;
}

/** JSON array of dead-letter ids for `json_each`, or null for all. */
function idList(ids: readonly string[] | undefined): string | null {
  return ids ? JSON.stringify(ids.map(Number)) : null;
}

/** Expired key-value entries are deleted on one write in this many. */
const EXPIRE_EVERY_WRITES = 100;

/** The broker's records, one atomic step per method. */
export class SqliteRecords {
  readonly #t: Tables;
  readonly #options: BrokerOptions;
  #writes = 0;

  constructor(tables: Tables, options: BrokerOptions) {
    this.#t = tables;
    this.#options = options;
  }

  /** Records a job; false when it was already recorded. */
  createJob(job: JobRecord): boolean {
    const record = JSON.stringify(job);
    return Number(this.#t.s.insertJob.run({ job: job.jobId, record }).changes) === 1;
  }

  /** A job's record, or null. */
  getJob(jobId: string): JobRecord | null {
    const row = this.#t.s.selectJob.get({ job: jobId }) as { record: string } | undefined;
    return row ? JSON.parse(row.record) as JobRecord : null;
  }

  /** The job's counts, read in one statement (one snapshot); consumers seen within a lease. */
  stats(jobId: string, now: number): BrokerStats {
    const since = now - this.#options.leaseMs;
    return this.#t.snapshot(() => {
      const counts = { ...this.#t.s.stats.get({ job: jobId, now, since }) };
      const oldest = this.#t.s.oldestReady.all({ job: jobId, now }) as unknown as {
        priority: number;
        ageMs: number;
      }[];
      return {
        ...counts,
        oldestReady: oldest.map((row) => ({ ...row })),
      } as unknown as BrokerStats;
    });
  }

  /** A page of the job's stored results, in chunk order after `cursor` (a chunk id). */
  results(jobId: string, cursor: string | null, limit: number): ResultPage {
    const rows = this.#t.s.selectResults.all({
      job: jobId,
      after: cursor ?? "",
      limit,
    }) as unknown as ResultRow[];
    const results = rows.map((row): StoredResult => ({
      chunkId: row.chunk_id,
      value: JSON.parse(row.value),
      params: row.params,
      workerId: row.worker_id,
      durationMs: row.duration_ms,
      completedAt: row.completed_at,
      ...(row.attempt === null ? {} : { attempt: row.attempt }),
    }));
    return { results, cursor: rows.length < limit ? null : rows[rows.length - 1]!.chunk_id };
  }

  /** The job's dead letters, oldest first; `limit` -1 for all. */
  listDeadLetters(jobId: string, limit: number): DeadLetter[] {
    const rows = this.#t.s.listDeadLetters.all({ job: jobId, limit }) as unknown as DeadLetterRow[];
    return rows.map((row) => {
      const task = row.payload === null ? null : readTaskJson(row.payload, row.job_id);
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
    const { s } = this.#t;
    return this.#t.transaction(() => {
      const rows = s.selectReplayable.all({
        job: jobId,
        ids: idList(ids),
      }) as unknown as DeadLetterRow[];
      let replayed = 0;
      for (const row of rows) {
        const task = readTaskJson(row.payload ?? "", jobId);
        if (typeof task === "string") continue;
        this.#t.insertTasks([task], now, row.epoch); // the epoch keeps growing across the replay
        s.deleteDeadLetter.run({ id: row.id });
        replayed += 1;
      }
      return replayed;
    });
  }

  /** Deletes the selected dead letters (all of the job's without `ids`); returns how many. */
  purgeDeadLetters(jobId: string, ids: readonly string[] | undefined): number {
    return Number(this.#t.s.purgeDeadLetters.run({ job: jobId, ids: idList(ids) }).changes);
  }

  /** Deletes every row of the job, in one transaction. */
  reset(jobId: string): void {
    this.#t.transaction(() => {
      for (const name of RESETS) this.#t.s[name].run({ job: jobId });
    });
  }

  /** Rows of any table that still name the job (0 after a reset). */
  traces(jobId: string): number {
    return (this.#t.s.traces.get({ job: jobId }) as { rows: number }).rows;
  }

  /** The key-value store of the job index, controls and fleet registry. */
  readonly kv: DriverKv = {
    put: (space, key, value, options = {}) => {
      const now = Date.now();
      const expires = options.ttlMs === undefined ? null : now + options.ttlMs;
      const s = this.#t.s;
      const changed = Number(
        options.ifAbsent
          ? s.kvPutIfAbsent.run({ space, key, value, expires, now }).changes
          : options.ifValue !== undefined
          ? s.kvPutIfValue.run({ space, key, value, expires, now, expected: options.ifValue })
            .changes
          : s.kvPut.run({ space, key, value, expires }).changes,
      ) === 1;
      if (++this.#writes % EXPIRE_EVERY_WRITES === 0) this.#t.s.kvExpire.run({ now });
      return Promise.resolve(changed);
    },
    get: (space, key) => {
      const row = this.#t.s.kvGet.get({ space, key, now: Date.now() }) as
        | { value: string }
        | undefined;
      return Promise.resolve(row?.value ?? null);
    },
    list: (space: KvSpace) => {
      const rows = this.#t.s.kvList.all({ space, now: Date.now() }) as unknown as {
        key: string;
        value: string;
      }[];
      return Promise.resolve(rows.map((row): [string, string] => [row.key, row.value]));
    },
    delete: (space, key) => {
      this.#t.s.kvDelete.run({ space, key });
      return Promise.resolve();
    },
  };
}
