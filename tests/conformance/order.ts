/**
 * Conformance cases: the order chunks are handed out in (priority, and aging so that a low
 * priority is never starved).
 *
 * @module
 */
import assert from "node:assert/strict";
import { type CaseRegistry, makeTasks, pullAll, resultFor, sleep } from "./support.ts";

/** Registers the ordering cases. */
export function orderCases(test: CaseRegistry): void {
  test("priority", "higher priority is pulled first", async ({ setup, jobId }) => {
    const broker = await setup.open();
    const tasks = [0, 5, 10, 3, 7].map((priority, i) => makeTasks(jobId, 5, { priority })[i]!);
    await broker.publish(tasks);
    await sleep(200);
    const { oldestReady } = await broker.stats(jobId);
    if (oldestReady) {
      // Where a broker can tell the waiting time of each band, it tells it truly.
      assert.deepEqual(oldestReady.map((o) => o.priority).sort((a, b) => a - b), [0, 3, 5, 7, 10]);
      assert.ok(
        oldestReady.every((o) => o.ageMs >= 150 && o.ageMs < 10_000),
        JSON.stringify(oldestReady),
      );
    }
    const order: number[] = [];
    for (let i = 0; i < 5; i++) {
      const [d] = await pullAll(broker, jobId, 1);
      order.push(d!.task.priority);
      await broker.ack([{ delivery: d!, result: resultFor(d!) }]);
    }
    assert.deepEqual(order, [10, 7, 5, 3, 0]);
  });

  test(
    "aging",
    "a low-priority task that waited long enough is not starved by newer high ones",
    async ({ setup, jobId }) => {
      const broker = await setup.open({ priorityAgingMs: 200 });
      const [low, high] = makeTasks(jobId, 2);
      await broker.publish([{ ...low!, priority: 0 }]);
      await sleep(2600); // 13 aging intervals: aged priority 13 > 10
      await broker.publish([{ ...high!, priority: 10 }]);
      const [first] = await pullAll(broker, jobId, 1);
      assert.equal(first?.task.chunkId, low!.chunkId);
    },
  );
}
