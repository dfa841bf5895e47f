/**
 * The embedded default broker: a SQLite database through Deno's built-in `node:sqlite`.
 *
 * A file path gives a durable queue shared by several worker processes on one machine (WAL
 * journal, a busy timeout, claims as one `UPDATE … RETURNING`, leases as timestamps, a fencing
 * `epoch` per row); `:memory:` gives a broker private to this process. The SQL lives in
 * sqlite_schema.ts, the atomic steps in sqlite_store.ts.
 *
 * @example
 * ```ts
 * import { openSqliteBroker } from "./sqlite.ts";
 * const broker = await openSqliteBroker({ path: ":memory:", consumerId: "example" });
 * await broker.publish([{
 *   jobId: "demo", chunkId: "00000", handler: "ttg.sweep", start: 0, end: 10, totalParams: 10,
 *   totalChunks: 1, priority: 0, createdAt: new Date().toISOString(), args: {}, divisible: true,
 * }]);
 * const [delivery] = await broker.pull({ jobId: "demo", max: 1, waitMs: 0 });
 * const result = { value: 45, params: 10, workerId: "example", durationMs: 1, completedAt: "" };
 * console.assert((await broker.ack([{ delivery: delivery!, result }]))[0] === "stored");
 * await broker.close();
 * ```
 *
 * @module
 */
import { dirname } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import {
  type AckOutcome,
  type AckRequest,
  assertDeadLetterIds,
  assertJobId,
  assertTask,
  type Broker,
  type BrokerCapabilities,
  type BrokerOptions,
  brokerOptions,
  type BrokerStats,
  type ChunkTask,
  type DeadLetterStore,
  type Delivery,
  type ExtendOutcome,
  type JobRecord,
  type NackOutcome,
  type NackRequest,
  type PullOptions,
  type ReclaimOptions,
  type StoredResult,
} from "./contract.ts";
import { BrokerError, errorMessage, TtgError } from "./errors.ts";
import { openDatabase, SQL } from "./sqlite_schema.ts";
import { SqliteStore } from "./sqlite_store.ts";

/** Options of {@linkcode openSqliteBroker}: where the database is, and the broker options. */
export type SqliteBrokerOptions = {
  /** Database file (created, with its directory, if missing), or `:memory:`. */
  readonly path: string;
  /**
   * How long a statement waits for another process's write lock before failing with
   * `UNAVAILABLE`. @default 5000
   */
  readonly busyTimeoutMs?: number;
} & Partial<BrokerOptions>;

/** Default of {@linkcode SqliteBrokerOptions.busyTimeoutMs}. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 50;
const NACK_KINDS: ReadonlySet<string> = new Set(["failed", "timeout", "unrecoverable", "released"]);
const UNAVAILABLE_SQLITE =
  /locked|unable to open|I\/O error|disk is full|readonly|not a database|malformed|locking protocol|out of memory/i;

/**
 * Opens the SQLite broker on `options.path`, creating the database and its directory if missing.
 *
 * @example
 * ```ts
 * import { openSqliteBroker } from "./sqlite.ts";
 * const broker = await openSqliteBroker({ path: ":memory:", leaseMs: 2000 });
 * console.assert(broker.backend === "sqlite" && !broker.capabilities.multiProcess);
 * await broker.close();
 * ```
 */
export async function openSqliteBroker(options: SqliteBrokerOptions): Promise<Broker> {
  const { path, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS, ...partial } = options;
  const resolved = brokerOptions(partial);
  const db = await connect(path, busyTimeoutMs);
  return new SqliteBroker(db, path, resolved);
}

/**
 * Enqueues `raw` as a task of `jobId` exactly as given, without validation, as a foreign
 * producer or a corrupted write would. For tests (the conformance suite's malformed case) and
 * foreign producers; TTG itself publishes with {@linkcode Broker.publish}. A pull dead-letters
 * such a row with kind `malformed` if it is not a valid task. Takes a file path: a `:memory:`
 * database is private to its handle.
 *
 * @example
 * ```ts
 * import { insertRawTask, openSqliteBroker } from "./sqlite.ts";
 * const path = await Deno.makeTempFile({ suffix: ".db" });
 * await insertRawTask(path, "demo", "{not json");
 * const broker = await openSqliteBroker({ path });
 * console.assert((await broker.pull({ jobId: "demo", waitMs: 0 })).length === 0);
 * console.assert((await broker.deadLetters.list("demo"))[0]?.raw === "{not json");
 * await broker.close();
 * for (const file of [path, `${path}-wal`, `${path}-shm`]) await Deno.remove(file).catch(() => {});
 * ```
 */
