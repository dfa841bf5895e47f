/**
 * The embedded default broker: a SQLite database through Deno's built-in `node:sqlite`.
 *
 * A file path gives a durable queue shared by several worker processes on one machine (WAL
 * journal, a busy timeout, claims as one `UPDATE … RETURNING`, leases as timestamps, a fencing
 * `epoch` per row); `:memory:` gives a broker private to this process. The SQL lives in
 * schema.ts, the atomic steps in store.ts; this module waits, polls and translates errors.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openSqliteBroker } from "./sqlite.ts";
 * const broker = await openSqliteBroker({ path: ":memory:", consumerId: "example" });
 * await broker.publish([{
 *   jobId: "demo", chunkId: "00000", handler: "ttg.sweep", start: 0, end: 10, totalParams: 10,
 *   totalChunks: 1, priority: 0, createdAt: new Date().toISOString(), args: {}, divisible: true,
 * }]);
 * const [delivery] = await broker.pull({ jobId: "demo", max: 1, waitMs: 0 });
 * const result = { value: 45, params: 10, workerId: "example", durationMs: 1, completedAt: "" };
 * assert.deepEqual(await broker.ack([{ delivery: delivery!, result }]), ["stored"]);
 * await broker.close();
 * ```
 *
 * @module
 */
import { dirname } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import type {
  AckOutcome,
  AckRequest,
  Broker,
  BrokerCapabilities,
  BrokerOptions,
  BrokerStats,
  DeadLetter,
  Delivery,
  ExtendOutcome,
  NackOutcome,
  PartialBrokerOptions,
  ResultPage,
} from "../broker.ts";
import { BrokerError, errorMessage, TtgError } from "../../errors.ts";
import {
  type BrokerDriver,
  brokerOptions,
  guardBroker,
  type PlannedNack,
  type PullRequest,
} from "../guard.ts";
import type { ChunkTask, JobRecord } from "../task.ts";
import type { JobHead } from "../share.ts";
import type { DriverKv } from "../registry.ts";
import { ConsumerLiveness } from "./liveness.ts";
import { LeaseReclaimer } from "./reclaim.ts";
import { SqliteRecords } from "./records.ts";
import { openDatabase, SQL } from "./schema.ts";
import { SqliteStore } from "./store.ts";
import { Tables } from "./tables.ts";
import { waitOrAbort } from "../wait.ts";

/** Options of {@linkcode openSqliteBroker}: where the database is, and the broker options. */
export type SqliteBrokerOptions = {
  /** Database file (created, with its directory, if missing), or `:memory:`. */
  readonly path: string;
  /**
   * How long a statement waits for another process's write lock before failing with
   * `UNAVAILABLE`. @default 5000
   */
  readonly busyTimeoutMs?: number;
} & PartialBrokerOptions;

/** Default of {@linkcode SqliteBrokerOptions.busyTimeoutMs}. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 50;
const UNAVAILABLE_SQLITE =
  /locked|unable to open|I\/O error|disk is full|readonly|not a database|malformed|locking protocol|out of memory/i;

/**
 * Opens the SQLite broker on `options.path`, creating the database and its directory if missing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openSqliteBroker } from "./sqlite.ts";
 * const broker = await openSqliteBroker({ path: ":memory:", leaseMs: 2000 });
 * assert.equal(broker.backend, "sqlite");
 * assert.equal(broker.capabilities.multiProcess, false);
 * await broker.close();
 * ```
 */
