import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { countJobRows, insertRawTask, openSqliteBroker } from "../brokers/sqlite/sqlite.ts";
import { BrokerError } from "../errors.ts";
import { makeTasks, runBrokerConformance } from "./conformance.ts";

/** Removes a database file with its WAL and shared-memory files and its consumers' locks. */
async function removeDatabase(path: string): Promise<void> {
  for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}.consumers`]) {
    await Deno.remove(file, { recursive: true }).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }
}

function tempDatabase(): Promise<string> {
  return Deno.makeTempFile({ prefix: "ttg-sqlite-", suffix: ".db" });
}

runBrokerConformance({
  name: "sqlite",
  skip: {
    restart: "SQLite has no server to kill: the database is a file each process opens",
    legacy: "the predecessor had no SQLite backend",
  },
  setup: async () => {
    const path = await tempDatabase();
    return {
      open: (options) => openSqliteBroker({ ...options, path }),
      injectRaw: (jobId, raw) => insertRawTask(path, jobId, raw),
      traces: async (jobId) => {
        const rows = await countJobRows(path, jobId);
        return rows > 0 ? [`${rows} rows`] : [];
      },
      cleanup: () => removeDatabase(path),
    };
  },
});

Deno.test("sqlite: a :memory: broker works in process and is private to its handle", async () => {
  await using broker = await openSqliteBroker({ path: ":memory:", consumerId: "m" });
  await using other = await openSqliteBroker({ path: ":memory:", consumerId: "n" });
  assert.equal(broker.capabilities.multiProcess, false);
  await broker.publish(makeTasks("mem", 3));
  const deliveries = await broker.pull({ jobId: "mem", max: 10, waitMs: 0 });
  assert.deepEqual(deliveries.map((d) => d.task.chunkId), ["00000", "00001", "00002"]);
  const outcomes = await broker.ack(deliveries.map((delivery) => ({
    delivery,
    result: { value: 1, params: 10, workerId: "m", durationMs: 0, completedAt: "" },
  })));
  assert.deepEqual(outcomes, ["stored", "stored", "stored"]);
  assert.equal((await broker.stats("mem")).completed, 3);
  assert.equal((await other.stats("mem")).completed, 0);
});

Deno.test("sqlite: a file database creates its directory and keeps its queue across reopen", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ttg-sqlite-" });
  const path = `${dir}/nested/deeper/ttg.db`;
  try {
    const first = await openSqliteBroker({ path });
    await first.publish(makeTasks("durable", 2));
    await first.close();
    await using second = await openSqliteBroker({ path });
    const deliveries = await second.pull({ jobId: "durable", max: 5, waitMs: 0 });
    assert.equal(deliveries.length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqlite: a write lock held past busyTimeoutMs fails with UNAVAILABLE", async () => {
  const path = await tempDatabase();
  try {
    await using broker = await openSqliteBroker({ path, busyTimeoutMs: 100 });
    const holder = new DatabaseSync(path);
    try {
      holder.exec("BEGIN IMMEDIATE");
      await assert.rejects(
        () => broker.publish(makeTasks("busy", 1)),
        (e: unknown) =>
          e instanceof BrokerError && e.code === "UNAVAILABLE" && /locked/.test(e.message),
      );
      holder.exec("ROLLBACK");
    } finally {
      holder.close();
    }
    await broker.publish(makeTasks("busy", 1));
    assert.equal((await broker.stats("busy")).ready, 1);
  } finally {
    await removeDatabase(path);
  }
});

/** A worker process: registers as a consumer, then pulls and acks until the queue stays empty. */
function workerScript(path: string, jobId: string, consumerId: string): string {
  const module = new URL("../brokers/sqlite/sqlite.ts", import.meta.url).href;
  return `
    import { openSqliteBroker } from ${JSON.stringify(module)};
    const broker = await openSqliteBroker({ path: ${JSON.stringify(path)}, consumerId: ${
    JSON.stringify(consumerId)
  } });
    const jobId = ${JSON.stringify(jobId)};
    // Registers this consumer; it may already claim a chunk if the parent published meanwhile.
    let batch = await broker.pull({ jobId, max: 5, waitMs: 0 });
    const seen = [];
    for (let waitMs = 20_000;; waitMs = 500) {
      if (batch.length === 0) batch = await broker.pull({ jobId, max: 5, waitMs });
      if (batch.length === 0) break;
      seen.push(...batch.map((d) => d.task.chunkId));
      await new Promise((resolve) => setTimeout(resolve, 10));
      await broker.ack(batch.map((delivery) => ({ delivery, result: {
        value: null, params: 10, workerId: ${JSON.stringify(consumerId)}, durationMs: 0,
        completedAt: new Date().toISOString() } })));
      batch = [];
    }
    await broker.close();
    console.log(JSON.stringify(seen));
  `;
}

Deno.test("sqlite: two processes sharing one file each claim distinct chunks", async () => {
  const path = await tempDatabase();
  const jobId = "procs";
  try {
    await using broker = await openSqliteBroker({ path, consumerId: "parent" });
    const children = ["p1", "p2"].map((id) =>
      new Deno.Command(Deno.execPath(), {
        args: ["eval", "--no-config", workerScript(path, jobId, id)],
        stdout: "piped",
        stderr: "piped",
      }).output()
    );
    // Publish once both children are waiting, so each gets a share.
    const deadline = Date.now() + 30_000;
    while ((await broker.stats(jobId)).consumers < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await broker.publish(makeTasks(jobId, 200));
    const outputs = await Promise.all(children);
    const claims = outputs.map((output) => {
      assert.ok(output.success, new TextDecoder().decode(output.stderr));
      return JSON.parse(new TextDecoder().decode(output.stdout)) as string[];
    });
    const all = claims.flat();
    assert.ok(claims.every((ids) => ids.length > 0), `shares ${claims.map((c) => c.length)}`);
    assert.equal(all.length, 200);
    assert.equal(new Set(all).size, 200, "a chunk was claimed by both processes");
    const stats = await broker.stats(jobId);
    assert.equal(stats.completed, 200);
    assert.equal(stats.duplicates + stats.zombies, 0);
  } finally {
    await removeDatabase(path);
  }
});

Deno.test("sqlite: a file that holds another application's tables is refused, and left as it was", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ttg-foreign-" });
  try {
    const path = `${dir}/theirs.db`;
    const theirs = new DatabaseSync(path);
    theirs.exec("CREATE TABLE tasks (x); INSERT INTO tasks VALUES (1)");
    theirs.close();
    await assert.rejects(
      () => openSqliteBroker({ path }),
      { message: /it is not a TTG database \(it has tables such as tasks\)/ },
    );
    const check = new DatabaseSync(path);
    const tables = check.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all();
    const mode = check.prepare("PRAGMA journal_mode").get();
    check.close();
    assert.deepEqual(tables.map((t) => t.name), ["tasks"]);
    assert.equal(mode?.journal_mode, "delete", "its journal mode was changed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The tables of a version-1 database (what TTG 0.1.0 created), to test the upgrade. */
const SCHEMA_V1 = `
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

