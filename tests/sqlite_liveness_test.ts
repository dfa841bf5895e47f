/**
 * A SQLite consumer's process that ends while it holds chunks gives them back at once, without
 * waiting for their lease (brokers/sqlite/liveness.ts); a live process's leases stay its own.
 * Real processes, a real SIGKILL.
 */
import assert from "node:assert/strict";
import { openSqliteBroker } from "../brokers/sqlite/sqlite.ts";
import { makeTasks } from "./conformance.ts";
import { readUntil } from "./helpers.ts";

/** A child that opens the database as `consumerId`, takes `count` chunks, says so and waits. */
function holder(path: string, jobId: string, consumerId: string, count: number) {
  const module = new URL("../brokers/sqlite/sqlite.ts", import.meta.url).href;
  const script = `
    import { openSqliteBroker } from ${JSON.stringify(module)};
    const broker = await openSqliteBroker({
      path: ${JSON.stringify(path)}, consumerId: ${JSON.stringify(consumerId)}, leaseMs: 600_000,
    });
    const held = [];
    while (held.length < ${count}) {
      held.push(...await broker.pull({ jobId: ${
    JSON.stringify(jobId)
  }, max: ${count} - held.length, waitMs: 5000 }));
    }
    console.log("held " + held.map((d) => d.task.chunkId).join(","));
    setInterval(() => {}, 60_000); // holds its leases until it is killed
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const held = readUntil(lines, () => true, {
    timeoutMs: 60_000,
    what: `holder "${consumerId}" to say it held its chunks`,
  }).then((line) => line.trim().slice("held ".length).split(","));
  return { child, held, lines };
}

Deno.test("sqlite: the chunks of a SIGKILLed consumer come back at once, long before their lease; a live consumer's stay held", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ttg-liveness-" });
  const path = `${dir}/ttg.db`;
  const jobId = "liveness";
  const broker = await openSqliteBroker({ path, consumerId: "observer", leaseMs: 600_000 });
  const doomed = holder(path, jobId, "doomed", 3);
  const alive = holder(path, jobId, "alive", 2);
  try {
    await broker.publish(makeTasks(jobId, 5));
    const [doomedIds, aliveIds] = await Promise.all([doomed.held, alive.held]);
    assert.equal(await broker.reclaim({ jobId }), 0, "a live consumer's lease was taken");
    doomed.child.kill("SIGKILL");
    await doomed.child.status;
    assert.equal(await broker.reclaim({ jobId }), 3);
    const files = [...Deno.readDirSync(`${path}.consumers`)];
    assert.equal(files.length, 2, "the ended consumer's file is left behind");
    const stats = await broker.stats(jobId);
    assert.equal(stats.reclaimed, 3);
    assert.equal(stats.inFlight, 2, "the live consumer's two chunks are still held");
    assert.equal(stats.ready, 3);
    const back = await broker.pull({ jobId, max: 5, waitMs: 0 });
    assert.deepEqual(back.map((d) => d.task.chunkId).sort(), [...doomedIds].sort());
    for (const d of back) {
      assert.equal(d.crashes, 1);
      assert.match(d.history.at(-1)?.reason ?? "", /"doomed" ended: its process is gone/);
    }
    assert.equal(await broker.reclaim({ jobId }), 0, "the live consumer's chunks were taken");
    assert.ok(aliveIds.every((id) => !back.some((d) => d.task.chunkId === id)));
  } finally {
    for (const h of [doomed, alive]) {
      try {
        h.child.kill("SIGKILL");
      } catch {
        // already ended
      }
      await h.child.status;
      await h.lines.cancel().catch(() => {});
    }
    await broker.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqlite: a handle closed on purpose removes its lock file, and the last one its folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ttg-liveness-" });
  const path = `${dir}/ttg.db`;
  try {
    const a = await openSqliteBroker({ path, consumerId: "a" });
    const b = await openSqliteBroker({ path, consumerId: "b" });
    assert.equal([...Deno.readDirSync(`${path}.consumers`)].length, 2);
    await a.close();
    assert.equal([...Deno.readDirSync(`${path}.consumers`)].length, 1);
    await b.close();
    assert.ok(![...Deno.readDirSync(dir)].some((e) => e.name.endsWith(".consumers")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
