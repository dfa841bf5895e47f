/**
 * Schema and statements of the SQLite broker ({@linkcode ./sqlite.ts}): the tables, the indexes
 * that serve the claim query, and the SQL it prepares once per connection. Kept apart so that
 * sqlite.ts reads as behaviour rather than SQL.
 *
 * Tables: `tasks` (queued and leased chunks, one row per delivery slot), `results` (one counted
 * result per chunk), `dead_letters`, `jobs`, `counters` (duplicates, zombies, retries, reclaims)
 * and `consumers` (when each consumer last pulled).
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { PRIORITY_MAX, PRIORITY_MIN } from "./contract.ts";
import { BrokerError } from "./errors.ts";

/** Version of the schema below, kept in `PRAGMA user_version`. */
export const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  job_id TEXT PRIMARY KEY,
  record TEXT NOT NULL
) WITHOUT ROWID;
-- AUTOINCREMENT: a row id (the delivery receipt) is never reused, so a stale receipt with an
-- old epoch can never match a newer row.
CREATE TABLE IF NOT EXISTS tasks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL,
  chunk_id TEXT,
  payload TEXT NOT NULL,
  priority INTEGER NOT NULL DEFAULT 0,
  enqueued_ms INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'leased')),
  available_at INTEGER NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  epoch INTEGER NOT NULL DEFAULT 0,
  consumer TEXT,
  lease_until INTEGER,
  history TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS tasks_claim ON tasks (job_id, priority, enqueued_ms)
  WHERE state = 'ready';
CREATE INDEX IF NOT EXISTS tasks_lease ON tasks (job_id, lease_until)
  WHERE state = 'leased';