Deno.test("sqlite: a version-1 database is upgraded in place, keeping its queue, results and counts", async () => {
  const path = await tempDatabase();
  try {
    const old = new DatabaseSync(path);
    old.exec(SCHEMA_V1);
    old.exec("PRAGMA user_version = 1");
    const [task] = makeTasks("old", 1);
    old.prepare(
      "INSERT INTO tasks (job_id, chunk_id, payload, enqueued_ms, available_at) VALUES (?, ?, ?, 0, 0)",
    )
      .run("old", "00009", JSON.stringify({ ...task, chunkId: "00009" }));
    old.prepare(
      "INSERT INTO results (job_id, chunk_id, value, params, worker_id, duration_ms, completed_at) VALUES ('old', '00001', '1', 10, 'w', 1, '')",
    ).run();
    old.close();
    await using broker = await openSqliteBroker({ path });
    const stats = await broker.stats("old");
    assert.deepEqual([stats.ready, stats.completed, stats.completedParams, stats.splits], [
      1,
      1,
      10,
      0,
    ]);
    const [delivery] = await broker.pull({ jobId: "old", max: 1, waitMs: 0 });
    assert.equal(delivery?.crashes, 0);
    assert.deepEqual(
      await broker.ack([{
        delivery: delivery!,
        result: { value: 2, params: 10, workerId: "w", durationMs: 1, completedAt: "" },
      }]),
      ["stored"],
    );
    assert.equal((await broker.stats("old")).completedParams, 20);
    assert.equal(await broker.control("old", "pause").then((o) => o.after), "paused");
  } finally {
    await removeDatabase(path);
  }
});
