import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { insertRawTask, openSqliteBroker } from "../brokers/sqlite.ts";
import { BrokerError } from "../brokers/errors.ts";
import { makeTasks, runBrokerConformance } from "./conformance.ts";

/** Removes a database file with its WAL and shared-memory files. */
async function removeDatabase(path: string): Promise<void> {
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    await Deno.remove(file).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }
}

function tempDatabase(): Promise<string> {
  return Deno.makeTempFile({ prefix: "ttg-sqlite-", suffix: ".db" });
}

runBrokerConformance({
  name: "sqlite",
  setup: async () => {
    const path = await tempDatabase();
    return {
      open: (options) => openSqliteBroker({ ...options, path }),
      injectRaw: (jobId, raw) => insertRawTask(path, jobId, raw),
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

Deno.test("sqlite: one ack batch holding two deliveries of a chunk stores one and counts one duplicate", async () => {
  await using broker = await openSqliteBroker({ path: ":memory:" });
  const [task] = makeTasks("twice", 1);
  await broker.publish([task!, task!]);
  const deliveries = await broker.pull({ jobId: "twice", max: 2, waitMs: 0 });
  assert.equal(deliveries.length, 2);
  const outcomes = await broker.ack(deliveries.map((delivery, i) => ({
    delivery,
    result: { value: i, params: 10, workerId: `w${i}`, durationMs: 0, completedAt: "" },
  })));
  assert.deepEqual(outcomes, ["stored", "duplicate"]);
  const results = await broker.results("twice");
  assert.deepEqual(results.map((r) => [r.value, r.workerId]), [[0, "w0"]]);
  const stats = await broker.stats("twice");
  assert.equal(stats.completed, 1);
  assert.equal(stats.duplicates, 1);
});

Deno.test("sqlite: closing the broker ends a waiting pull with CLOSED", async () => {
  const broker = await openSqliteBroker({ path: ":memory:" });
  const waiting = broker.pull({ jobId: "idle", max: 1, waitMs: 10_000 });
  setTimeout(() => void broker.close(), 50);
  await assert.rejects(waiting, (e: unknown) => e instanceof BrokerError && e.code === "CLOSED");
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
  const module = new URL("../brokers/sqlite.ts", import.meta.url).href;
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
