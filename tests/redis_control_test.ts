/**
 * Job control and the key-value store on Redis, beyond the conformance suite: what only Redis's
 * way of doing them can get wrong (expiries kept beside a hash, a blocking read that waited since
 * before a pause or a cancel, queued entries skipped by moving a group's last-delivered id, a
 * malformed message given back in a cancelled job).
 */
import assert from "node:assert/strict";
import { GROUP, jobKeyBase, kvKey, streamKey } from "../brokers/redis/codec.ts";
import { redisKv } from "../brokers/redis/kv.ts";
import { malformedArgs } from "../brokers/redis/plans.ts";
import { SCRIPTS } from "../brokers/redis/scripts/mod.ts";
import { makeTasks } from "./conformance.ts";
import { assertAccounted, pullAll, resultFor, sleep } from "./conformance/support.ts";
import { sharedTest } from "./redis_support.ts";

sharedTest(
  "the key-value store: an entry with a time to live is gone once it expires, ifAbsent writes over it, ifValue only over its value, a put deletes expired ones",
  async ({ prefix, client }) => {
    const kv = redisKv((name, args) => client.eval(SCRIPTS[name].lua, 0, ...args), prefix);
    const hash = kvKey(prefix, "workers");
    assert.equal(await kv.put("workers", "w1", "a", { ttlMs: 150 }), true);
    assert.equal(await kv.put("workers", "w1", "b", { ifAbsent: true }), false);
    assert.equal(await kv.get("workers", "w1"), "a");
    await kv.put("workers", "w2", "c");
    await sleep(200);
    assert.equal(await kv.get("workers", "w1"), null);
    assert.deepEqual(await kv.list("workers"), [["w2", "c"]]);
    assert.equal(await kv.put("workers", "w1", "d", { ifAbsent: true }), true);
    await sleep(200);
    assert.equal(await kv.get("workers", "w1"), "d", "a put without a time to live expired");
    assert.equal(await kv.put("workers", "w1", "e", { ifValue: "a" }), false);
    assert.equal(await kv.put("workers", "w1", "e", { ifValue: "d" }), true);
    assert.equal(await kv.put("workers", "none", "e", { ifValue: "d" }), false, "no value");
    assert.deepEqual([await kv.get("workers", "w1"), await kv.get("workers", "none")], ["e", null]);
    await kv.put("workers", "w3", "e", { ttlMs: 1 });
    await sleep(20);
    await kv.put("workers", "w4", "f");
    assert.equal(await client.hexists(hash, "w3"), 0, "the expired entry was kept");
    assert.equal(await client.zcard(`${hash}:exp`), 0);
    await kv.delete("workers", "w2");
    assert.deepEqual((await kv.list("workers")).sort(), [["w1", "e"], ["w4", "f"]]);
    assert.deepEqual(await kv.list("jobs"), [], "spaces are apart");
  },
);

sharedTest(
  "a pull blocked since before a pause hands out nothing published after it; since before a cancel, cancels it",
  async ({ open }) => {
    const broker = await open();
    const blocked = async (jobId: string, action: "pause" | "cancel") => {
      const waiting = broker.pull({ jobId, max: 4, waitMs: 1000 });
      await sleep(200); // the claim found nothing: the pull is blocked on the streams
      await broker.control(jobId, action);
      await broker.publish(makeTasks(jobId, 2));
      assert.deepEqual(await waiting, [], `a ${action}d job gave out work`);
      const stats = await broker.stats(jobId);
      assertAccounted(stats, 2);
      return stats;
    };
    const paused = await blocked("paused", "pause");
    assert.deepEqual([paused.ready, paused.cancelled], [2, 0]);
    await broker.control("paused", "resume");
    assert.equal((await pullAll(broker, "paused", 2)).length, 2);
    const cancelled = await blocked("cancelled", "cancel");
    assert.deepEqual([cancelled.ready, cancelled.inFlight, cancelled.cancelled], [0, 0, 2]);
  },
);

sharedTest(
  "cancelling skips the waiting entries of every band and redo stream and deletes the delayed retries; lags stay exact and the streams are trimmed later",
  async ({ prefix, client, open }) => {
    const broker = await open({ retry: { baseDelayMs: 60_000 } });
    const tasks = makeTasks("job", 600);
    await broker.publish(tasks.map((t, i) => ({ ...t, priority: i % 3 === 0 ? 5 : 0 })));
    const held = await pullAll(broker, "job", 6, { max: 6 });
    await broker.nack([
      { delivery: held[0]!, kind: "released", reason: "back", workerId: "w" },
      { delivery: held[1]!, kind: "failed", reason: "boom", workerId: "w" },
    ]);
    const { cancelled } = await broker.control("job", "cancel");
    assert.equal(cancelled, 596, "594 never claimed, one released, one waiting for its retry");
    const base = jobKeyBase(prefix, "job");
    for (const band of ["0", "5", "r0", "r5"]) {
      const key = streamKey(base, band);
      if (!await client.exists(key)) continue;
      const groups = await client.call("XINFO", "GROUPS", key) as unknown[][];
      const group = groups.map((g) => Object.fromEntries(pairs(g))).find((g) => g.name === GROUP);
      assert.equal(group?.lag, 0, `${key} still has entries to deliver`);
    }
    let stats = await broker.stats("job");
    assert.deepEqual([stats.ready, stats.delayed, stats.inFlight, stats.cancelled], [0, 0, 4, 596]);
    assert.deepEqual(stats.oldestReady, []);
    assertAccounted(stats, 600);
    await broker.ack(held.slice(2).map((d) => ({ delivery: d, result: resultFor(d) })));
    await broker.reclaim({ jobId: "job" }); // trims what no reader needs any more
    for (const band of ["0", "5"]) {
      assert.ok(await client.xlen(streamKey(base, band)) <= 100, "the skipped entries were kept");
    }
    stats = await broker.stats("job");
    assert.deepEqual([stats.completed, stats.completedParams, stats.cancelled], [4, 40, 596]);
    assertAccounted(stats, 600);
  },
);

sharedTest(
  "a message that is not a chunk, given back in a cancelled job, is dead-lettered as malformed, not cancelled",
  async ({ prefix, client, open }) => {
    const broker = await open();
    await broker.publish(makeTasks("job", 1));
    await broker.control("job", "cancel");
    const base = jobKeyBase(prefix, "job");
    const stream = streamKey(base, "0");
    await client.xadd(stream, "*", "payload", "{not json");
    // Claimed as a consumer that then finds it unreadable (as a pull does before the cancel).
    const reply = await client.xreadgroup("GROUP", GROUP, "c", "STREAMS", stream, ">") as [
      string,
      [string, string[]][],
    ][];
    const id = reply[0]![1][0]![0];
    const letter = { reason: "message is not JSON", raw: "{not json" };
    const args = malformedArgs(`0:${id}`, 1, letter, "c", Date.now());
    const controls = kvKey(prefix, "controls");
    assert.equal(
      await client.eval(SCRIPTS.ttgNack.lua, 0, base, "job", "c", controls, ...args),
      "d",
    );
    const stats = await broker.stats("job");
    assert.deepEqual([stats.deadLettered, stats.malformed, stats.cancelled], [1, 1, 1]);
    assertAccounted(stats, 1);
  },
);

/** The pairs of a flat RESP list. */
function pairs(flat: readonly unknown[]): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([String(flat[i]), flat[i + 1]]);
  return out;
}
