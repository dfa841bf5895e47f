/**
 * Conformance cases: the counters are true at every instant, also while consumers die; a
 * fault-free run counts no zombie; a mixed fleet with the predecessor's workers counts every
 * chunk once.
 *
 * @module
 */
import { allResults } from "../../brokers/results.ts";
import assert from "node:assert/strict";
import type { Broker, Delivery } from "../../brokers/broker.ts";
import {
  assertAccounted,
  type CaseRegistry,
  eventually,
  makeTasks,
  pullAll,
  recover,
  resultFor,
  sleep,
} from "./support.ts";

/** Registers the accounting cases. */
export function accountingCases(test: CaseRegistry): void {
  test(
    "invariant",
    "ready + in flight + delayed + completed + dead letters account for every chunk at every instant, while consumers die",
    async ({ setup, jobId }) => {
      const options = {
        leaseMs: 500,
        retry: { maxAttempts: 2, baseDelayMs: 100, factor: 1, maxCrashes: 3 },
      };
      const observer = await setup.open({ ...options, consumerId: "observer" });
      const planned = 60;
      // An unreadable message is not a chunk: it is counted once it is read and dead-lettered.
      await setup.injectRaw(jobId, "{not json");
      await eventually(async () => {
        assert.deepEqual(await observer.pull({ jobId, max: 1, waitMs: 100 }), []);
        assert.equal((await observer.stats(jobId)).malformed, 1);
      });
      await observer.publish(makeTasks(jobId, planned, {}, 4));
      let running = true;
      let samples = 0;
      const sampler = (async () => {
        while (running) {
          assertAccounted(await observer.stats(jobId), planned, `sample ${samples}: `);
          samples += 1;
          await sleep(15);
        }
      })();
      const deadline = Date.now() + 60_000;
      let generation = 0;
      try {
        for (;;) {
          const stats = await observer.stats(jobId);
          if (stats.ready + stats.inFlight + stats.delayed === 0) break;
          assert.ok(Date.now() < deadline, "the job did not finish in time");
          const consumer = await setup.open({ ...options, consumerId: `c${generation++}` });
          await work(consumer, jobId, generation);
          await recover(observer, jobId);
        }
      } finally {
        running = false;
        await sampler;
      }
      assert.ok(samples >= 10, `only ${samples} samples`);
      const stats = await observer.stats(jobId);
      assertAccounted(stats, planned);
      assert.equal(stats.malformed, 1);
      const results = await allResults(observer, jobId);
      assert.equal(new Set(results.map((r) => r.chunkId)).size, results.length);
      const params = results.reduce((n, r) => n + r.params, 0) +
        (await observer.deadLetters.list(jobId)).reduce(
          (n, l) => n + (l.task ? l.task.end - l.task.start : 0),
          0,
        );
      assert.equal(params, planned * 4, "each parameter is completed or dead-lettered, once");
    },
  );

  test(
    "faultFree",
    "a fault-free run with heartbeats crossing acks counts no zombie and no duplicate",
    async ({ setup, jobId }) => {
      const a = await setup.open({ consumerId: "a" });
      const b = await setup.open({ consumerId: "b" });
      await a.publish(makeTasks(jobId, 400, {}, 1));
      let done = 0;
      const deadline = Date.now() + 20_000;
      while (done < 400) {
        assert.ok(Date.now() < deadline, `only ${done} of 400 chunks completed in time`);
        await Promise.all([a, b].map(async (broker) => {
          const batch = await broker.pull({ jobId, max: 25, waitMs: 100 });
          if (batch.length === 0) return;
          // The heartbeat of a worker runs beside its commits: both orders happen.
          const [acked, extended] = await Promise.all([
            broker.ack(batch.map((d) => ({ delivery: d, result: resultFor(d) }))),
            broker.extend(batch),
          ]);
          assert.ok(acked.every((o) => o === "stored"), `acks ${acked}`);
          assert.ok(extended.every((o) => o !== "zombie"), `extends ${extended}`);
          assert.deepEqual(await broker.extend(batch), batch.map(() => "gone"));
          done += batch.length;
        }));
      }
      const stats = await a.stats(jobId);
      assert.equal(stats.completed, 400);
      assert.equal(stats.zombies, 0);
      assert.equal(stats.duplicates, 0);
      assert.equal(stats.reclaimed, 0);
    },
  );

  test(
    "legacy",
    "a mixed fleet of new and predecessor workers on the predecessor's names counts every chunk once",
    async ({ setup }) => {
      const legacy = setup.legacy;
      if (!legacy) {
        throw new Error("the legacy case needs setup.legacy (or a skip with its reason)");
      }
      const broker = await setup.open({ consumerId: "ttg-new" });
      await broker.reset(legacy.jobId);
      await legacy.enqueue(20, 10);
      const mine: Delivery[] = await pullAll(broker, legacy.jobId, 8, { max: 8 });
      assert.ok(mine.every((d) => d.task.handler === "ttg.sweep" && d.attempt === 1));
      assert.deepEqual(
        await broker.ack(mine.map((d) => ({ delivery: d, result: resultFor(d, "ttg-new") }))),
        mine.map(() => "stored"),
      );
      assert.equal(await legacy.work(12), 12);
      await eventually(async () => {
        const results = await allResults(broker, legacy.jobId);
        assert.deepEqual(
          results.map((r) => r.chunkId).sort(),
          Array.from({ length: 20 }, (_, i) => String(i).padStart(5, "0")),
        );
        assert.equal(results.filter((r) => r.workerId === "ttg-new").length, 8);
        assert.ok(results.every((r) => r.params === 10), "a legacy result lost its size");
        const stats = await broker.stats(legacy.jobId);
        assert.equal(stats.completed, 20);
        assert.equal(stats.duplicates, 0);
        assert.equal(stats.ready + stats.inFlight, 0);
      }, 15_000);
    },
  );
}

/**
 * One consumer's life in the invariant case: it pulls, acks most chunks, fails some, and every
 * other generation dies holding what it has left.
 */
async function work(consumer: Broker, jobId: string, generation: number): Promise<void> {
  const batch = await consumer.pull({ jobId, max: 8, waitMs: 200 });
  const acks = batch.filter((_, i) => i % 4 === 0 || i % 4 === 1);
  const fails = batch.filter((_, i) => i % 4 === 2);
  await consumer.ack(acks.map((d) => ({ delivery: d, result: resultFor(d) })));
  await consumer.nack(
    fails.map((d) => ({ delivery: d, kind: "failed", reason: "boom", workerId: "w" })),
  );
  const rest = batch.filter((_, i) => i % 4 === 3);
  if (generation % 2 === 0) {
    await consumer.close(); // dies holding the rest: their leases lapse or go with the connection
    return;
  }
  await consumer.ack(rest.map((d) => ({ delivery: d, result: resultFor(d) })));
  await consumer.close();
}