CREATE TABLE IF NOT EXISTS results (
  job_id TEXT NOT NULL,
  chunk_id TEXT NOT NULL,
  value TEXT NOT NULL,
  params INTEGER NOT NULL,
  worker_id TEXT NOT NULL,
  duration_ms REAL NOT NULL,
  completed_at TEXT NOT NULL,
  PRIMARY KEY (job_id, chunk_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL,
  chunk_id TEXT,
  payload TEXT,
  raw TEXT,
  kind TEXT NOT NULL,
  reason TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  history TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_job ON dead_letters (job_id);
CREATE TABLE IF NOT EXISTS counters (
  job_id TEXT PRIMARY KEY,
  duplicates INTEGER NOT NULL DEFAULT 0,
  zombies INTEGER NOT NULL DEFAULT 0,
  retried INTEGER NOT NULL DEFAULT 0,
  reclaimed INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consumers (
  job_id TEXT NOT NULL,
  consumer_id TEXT NOT NULL,
  seen_ms INTEGER NOT NULL,
  PRIMARY KEY (job_id, consumer_id)
) WITHOUT ROWID;
`;

/**
 * The ready rows of one priority level, oldest first. Within a level the aged priority only
 * falls with the enqueue time, so the best `max` rows of the whole job are among the best `max`
 * of each level: eleven index seeks instead of a scan of every ready row.
 */
const levels = Array.from({ length: PRIORITY_MAX - PRIORITY_MIN + 1 }, (_, i) => `
  SELECT * FROM (SELECT id, priority, enqueued_ms FROM tasks
    WHERE job_id = :job AND state = 'ready' AND priority = ${PRIORITY_MIN + i}
      AND available_at <= :now
    ORDER BY enqueued_ms, id LIMIT :max)`).join(" UNION ALL ");

/** The SQL of every statement the broker prepares. Named parameters are bound by object. */
export const SQL = {
  begin: "BEGIN IMMEDIATE",
  commit: "COMMIT",
  rollback: "ROLLBACK",
  insertJob: "INSERT INTO jobs (job_id, record) VALUES (:job, :record) ON CONFLICT DO NOTHING",
  selectJob: "SELECT record FROM jobs WHERE job_id = :job",
  /** Enqueues the tasks of the JSON array :tasks, in order, in one statement. */
  insertTasks: `INSERT INTO tasks (job_id, chunk_id, payload, priority, enqueued_ms,
      available_at, epoch)
    SELECT value ->> 'jobId', value ->> 'chunkId', value, value ->> 'priority', :now, :now, :epoch
    FROM json_each(:tasks)`,
  /** A raw message from a foreign producer, stored as is. */
  insertRaw: `INSERT INTO tasks (job_id, payload, enqueued_ms, available_at)
    VALUES (:job, :payload, :now, :now)`,
  /** Claims up to :max rows in one statement: aged priority first, then enqueue order. */
  claim: `UPDATE tasks SET state = 'leased', attempt = attempt + 1, epoch = epoch + 1,
      consumer = :consumer, lease_until = :now + :lease
    WHERE id IN (SELECT id FROM (${levels})
      ORDER BY priority + CAST(max(0, :now - enqueued_ms) / :aging AS INTEGER) DESC,
        enqueued_ms, id
      LIMIT :max)
    RETURNING id, payload, priority, enqueued_ms, attempt, epoch, history`,
  /** Whether anything is claimable: a read, so idle polling takes no write lock. */
  probe: `SELECT 1 FROM tasks WHERE job_id = :job AND state = 'ready' AND available_at <= :now
    LIMIT 1`,
  touchConsumer: `INSERT INTO consumers (job_id, consumer_id, seen_ms) VALUES (:job, :consumer,
      :now) ON CONFLICT DO UPDATE SET seen_ms = excluded.seen_ms`,
  /** Deletes the leased rows of the JSON array :fences of `[id, epoch]` pairs (ack). */
  deleteLeased: `DELETE FROM tasks WHERE state = 'leased'
      AND (id, epoch) IN (SELECT value ->> 0, value ->> 1 FROM json_each(:fences))
    RETURNING id, epoch, job_id, chunk_id`,
  selectLeased: `SELECT id, job_id, chunk_id, payload, attempt, epoch, history FROM tasks
    WHERE id = :id AND epoch = :epoch AND state = 'leased'`,
  /**
   * Stores the results of the JSON array :results of `[job, chunk, value, params, worker,
   * durationMs, completedAt]`; returns the ones stored (a chunk that has one is skipped).
   */
  insertResults: `INSERT INTO results (job_id, chunk_id, value, params, worker_id, duration_ms,
      completed_at)
    SELECT value ->> 0, value ->> 1, value -> 2, value ->> 3, value ->> 4, value ->> 5,
      value ->> 6
    FROM json_each(:results) WHERE true
    ON CONFLICT DO NOTHING
    RETURNING job_id, chunk_id`,
  retry: `UPDATE tasks SET state = 'ready', available_at = :at, consumer = NULL,
      lease_until = NULL, history = :history WHERE id = :id`,
  /** Back at once; the claim's attempt is given back, so the next claim has the same number. */
  release: `UPDATE tasks SET state = 'ready', available_at = :now, attempt = attempt - 1,
      consumer = NULL, lease_until = NULL WHERE id = :id`,
  /** Extends the leases of the JSON array :fences of `[id, epoch]` pairs. */
  extend: `UPDATE tasks SET lease_until = :until WHERE state = 'leased'
      AND (id, epoch) IN (SELECT value ->> 0, value ->> 1 FROM json_each(:fences))
    RETURNING id, epoch`,
  /** Whether a lease of the job expired: a read, so an idle reclaimer takes no write lock. */
  probeExpired: `SELECT 1 FROM tasks WHERE job_id = :job AND state = 'leased'
    AND lease_until < :now LIMIT 1`,
  selectExpired: `SELECT id, job_id, chunk_id, payload, attempt, epoch, history, consumer
    FROM tasks WHERE job_id = :job AND state = 'leased' AND lease_until < :now
    ORDER BY lease_until LIMIT :max`,
  /** An expired lease's row, ready again with the lost attempt in its history. */
  expire: `UPDATE tasks SET state = 'ready', available_at = :now, consumer = NULL,
      lease_until = NULL, history = :history WHERE id = :id AND epoch = :epoch`,
  insertDeadLetter: `INSERT INTO dead_letters (job_id, chunk_id, payload, raw, kind, reason,
      attempts, epoch, history, at) VALUES (:job, :chunk, :payload, :raw, :kind, :reason,
      :attempts, :epoch, :history, :at)`,
  deleteTask: "DELETE FROM tasks WHERE id = :id AND epoch = :epoch",
  addCounters: `INSERT INTO counters (job_id, duplicates, zombies, retried, reclaimed)
    VALUES (:job, :duplicates, :zombies, :retried, :reclaimed)
    ON CONFLICT DO UPDATE SET duplicates = duplicates + excluded.duplicates,
      zombies = zombies + excluded.zombies, retried = retried + excluded.retried,
      reclaimed = reclaimed + excluded.reclaimed`,
  stats: `SELECT
      (SELECT count(*) FROM tasks WHERE job_id = :job AND state = 'ready'
        AND available_at <= :now) AS ready,
      (SELECT count(*) FROM tasks WHERE job_id = :job AND state = 'leased') AS inFlight,
      (SELECT count(*) FROM tasks WHERE job_id = :job AND state = 'ready'
        AND available_at > :now) AS delayed,
      (SELECT count(*) FROM dead_letters WHERE job_id = :job) AS deadLettered,
      (SELECT count(*) FROM results WHERE job_id = :job) AS completed,
      (SELECT count(*) FROM consumers WHERE job_id = :job AND seen_ms >= :since) AS consumers,
      coalesce(c.duplicates, 0) AS duplicates, coalesce(c.zombies, 0) AS zombies,
      coalesce(c.retried, 0) AS retried, coalesce(c.reclaimed, 0) AS reclaimed
    FROM (SELECT 1) LEFT JOIN counters AS c ON c.job_id = :job`,
  selectResults: `SELECT chunk_id, value, params, worker_id, duration_ms, completed_at
    FROM results WHERE job_id = :job ORDER BY chunk_id`,
  listDeadLetters: "SELECT * FROM dead_letters WHERE job_id = :job ORDER BY id LIMIT :limit",
  /** :ids is a JSON array of ids, or NULL for all of the job's. */
  selectReplayable: `SELECT id, job_id, chunk_id, payload, epoch FROM dead_letters
    WHERE job_id = :job AND payload IS NOT NULL
      AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)))`,
  deleteDeadLetter: "DELETE FROM dead_letters WHERE id = :id",
  purgeDeadLetters: `DELETE FROM dead_letters
    WHERE job_id = :job AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)))`,
  resetReady: "DELETE FROM tasks WHERE job_id = :job AND state = 'ready'",
  resetLeased: "DELETE FROM tasks WHERE job_id = :job AND state = 'leased'",
  resetResults: "DELETE FROM results WHERE job_id = :job",
  resetDeadLetters: "DELETE FROM dead_letters WHERE job_id = :job",
  resetCounters: "DELETE FROM counters WHERE job_id = :job",
  resetConsumers: "DELETE FROM consumers WHERE job_id = :job",
  resetJob: "DELETE FROM jobs WHERE job_id = :job",
} as const;

/** One prepared statement per entry of {@linkcode SQL}. */
export type Statements = { readonly [K in keyof typeof SQL]: StatementSync };

/** Refuses a file that has tables but no TTG schema version: another application's database. */
function assertOwnFile(db: DatabaseSync, path: string): void {
  const { user_version: version } = db.prepare("PRAGMA user_version").get() as {
    user_version: number;
  };
  if (version !== 0) return;
  const tables = db.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name LIMIT 3",
  ).all() as { name: string }[];
  if (tables.length > 0) {
    throw new BrokerError(
      "UNAVAILABLE",
      `Cannot open SQLite database "${path}": it is not a TTG database (it has tables such as ${
        tables.map((t) => t.name).join(", ")
      }); give --sqlite-path a file of its own`,
    );
  }
}

/**
 * Opens (creating if needed) a TTG database: WAL journal, `synchronous=NORMAL`, a busy timeout,
 * and the schema. Several processes may open the same file at once.
 */
export function openDatabase(path: string, busyTimeoutMs: number): DatabaseSync {
  const db = new DatabaseSync(path);
  try {
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.round(busyTimeoutMs))}`);
    assertOwnFile(db, path); // before anything is written, WAL mode included
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec("BEGIN IMMEDIATE");
    try {
      const { user_version: version } = db.prepare("PRAGMA user_version").get() as {
        user_version: number;
      };
      if (version > SCHEMA_VERSION) {
        throw new BrokerError(
          "UNAVAILABLE",
          `Cannot open SQLite database "${path}": its schema version ${version} is newer than ${SCHEMA_VERSION}`,
        );
      }
      if (version < SCHEMA_VERSION) {
        db.exec(SCHEMA);
        db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      }
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/** Prepares every statement of {@linkcode SQL} on `db`. */
export function prepareStatements(db: DatabaseSync): Statements {
  const entries = Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)]);
  return Object.fromEntries(entries) as Statements;
}
