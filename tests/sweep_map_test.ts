/**
 * The dashboard's sweep map: which parameters a chunk id holds, the rule that colours each cell by
 * the worst state of its chunks, and when the hub builds a job's map again (a real SQLite broker,
 * its results calls counted).
 */
import assert from "node:assert/strict";
import { openBroker } from "../brokers/open.ts";
import { DashboardHub } from "../workers/dashboard/hub.ts";
import { buildSweepMap, chunkRange, MAX_CELLS } from "../workers/dashboard/sweep_map.ts";
import { planSweep } from "../workers/plan.ts";
import { submitPlan } from "../workers/run.ts";
import { probeBroker } from "./broker_probe.ts";

Deno.test("chunkRange(): chunk n holds [n·size, (n+1)·size); halves split at start + floor(size/2)", () => {
  const record = { totalParams: 95, chunkSize: 10 };
  assert.deepEqual(chunkRange(record, "00009"), { start: 90, end: 95 });
  assert.deepEqual(chunkRange(record, "00009.0"), { start: 90, end: 92 });
  assert.deepEqual(chunkRange(record, "00009.1"), { start: 92, end: 95 });
  assert.deepEqual(chunkRange(record, "00002.1.1"), { start: 27, end: 30 });
  assert.equal(chunkRange(record, "00010"), undefined, "outside the sweep");
  assert.equal(chunkRange(record, "abc"), undefined);
  assert.equal(chunkRange(record, "00001.2"), undefined);
});

Deno.test("the sweep map: each cell the worst of its chunks (dead > running > retrying > waiting > cancelled > done), at most 2000 cells", () => {
  const record = { totalParams: 100, chunkSize: 10 };
  const map = buildSweepMap({
    record,
    control: "running",
    completed: ["00000", "00001", "00002.0", "00005"],
    dead: [{ start: 27, end: 28 }],
    running: ["00003", "00005"],
    retrying: ["00007", "00003"],
    maxCells: 10,
  });
  // 00002.1 = [25, 30) holds the dead letter; 00002's cell is dead; 00005 done and running;
  // 00007 waits for its retry; 00003 runs again (another worker took it since).
  assert.equal(map.cells, "ddxrwrwyww");
  assert.equal(map.paramsPerCell, 10);
  assert.deepEqual(map.counts, {
    done: 2,
    cancelled: 0,
    waiting: 4,
    retrying: 1,
    running: 2,
    dead: 1,
  });
  const cancelled = buildSweepMap({
    ...{ record, completed: ["00000"], dead: [], running: [], retrying: ["00004"] },
    control: "cancelled",
    maxCells: 10,
  });
  assert.equal(cancelled.cells, "dccccccccc", "a cancelled job's retries never come");
  const partly = buildSweepMap({
    record,
    control: "running",
    completed: ["00000.0"],
    dead: [],
    running: [],
    maxCells: 10,
  });
  assert.equal(partly.cells[0], "w", "half a cell done is still waiting");
  const big = buildSweepMap({
    record: { totalParams: 1_000_003, chunkSize: 7 },
    control: "running",
    completed: [],
    dead: [{ start: 999_999, end: 1_000_000 }],
    running: [],
  });
  assert.ok(big.cells.length <= MAX_CELLS);
  assert.equal(big.paramsPerCell, 501);
  assert.equal(big.cells.indexOf("x"), Math.floor(999_999 / 501));
});

Deno.test("the sweep map is rebuilt only once its refresh time has passed and the job changed", async () => {
  await using raw = await openBroker({ backend: "sqlite", sqlitePath: ":memory:" });
  await submitPlan(raw, planSweep({ jobId: "alpha", params: 100, chunkSize: 10 }));
  const probe = probeBroker(raw);
  let now = 0;
  const hub = new DashboardHub(probe.broker, { now: () => now });
  const map = async () => (await hub.sweepMap((await hub.job("alpha"))!))!;
  const first = await map();
  assert.equal(first.refreshMs, 2000);
  const [d] = await raw.pull({ jobId: "alpha", max: 1, waitMs: 0 });
  await raw.ack([{
    delivery: d!,
    result: { value: {}, params: 10, workerId: "w1", durationMs: 1, completedAt: "" },
  }]);
  now = 1500; // a new snapshot sees the change, but the map is kept for its refresh time
  assert.equal(await map(), first);
  now = 2100;
  const second = await map();
  assert.equal(second.cells.slice(0, 11), "dddddddddd" + "w");
  now = 9000; // nothing changed since: kept however old
  assert.equal(await map(), second);
  assert.equal(probe.calls.get("results"), 2);
  assert.equal(
    probe.stats.get("alpha"),
    3,
    "snapshots at 0, 1500 and 9000 ms (2100 shares 1500's)",
  );
});