export async function insertRawTask(path: string, jobId: string, raw: string): Promise<void> {
  const db = await connect(path, DEFAULT_BUSY_TIMEOUT_MS);
  try {
    db.prepare(SQL.insertRaw).run({ job: jobId, payload: raw, now: Date.now() });
  } catch (error) {
    throw translateError(error, `insert a raw task into SQLite database "${path}"`);
  } finally {
    db.close();
  }
}

async function connect(path: string, busyTimeoutMs: number): Promise<DatabaseSync> {
  if (typeof path !== "string" || path === "") {
    throw new TypeError(`Invalid SQLite path "${path}": expected a file path or ":memory:"`);
  }
  try {
    if (path !== ":memory:" && !path.startsWith("file:")) {
      await Deno.mkdir(dirname(path), { recursive: true });
    }
    // Processes opening a new file at once may race for the switch to WAL: retry briefly.
    for (let tries = 1;; tries++) {
      try {
        return openDatabase(path, busyTimeoutMs);
      } catch (error) {
        if (tries >= 5 || !/locked/.test(errorMessage(error))) throw error;
        await sleep(50 * tries);
      }
    }
  } catch (error) {
    throw translateError(error, `open SQLite database "${path}"`);
  }
}

/** The one place native errors become {@linkcode BrokerError}s; `action` completes "Cannot …". */
function translateError(error: unknown, action: string): unknown {
  if (error instanceof TtgError || error instanceof TypeError || error instanceof RangeError) {
    return error;
  }
  const code = (error as { code?: unknown } | null)?.code;
  const message = errorMessage(error);
  if (code === "ERR_INVALID_STATE") {
    return new BrokerError("CLOSED", `Cannot ${action}: ${message}`, { cause: error });
  }
  const isFileError = Object.values(Deno.errors).some((type) => error instanceof type);
  if ((code === "ERR_SQLITE_ERROR" && UNAVAILABLE_SQLITE.test(message)) || isFileError) {
    return new BrokerError("UNAVAILABLE", `Cannot ${action}: ${message}`, { cause: error });
  }
  return error; // anything else is a bug (SQL, constraint): keep the native error
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

function assertCount(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`Invalid ${name} "${value}": expected a whole number from ${min}`);
  }
}

/** The {@linkcode Broker} over a {@linkcode SqliteStore}: validation, waiting, closing, errors. */
class SqliteBroker implements Broker {
  readonly backend = "sqlite";
  readonly options: BrokerOptions;
  readonly capabilities: BrokerCapabilities;
  readonly deadLetters: DeadLetterStore;
  readonly #store: SqliteStore;
  readonly #path: string;
  #closed = false;

