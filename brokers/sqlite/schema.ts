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
import { PRIORITY_MAX, PRIORITY_MIN } from "../task.ts";
import { BrokerError } from "../../errors.ts";

/** Version of the schema below, kept in `PRAGMA user_version`. */
export const SCHEMA_VERSION = 2;

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
  crashes INTEGER NOT NULL DEFAULT 0,
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
  epoch INTEGER NOT NULL DEFAULT 0,
  attempt INTEGER,
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
  reclaimed INTEGER NOT NULL DEFAULT 0,
  splits INTEGER NOT NULL DEFAULT 0,
  cancelled INTEGER NOT NULL DEFAULT 0,
  params INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (
  space TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  expires_ms INTEGER,
  PRIMARY KEY (space, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consumers (
  job_id TEXT NOT NULL,
  consumer_id TEXT NOT NULL,
  seen_ms INTEGER NOT NULL,
  PRIMARY KEY (job_id, consumer_id)
) WITHOUT ROWID;
`;

/**
 * What a version-1 database gains to become version 2: crash counts, result epochs, split,
 * cancelled and completed-parameter counters (the kv table comes with the schema's CREATE IF
 * NOT EXISTS).
 */
const UPGRADE_1_TO_2 = `
ALTER TABLE tasks ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN attempt INTEGER;
ALTER TABLE counters ADD COLUMN splits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE counters ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE counters ADD COLUMN params INTEGER NOT NULL DEFAULT 0;
UPDATE counters SET params = (SELECT coalesce(sum(r.params), 0) FROM results AS r
  WHERE r.job_id = counters.job_id);
INSERT OR IGNORE INTO counters (job_id, params)
  SELECT job_id, sum(params) FROM results GROUP BY job_id;
`;

/** The job's control word, `running` when it has none (a subquery evaluated once per statement). */
const CONTROL = `coalesce((SELECT value FROM kv WHERE space = 'controls' AND key = :job
  AND (expires_ms IS NULL OR expires_ms > :now)), 'running')`;

/**
 * The best `k` ready rows of each priority level, oldest first. Within a level the aged priority
 * only falls with the enqueue time, so the best `max` rows of the whole job are among the best
 * `k >= max` of each level: eleven index seeks instead of a scan of every ready row. `k` is a
 * literal, not a bound parameter: with `LIMIT :max` in these subqueries SQLite plans the
 * statement about ten times slower (a claim of 4 rows took 440 µs instead of 40 µs).
 */
function levels(k: number): string {
  return Array.from({ length: PRIORITY_MAX - PRIORITY_MIN + 1 }, (_, i) => `
  SELECT * FROM (SELECT id, priority, enqueued_ms FROM tasks
    WHERE job_id = :job AND state = 'ready' AND priority = ${PRIORITY_MIN + i}
      AND available_at <= :now
    ORDER BY enqueued_ms, id LIMIT ${k})`).join(" UNION ALL ");
}

/** A ready row's aged priority (policy.ts `agedPriority`). */
const AGED = "priority + CAST(max(0, :now - enqueued_ms) / :aging AS INTEGER)";

/** The job's cap of chunks in flight, from its record (null: none). */
const CAP = "(SELECT record ->> 'maxInFlight' FROM jobs WHERE job_id = :job)";

/** The job's chunks in flight (leased rows, through the lease index). */
const LEASED = "(SELECT count(*) FROM tasks WHERE job_id = :job AND state = 'leased')";

/** How many rows a claim may take: :max, or less under the job's cap (counted only when capped). */
const ROOM = `(SELECT CASE WHEN c.cap IS NULL THEN :max
  ELSE max(0, min(:max, c.cap - ${LEASED})) END FROM (SELECT ${CAP} AS cap) c)`;

/** The SQL of every statement the broker prepares. Named parameters are bound by object. */
export const SQL = {
  begin: "BEGIN IMMEDIATE",
  /** A read transaction: one snapshot for several reads, no write lock. */
  beginRead: "BEGIN DEFERRED",
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
  /** Whether anything is claimable: a read, so idle polling takes no write lock. */
  probe: `SELECT 1 FROM tasks WHERE job_id = :job AND state = 'ready' AND available_at <= :now
    AND ${CONTROL} = 'running' LIMIT 1`,
  /** The job's control word. */
  control: `SELECT ${CONTROL} AS control`,
  /** Cancels the job's queued rows (ready, or waiting out a retry). */
  cancelQueued: "DELETE FROM tasks WHERE job_id = :job AND state = 'ready'",
  touchConsumer: `INSERT INTO consumers (job_id, consumer_id, seen_ms) VALUES (:job, :consumer,
      :now) ON CONFLICT DO UPDATE SET seen_ms = excluded.seen_ms`,
  /** A consumer that closes is no longer counted (one that dies drops out after a lease). */
  forgetConsumer: "DELETE FROM consumers WHERE consumer_id = :consumer",
  /** Deletes the leased rows of the JSON array :fences of `[id, epoch]` pairs (ack). */
  deleteLeased: `DELETE FROM tasks WHERE state = 'leased'
      AND (id, epoch) IN (SELECT value ->> 0, value ->> 1 FROM json_each(:fences))
    RETURNING id, epoch, job_id, chunk_id`,
  /** The row of a claim, if that claim is still current. */
  selectLeased: `SELECT id, job_id, chunk_id FROM tasks
    WHERE id = :id AND epoch = :epoch AND state = 'leased'`,
  /**
   * Stores the results of the JSON array :results of `[job, chunk, value, params, worker,
   * durationMs, completedAt, epoch, attempt]`; returns the ones stored (a chunk that has one is
   * skipped).
   */
  insertResults: `INSERT INTO results (job_id, chunk_id, value, params, worker_id, duration_ms,
      completed_at, epoch, attempt)
    SELECT value ->> 0, value ->> 1, value -> 2, value ->> 3, value ->> 4, value ->> 5,
      value ->> 6, value ->> 7, value ->> 8
    FROM json_each(:results) WHERE true
    ON CONFLICT DO NOTHING
    RETURNING job_id, chunk_id`,
  /** Back after a backoff; :attempt is the attempt number of the next claim minus one. */
  retry: `UPDATE tasks SET state = 'ready', available_at = :at, attempt = :attempt,
      consumer = NULL, lease_until = NULL, history = :history WHERE id = :id`,
  /** Back at once; the claim's attempt is given back, so the next claim has the same number. */
  release: `UPDATE tasks SET state = 'ready', available_at = :now, attempt = attempt - 1,
      consumer = NULL, lease_until = NULL WHERE id = :id`,
  /** Extends the leases of the JSON array :fences of `[id, epoch]` pairs. */
  extend: `UPDATE tasks SET lease_until = :until WHERE state = 'leased'
      AND (id, epoch) IN (SELECT value ->> 0, value ->> 1 FROM json_each(:fences))
    RETURNING id, epoch`,
  /** What became of a claim that is no longer current (for extend's gone-or-zombie answer). */
  selectFate: `SELECT
      (SELECT epoch FROM tasks WHERE id = :id) AS row_epoch,
      (SELECT epoch FROM results WHERE job_id = :job AND chunk_id = :chunk) AS result_epoch,
      (SELECT max(epoch) FROM dead_letters WHERE job_id = :job AND chunk_id = :chunk)
        AS letter_epoch`,
  /** Whether a lease of the job expired: a read, so an idle reclaimer takes no write lock. */
  probeExpired: `SELECT 1 FROM tasks WHERE job_id = :job AND state = 'leased'
    AND lease_until < :now LIMIT 1`,
  selectExpired: `SELECT id, job_id, chunk_id, payload, attempt, crashes, epoch, history, consumer
    FROM tasks WHERE job_id = :job AND state = 'leased' AND lease_until < :now
    ORDER BY lease_until LIMIT :max`,
  /** The consumers holding live leases of the job (liveness.ts asks whether each still runs). */
  leaseHolders: `SELECT DISTINCT consumer FROM tasks WHERE job_id = :job AND state = 'leased'
    AND lease_until >= :now AND consumer IS NOT NULL`,
  /**
   * The leased rows of the consumers in the JSON array `:holders` (their processes ended) whose
   * lease began by now (`:cutoff` is now plus the lease): never the first claims of a new process
   * that reuses an ended one's id. A holder with a longer lease than the reclaimer's is left to it.
   */
  selectHeldBy: `SELECT id, job_id, chunk_id, payload, attempt, crashes, epoch, history, consumer
    FROM tasks WHERE job_id = :job AND state = 'leased' AND lease_until <= :cutoff
    AND consumer IN (SELECT value FROM json_each(:holders))`,
  /**
   * An expired lease's row, ready again: the same attempt number next, one more crash, and a
   * new epoch, so the holder that lost it is told `zombie`, never `gone`.
   */
  expire: `UPDATE tasks SET state = 'ready', available_at = :now, attempt = :attempt,
      crashes = :crashes, epoch = epoch + 1, consumer = NULL, lease_until = NULL,
      history = :history WHERE id = :id AND epoch = :epoch`,
  insertDeadLetter: `INSERT INTO dead_letters (job_id, chunk_id, payload, raw, kind, reason,
      attempts, epoch, history, at) VALUES (:job, :chunk, :payload, :raw, :kind, :reason,
      :attempts, :epoch, :history, :at)`,
  deleteTask: "DELETE FROM tasks WHERE id = :id AND epoch = :epoch",
  addCounters: `INSERT INTO counters (job_id, duplicates, zombies, retried, reclaimed, splits,
      cancelled, params)
    VALUES (:job, :duplicates, :zombies, :retried, :reclaimed, :splits, :cancelled, :params)
    ON CONFLICT DO UPDATE SET duplicates = duplicates + excluded.duplicates,
      zombies = zombies + excluded.zombies, retried = retried + excluded.retried,
      reclaimed = reclaimed + excluded.reclaimed, splits = splits + excluded.splits,
      cancelled = cancelled + excluded.cancelled, params = params + excluded.params`,
  stats: `SELECT
      (SELECT count(*) FROM tasks WHERE job_id = :job AND state = 'ready'
        AND available_at <= :now) AS ready,
      (SELECT count(*) FROM tasks WHERE job_id = :job AND state = 'leased') AS inFlight,
      (SELECT count(*) FROM tasks WHERE job_id = :job AND state = 'ready'
        AND available_at > :now) AS delayed,
      (SELECT count(*) FROM dead_letters WHERE job_id = :job) AS deadLettered,
      (SELECT count(*) FROM dead_letters WHERE job_id = :job AND payload IS NULL) AS malformed,
      (SELECT count(*) FROM results WHERE job_id = :job) AS completed,
      coalesce(c.params, 0) AS completedParams,
      (SELECT count(*) FROM consumers WHERE job_id = :job AND seen_ms >= :since) AS consumers,
      coalesce(c.duplicates, 0) AS duplicates, coalesce(c.zombies, 0) AS zombies,
      coalesce(c.retried, 0) AS retried, coalesce(c.reclaimed, 0) AS reclaimed,
      coalesce(c.splits, 0) AS splits, coalesce(c.cancelled, 0) AS cancelled,
      ${CONTROL} AS control
    FROM (SELECT 1) LEFT JOIN counters AS c ON c.job_id = :job`,
  /** Age of the oldest claimable row per priority band (the claim index serves it). */
  oldestReady: `SELECT priority, :now - min(enqueued_ms) AS ageMs FROM tasks
    WHERE job_id = :job AND state = 'ready' AND available_at <= :now GROUP BY priority
    ORDER BY priority`,
  /** A page of results in chunk order (chunk ids of one job sort as their chunks do). */
  selectResults: `SELECT chunk_id, value, params, worker_id, duration_ms, completed_at, attempt
    FROM results WHERE job_id = :job AND chunk_id > :after ORDER BY chunk_id LIMIT :limit`,
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
  kvPut: `INSERT INTO kv (space, key, value, expires_ms) VALUES (:space, :key, :value, :expires)
    ON CONFLICT DO UPDATE SET value = excluded.value, expires_ms = excluded.expires_ms`,
  /** Writes only where there is no live value. */
  kvPutIfAbsent: `INSERT INTO kv (space, key, value, expires_ms) VALUES (:space, :key, :value,
      :expires)
    ON CONFLICT DO UPDATE SET value = excluded.value, expires_ms = excluded.expires_ms
      WHERE kv.expires_ms IS NOT NULL AND kv.expires_ms <= :now`,
  /** Writes only over the live value :expected. */
  kvPutIfValue: `UPDATE kv SET value = :value, expires_ms = :expires
    WHERE space = :space AND key = :key AND value = :expected
      AND (expires_ms IS NULL OR expires_ms > :now)`,
  kvGet: `SELECT value FROM kv WHERE space = :space AND key = :key
    AND (expires_ms IS NULL OR expires_ms > :now)`,
  kvList: `SELECT key, value FROM kv WHERE space = :space
    AND (expires_ms IS NULL OR expires_ms > :now) ORDER BY key`,
  kvDelete: "DELETE FROM kv WHERE space = :space AND key = :key",
  /** Entries that expired (deleted now and then, on writes). */
  kvExpire: "DELETE FROM kv WHERE expires_ms IS NOT NULL AND expires_ms <= :now",
  /** Rows of every table that still name the job (checked after reset by the tests). */
  traces: `SELECT
      (SELECT count(*) FROM tasks WHERE job_id = :job) + (SELECT count(*) FROM results
        WHERE job_id = :job) + (SELECT count(*) FROM dead_letters WHERE job_id = :job) +
      (SELECT count(*) FROM counters WHERE job_id = :job) + (SELECT count(*) FROM consumers
        WHERE job_id = :job) + (SELECT count(*) FROM jobs WHERE job_id = :job) +
      (SELECT count(*) FROM kv WHERE space IN ('jobs', 'controls') AND key = :job) AS rows`,
} as const;

/**
 * Statements made for a number of rows `k` (a power of two at least the pull's `max`), prepared
 * once per `k` used (tables.ts).
 */
export const SIZED_SQL = {
  /** Claims up to :max (<= k) rows in one statement: aged priority first, then enqueue order. */
  claim: (k: number) =>
    `UPDATE tasks SET state = 'leased', attempt = attempt + 1, epoch = epoch + 1,
      consumer = :consumer, lease_until = :now + :lease
    WHERE ${CONTROL} = 'running' AND id IN (SELECT id FROM (${levels(k)})
      ORDER BY ${AGED} DESC, enqueued_ms, id
      LIMIT ${ROOM})
    RETURNING id, payload, priority, enqueued_ms, attempt, crashes, epoch, history`,
  /**
   * The job's head for a pull across jobs: its best aged priority ready now (null when none, or
   * when it is not running), its ready rows (up to k a level), in flight, and its cap.
   */
  head: (k: number) =>
    `SELECT CASE WHEN ${CONTROL} = 'running' THEN h.best END AS best, h.ready,
      ${LEASED} AS in_flight, ${CAP} AS cap
    FROM (SELECT max(${AGED}) AS best, count(*) AS ready FROM (${levels(k)})) h`,
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
      if (version === 1) db.exec(UPGRADE_1_TO_2);
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