export async function openSqliteBroker(options: SqliteBrokerOptions): Promise<Broker> {
  const { path, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS, ...partial } = options;
  const resolved = brokerOptions(partial);
  const db = await connect(path, busyTimeoutMs);
  return guardBroker(new SqliteDriver(db, path, resolved));
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
 * import assert from "node:assert/strict";
 * import { insertRawTask, openSqliteBroker } from "./sqlite.ts";
 * const path = await Deno.makeTempFile({ suffix: ".db" });
 * await insertRawTask(path, "demo", "{not json");
 * const broker = await openSqliteBroker({ path });
 * assert.deepEqual(await broker.pull({ jobId: "demo", waitMs: 0 }), []);
 * assert.equal((await broker.deadLetters.list("demo"))[0]?.raw, "{not json");
 * await broker.close();
 * for (const file of [path, `${path}-wal`, `${path}-shm`]) await Deno.remove(file).catch(() => {});
 * ```
 */
export async function insertRawTask(path: string, jobId: string, raw: string): Promise<void> {
  await withDatabase(path, `insert a raw task into SQLite database "${path}"`, (db) => {
    db.prepare(SQL.insertRaw).run({ job: jobId, payload: raw, now: Date.now() });
  });
}

/** Rows of the database at `path` that still name `jobId` (for tests of reset). */
export async function countJobRows(path: string, jobId: string): Promise<number> {
  return await withDatabase(path, `count rows of job "${jobId}"`, (db) => {
    return (db.prepare(SQL.traces).get({ job: jobId }) as { rows: number }).rows;
  });
}

async function withDatabase<T>(
  path: string,
  action: string,
  fn: (db: DatabaseSync) => T,
): Promise<T> {
  const db = await connect(path, DEFAULT_BUSY_TIMEOUT_MS);
  try {
    return fn(db);
  } catch (error) {
    throw translateError(error, action);
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
        await waitOrAbort(50 * tries);
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
  if (code === "ERR_INVALID_STATE" && /not open/i.test(message)) {
    return new BrokerError("CLOSED", `Cannot ${action}: ${message}`, { cause: error });
  }
  const isFileError = Object.values(Deno.errors).some((type) => error instanceof type);
  if ((code === "ERR_SQLITE_ERROR" && UNAVAILABLE_SQLITE.test(message)) || isFileError) {
    return new BrokerError("UNAVAILABLE", `Cannot ${action}: ${message}`, { cause: error });
  }
  return error; // anything else is a bug (SQL, constraint): keep the native error
}

/** The SQLite steps behind the guard: synchronous statements, and polling for pulls. */
class SqliteDriver implements BrokerDriver {
  readonly backend = "sqlite";
  readonly displayName = "SQLite";
  readonly options: BrokerOptions;
  readonly capabilities: BrokerCapabilities;
  readonly deadLetterIds = { form: /^[1-9][0-9]{0,15}$/, example: "42" };
  readonly kv: DriverKv;
  readonly #tables: Tables;
  readonly #store: SqliteStore;
  readonly #records: SqliteRecords;
  readonly #path: string;
  readonly #liveness: ConsumerLiveness | undefined;
  readonly #reclaimer: LeaseReclaimer;

  constructor(db: DatabaseSync, path: string, options: BrokerOptions) {
    this.#tables = new Tables(db);
    this.#liveness = ConsumerLiveness.open(path, options.consumerId);
    this.#store = new SqliteStore(this.#tables, options);
    this.#reclaimer = new LeaseReclaimer(this.#tables, options, this.#liveness);
    this.#records = new SqliteRecords(this.#tables, options);
    this.kv = this.#records.kv;
    this.#path = path;
    this.options = options;
    this.capabilities = Object.freeze({
      strictPriority: true,
      multiProcess: path !== ":memory:",
      leases: "extend" as const,
      discoverMs: 10,
    });
  }

  createJob(job: JobRecord): Promise<boolean> {
    return Promise.resolve(this.#records.createJob(job));
  }

  getJob(jobId: string): Promise<JobRecord | null> {
    return Promise.resolve(this.#records.getJob(jobId));
  }

  publish(_jobId: string, tasks: readonly ChunkTask[]): Promise<void> {
    this.#store.publish(tasks, Date.now());
    return Promise.resolve();
  }

  async pull({ jobId, max, waitMs, signal }: PullRequest): Promise<Delivery[]> {
    const deadline = Date.now() + waitMs;
    let pollMs = FIRST_POLL_MS;
    for (let first = true;; first = false) {
      if (signal.aborted) return [];
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
      await waitOrAbort(Math.min(pollMs, leftMs), signal);
      pollMs = Math.min(MAX_POLL_MS, pollMs * 2);
    }
  }

  heads(jobIds: readonly string[], max: number): Promise<JobHead[]> {
    const now = Date.now();
    for (const jobId of jobIds) this.#store.touch(jobId, now);
    return Promise.resolve(this.#store.heads(jobIds, max, now));
  }

  ack(jobId: string, requests: readonly AckRequest[]): Promise<AckOutcome[]> {
    return Promise.resolve(this.#store.ack(jobId, requests));
  }

  nack(jobId: string, requests: readonly PlannedNack[]): Promise<NackOutcome[]> {
    return Promise.resolve(this.#store.nack(jobId, requests, Date.now()));
  }

  extend(jobId: string, deliveries: readonly Delivery[]): Promise<ExtendOutcome[]> {
    return Promise.resolve(this.#store.extend(jobId, deliveries, Date.now()));
  }

  reclaim(jobId: string, max: number): Promise<number> {
    return Promise.resolve(this.#reclaimer.reclaim(jobId, max, Date.now()));
  }

  cancelQueued(jobId: string): Promise<number> {
    return Promise.resolve(this.#store.cancelQueued(jobId));
  }

  stats(jobId: string): Promise<BrokerStats> {
    return Promise.resolve(this.#records.stats(jobId, Date.now()));
  }

  results(jobId: string, cursor: string | null, limit: number): Promise<ResultPage> {
    return Promise.resolve(this.#records.results(jobId, cursor, limit));
  }

  listDeadLetters(jobId: string, limit: number | undefined): Promise<DeadLetter[]> {
    return Promise.resolve(this.#records.listDeadLetters(jobId, limit ?? -1));
  }

  replayDeadLetters(jobId: string, ids: readonly string[] | undefined): Promise<number> {
    return Promise.resolve(this.#records.replayDeadLetters(jobId, ids, Date.now()));
  }

  purgeDeadLetters(jobId: string, ids: readonly string[] | undefined): Promise<number> {
    return Promise.resolve(this.#records.purgeDeadLetters(jobId, ids));
  }

  reset(jobId: string): Promise<void> {
    this.#records.reset(jobId);
    this.#store.forget(jobId);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#liveness?.close();
    try {
      this.#tables.s.forgetConsumer.run({ consumer: this.options.consumerId });
    } catch { /* a full disk or a read-only file: it drops out after a lease instead */ }
    this.#tables.db.close();
    return Promise.resolve();
  }

  translate(error: unknown, action: string): unknown {
    return translateError(error, `${action} in SQLite database "${this.#path}"`);
  }
}