  constructor(db: DatabaseSync, path: string, options: BrokerOptions) {
    this.#store = new SqliteStore(db, options);
    this.#path = path;
    this.options = options;
    this.capabilities = Object.freeze({
      strictPriority: true,
      multiProcess: path !== ":memory:",
      connectionBoundLeases: false,
    });
    this.deadLetters = {
      list: (jobId, options) =>
        this.#run(`list dead letters of job "${jobId}"`, () => {
          const limit = options?.limit ?? -1;
          if (limit !== -1) assertCount("limit", limit, 0);
          return this.#store.listDeadLetters(jobId, limit);
        }),
      replay: async ({ jobId, ids }) => {
        assertDeadLetterIds(ids, /^[1-9][0-9]{0,15}$/, "42");
        return await this.#run(
          `replay dead letters of job "${jobId}"`,
          () => this.#store.replayDeadLetters(jobId, ids, Date.now()),
        );
      },
      purge: async ({ jobId, ids }) => {
        assertDeadLetterIds(ids, /^[1-9][0-9]{0,15}$/, "42");
        return await this.#run(
          `purge dead letters of job "${jobId}"`,
          () => this.#store.purgeDeadLetters(jobId, ids),
        );
      },
    };
  }

  createJob(job: JobRecord): Promise<boolean> {
    return this.#run(`record job "${job?.jobId}"`, () => {
      assertJobId(job.jobId);
      return this.#store.createJob(job);
    });
  }

  getJob(jobId: string): Promise<JobRecord | null> {
    return this.#run(`read job "${jobId}"`, () => this.#store.getJob(jobId));
  }

  publish(tasks: readonly ChunkTask[]): Promise<void> {
    return this.#run(`publish ${tasks.length} tasks`, () => {
      for (const task of tasks) assertTask(task);
      if (tasks.length > 0) this.#store.publish(tasks, Date.now());
    });
  }

  pull(options: PullOptions): Promise<Delivery[]> {
    const { jobId, max = 1, waitMs = 1000, signal } = options;
    const action = `pull from job "${jobId}"`;
    return this.#run(action, async () => {
      assertJobId(jobId);
      assertCount("max", max, 1);
      if (!(waitMs >= 0)) throw new RangeError(`Invalid waitMs "${waitMs}": expected 0 or more`);
      const deadline = Date.now() + waitMs;
      let pollMs = FIRST_POLL_MS;
      for (let first = true;; first = false) {
        if (signal?.aborted) return [];
        this.#assertOpen(action);
        const now = Date.now();
        this.#store.touch(jobId, now);
        // After an empty claim, poll with a read, so idle consumers take no write lock.
        if (first || this.#store.hasClaimable(jobId, now)) {
          const { deliveries, claimed } = this.#store.claim(jobId, max, now);
          if (deliveries.length > 0) return deliveries;
          if (claimed > 0) continue; // only malformed rows, now dead letters: claim again
        }
        const leftMs = deadline - Date.now();
        if (leftMs <= 0) return [];
        await sleep(Math.min(pollMs, leftMs), signal);
        pollMs = Math.min(MAX_POLL_MS, pollMs * 2);
      }
    });
  }

  ack(requests: readonly AckRequest[]): Promise<AckOutcome[]> {
    return this.#run(`ack ${requests.length} deliveries`, () => {
      return requests.length > 0 ? this.#store.ack(requests) : [];
    });
  }

  nack(requests: readonly NackRequest[]): Promise<NackOutcome[]> {
    return this.#run(`nack ${requests.length} deliveries`, () => {
      for (const { kind, split } of requests) {
        if (!NACK_KINDS.has(kind)) {
          throw new TypeError(
            `Invalid nack kind "${kind}": expected failed, timeout, unrecoverable or released`,
          );
        }
        split?.forEach(assertTask);
      }
      return requests.length > 0 ? this.#store.nack(requests, Date.now()) : [];
    });
  }

  extend(deliveries: readonly Delivery[]): Promise<ExtendOutcome[]> {
    return this.#run(`extend ${deliveries.length} leases`, () => {
      return deliveries.length > 0 ? this.#store.extend(deliveries, Date.now()) : [];
    });
  }

  reclaim(options: ReclaimOptions): Promise<number> {
    const { jobId, max = 1000 } = options;
    return this.#run(`reclaim leases of job "${jobId}"`, () => {
      assertJobId(jobId);
      assertCount("max", max, 1);
      return this.#store.reclaim(jobId, max, Date.now());
    });
  }

  stats(jobId: string): Promise<BrokerStats> {
    return this.#run(`read stats of job "${jobId}"`, () => this.#store.stats(jobId, Date.now()));
  }

  results(jobId: string): Promise<StoredResult[]> {
    return this.#run(`read results of job "${jobId}"`, () => this.#store.results(jobId));
  }

  reset(jobId: string): Promise<void> {
    return this.#run(`reset job "${jobId}"`, () => this.#store.reset(jobId));
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#store.close();
    }
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #assertOpen(action: string): void {
    if (this.#closed) throw new BrokerError("CLOSED", `Cannot ${action}: the broker is closed`);
  }

  /** Runs one operation: fails with `CLOSED` after close, and translates native errors. */
  async #run<T>(action: string, fn: () => T | Promise<T>): Promise<T> {
    this.#assertOpen(action);
    try {
      return await fn();
    } catch (error) {
      throw translateError(error, `${action} in SQLite database "${this.#path}"`);
    }
  }
}
