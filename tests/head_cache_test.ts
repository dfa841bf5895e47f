/**
 * brokers/head_cache.ts: which job heads a pull across jobs reads again, on a clock the test
 * moves.
 */
import assert from "node:assert/strict";
import { FIRST_EMPTY_MS, FRESH_MS, HeadCache, MAX_EMPTY_MS } from "../brokers/head_cache.ts";
import type { JobHead } from "../brokers/share.ts";

function setup() {
  let now = 0;
  const cache = new HeadCache(() => now);
  const queues = new Map<string, JobHead>();
  const reads: string[][] = [];
  const read = (ids: readonly string[]) => {
    reads.push([...ids]);
    return Promise.resolve(
      ids.map((jobId) => queues.get(jobId) ?? { jobId, priority: null, ready: 0, inFlight: 0 }),
    );
  };
  return {
    cache,
    queues,
    reads,
    heads: (ids: string[], max = 8) => cache.heads(ids, max, read),
    at: (ms: number) => void (now = ms),
  };
}

Deno.test("a head with chunks ready is read again once it is older than FRESH_MS, or once its job changed", async () => {
  const t = setup();
  t.queues.set("a", { jobId: "a", priority: 0, ready: 5, inFlight: 0 });
  t.queues.set("b", { jobId: "b", priority: 3, ready: 5, inFlight: 0 });
  assert.deepEqual((await t.heads(["a", "b"])).map((h) => h.jobId), ["a", "b"]);
  t.at(FRESH_MS - 1);
  await t.heads(["a", "b"]);
  assert.deepEqual(t.reads, [["a", "b"]], "both still fresh");
  t.cache.changed("b");
  await t.heads(["a", "b"]);
  assert.deepEqual(t.reads.at(-1), ["b"], "only the changed one");
  t.at(FRESH_MS);
  await t.heads(["a", "b"]);
  assert.deepEqual(t.reads.at(-1), ["a"], "a is due; b was read later");
  const count = t.reads.length;
  await t.heads(["a", "b"], 16);
  assert.equal(t.reads.length, count, "a larger max: both hold fewer than the smaller one");
});

Deno.test("a head read with a smaller max is read again when it was full at that max", async () => {
  const t = setup();
  t.queues.set("a", { jobId: "a", priority: 0, ready: 4, inFlight: 0 });
  t.queues.set("b", { jobId: "b", priority: 0, ready: 2, inFlight: 0 });
  await t.heads(["a", "b"], 4);
  await t.heads(["a", "b"], 8);
  assert.deepEqual(t.reads, [["a", "b"], ["a"]], "a may hold more than 4; b holds 2 whatever max");
});

Deno.test("an empty head is read again after a wait that doubles up to MAX_EMPTY_MS, and at once after a publish", async () => {
  const t = setup();
  const times: number[] = [];
  for (let now = 0; now <= 4000; now++) {
    t.at(now);
    const before = t.reads.length;
    await t.heads(["e"]);
    if (t.reads.length > before) times.push(now);
  }
  const gaps = times.slice(1).map((time, i) => time - times[i]!);
  assert.deepEqual(gaps.slice(0, 4), [1, 2, 4, 8].map((k) => k * FIRST_EMPTY_MS));
  assert.equal(Math.max(...gaps), MAX_EMPTY_MS);
  t.queues.set("e", { jobId: "e", priority: 0, ready: 1, inFlight: 0 });
  t.cache.changed("e");
  assert.equal(
    (await t.heads(["e"]))[0]!.ready,
    1,
    "a publish through this consumer is seen at once",
  );
});

Deno.test("an ack makes a capped job's head due, not an uncapped one's", async () => {
  const t = setup();
  t.queues.set("capped", { jobId: "capped", priority: 0, ready: 5, inFlight: 2, maxInFlight: 2 });
  t.queues.set("free", { jobId: "free", priority: 0, ready: 5, inFlight: 2 });
  await t.heads(["capped", "free"]);
  t.cache.settled("capped");
  t.cache.settled("free");
  await t.heads(["capped", "free"]);
  assert.deepEqual(t.reads, [["capped", "free"], ["capped"]]);
});
