/**
 * Conformance cases: leases and fencing. A dead consumer's chunks come back without spending an
 * attempt; a chunk that keeps losing its leases is bisected, then dead-lettered as expired; a
 * live lease is never stolen; a superseded claim is a zombie, a settled one is gone; a broker
 * restart loses and doubles nothing.
 *
 * @module
 */
import { allResults } from "../../brokers/results.ts";
import assert from "node:assert/strict";
import type { Delivery } from "../../brokers/broker.ts";
import {
  assertAccounted,
  type CaseRegistry,
  dieHolding,
  eventually,
  makeTasks,
  pullAll,
  recover,
  resultFor,
  sleep,
} from "./support.ts";

/** Registers the lease cases. */
export function leaseCases(test: CaseRegistry): void {
  test(
    "reclaim",
    "a dead consumer's chunks come back with their attempt unspent and are counted exactly once",
    async ({ setup, jobId }) => {
      const live = await setup.open({ consumerId: "live", leaseMs: 600 });
      await live.publish(makeTasks(jobId, 2));
      const held = await dieHolding(setup, jobId, 2, { consumerId: "dead", leaseMs: 600 });
      assert.ok(held.every((d) => d.attempt === 1));
      const recovered = await pullAll(live, jobId, 2, { reclaim: true });
      for (const d of recovered) {
        assert.equal(d.attempt, 1, "a lost lease spends no attempt");
        assert.equal(d.crashes, 1);
        assert.deepEqual(d.history.map((h) => [h.attempt, h.kind]), [[1, "expired"]]);
        assert.ok(d.history[0]!.reason.length > 0);
      }
      assert.deepEqual(
        await live.ack(recovered.map((d) => ({ delivery: d, result: resultFor(d, "live") }))),
        ["stored", "stored"],
      );
      const results = await allResults(live, jobId);
      assert.equal(results.length, 2);
      assert.ok(results.every((r) => r.workerId === "live"));
      const stats = await live.stats(jobId);
      assert.equal(stats.completed, 2);
      assert.equal(stats.reclaimed, 2);
      assert.equal(stats.zombies, 0);
    },
  );

  test(
    "crashBudget",
    "a chunk that keeps losing its leases is bisected, then its one-parameter halves dead-lettered as expired",
    async ({ setup, jobId }) => {
      const options = { leaseMs: 400, retry: { maxCrashes: 2 } };
      const live = await setup.open({ ...options, consumerId: "live" });
      await live.publish(makeTasks(jobId, 1, {}, 2));
      let deaths = 0;
      const kill = async (count: number) => {
        for (let i = 0; i < count; i++) {
          // Wait until the previous holder's chunks are claimable again, then die holding them.
          await eventually(async () => {
            await recover(live, jobId);
            const stats = await live.stats(jobId);
            assert.equal(stats.inFlight, 0);
            assert.ok(stats.ready >= 1);
          });
          const stats = await live.stats(jobId);
          await dieHolding(setup, jobId, stats.ready, {
            ...options,
            consumerId: `dead-${deaths++}`,
          });
        }
      };
      await kill(2); // two lost leases: the budget is spent, the chunk is bisected
      await eventually(async () => {
        await recover(live, jobId);
        const stats = await live.stats(jobId);
        assert.equal(stats.splits, 1);
        assert.equal(stats.ready, 2);
        assertAccounted(stats, 1);
      });
      await kill(2); // both halves lose two leases each (held together)
      await eventually(async () => {
        await recover(live, jobId);
        const stats = await live.stats(jobId);
        assert.equal(stats.deadLettered, 2);
        assertAccounted(stats, 1);
      });
      const letters = await live.deadLetters.list(jobId);
      assert.deepEqual(letters.map((l) => l.task?.chunkId).sort(), ["00000.0", "00000.1"]);
      for (const letter of letters) {
        assert.equal(letter.kind, "expired");
        assert.equal(letter.attempts, 1, "no attempt was spent");
        assert.deepEqual(letter.history.map((h) => h.kind), ["expired", "expired"]);
      }
      assert.deepEqual(await live.pull({ jobId, max: 5, waitMs: 200 }), []);
    },
  );

  test(
    "extend",
    "extend() keeps a live consumer's slow chunk from being reclaimed",
    async ({ setup, jobId }) => {
      const slow = await setup.open({ consumerId: "slow", leaseMs: 600 });
      const other = await setup.open({ consumerId: "other", leaseMs: 600 });
      await slow.publish(makeTasks(jobId, 1));
      const [d] = await pullAll(slow, jobId, 1);
      for (let i = 0; i < 8; i++) {
        await sleep(200);
        assert.deepEqual(await slow.extend([d!]), ["extended"]);
        if (other.capabilities.leases === "extend") await other.reclaim({ jobId });
        assert.deepEqual(
          await other.pull({ jobId, max: 1, waitMs: 0 }),
          [],
          "a live lease was stolen",
        );
      }
      assert.deepEqual(await slow.ack([{ delivery: d!, result: resultFor(d!) }]), ["stored"]);
      const stats = await other.stats(jobId);
      assert.equal(stats.reclaimed, 0);
      assert.equal(stats.zombies, 0);
    },
  );

  test(
    "gone",
    "extending a chunk its own holder already acked or nacked is gone, not a zombie",
    async ({ setup, jobId }) => {
      const broker = await setup.open({ retry: { baseDelayMs: 60_000 } });
      await broker.publish(makeTasks(jobId, 3));
      const [a, b, c] = await pullAll(broker, jobId, 3);
      await broker.ack([{ delivery: a!, result: resultFor(a!) }]);
      await broker.nack([{ delivery: b!, kind: "failed", reason: "x", workerId: "w" }]);
      await broker.nack([{ delivery: c!, kind: "released", reason: "stop", workerId: "w" }]);
      // A heartbeat that crossed its own commits on the way.
      assert.deepEqual(await broker.extend([a!, b!]), ["gone", "gone"]);
      assert.equal((await broker.stats(jobId)).zombies, 0, "a settled chunk counted as a zombie");
    },
  );

  test(
    "zombie",
    "a consumer whose lease was taken over cannot ack, nack or extend (fencing)",
    async ({ setup, jobId }) => {
      const zombie = await setup.open({ consumerId: "zombie", leaseMs: 500 });
      const live = await setup.open({ consumerId: "live", leaseMs: 500 });
      await zombie.publish(makeTasks(jobId, 1));
      const [old] = await pullAll(zombie, jobId, 1);
      const [fresh] = await pullAll(live, jobId, 1, { reclaim: true, timeoutMs: 10_000 });
      assert.ok(fresh!.epoch > old!.epoch);
      assert.deepEqual(await zombie.extend([old!]), ["zombie"]);
      assert.deepEqual(await live.ack([{ delivery: fresh!, result: resultFor(fresh!, "live") }]), [
        "stored",
      ]);
      assert.deepEqual(await zombie.ack([{ delivery: old!, result: resultFor(old!, "zombie") }]), [
        "zombie",
      ]);
      assert.deepEqual(
        await zombie.nack([{ delivery: old!, kind: "failed", reason: "late", workerId: "zombie" }]),
        ["zombie"],
      );
      const results = await allResults(live, jobId);
      assert.equal(results.length, 1);
      assert.equal(results[0]!.workerId, "live");
      const stats = await live.stats(jobId);
      assert.equal(stats.zombies, 3);
      assert.equal(stats.duplicates, 0);
      assert.equal(stats.deadLettered + stats.delayed + stats.ready, 0);
    },
  );

  test(
    "restart",
    "the broker server killed and restarted mid-job: consumers carry on, nothing lost or doubled",
    async ({ setup, jobId }) => {
      const options = { leaseMs: 800 };
      const a = await setup.open({ ...options, consumerId: "a" });
      const b = await setup.open({ ...options, consumerId: "b" });
      await a.publish(makeTasks(jobId, 30));
      const first = await pullAll(a, jobId, 10, { max: 10 });
      await a.ack(first.map((d) => ({ delivery: d, result: resultFor(d, "a") })));
      const held = await pullAll(b, jobId, 5, { max: 5 }); // in flight when the server dies
      await setup.restart!();
      const done = new Set(first.map((d) => d.task.chunkId));
      const deadline = Date.now() + 60_000;
      let stale = held;
      while (done.size < 30) {
        assert.ok(
          Date.now() < deadline,
          `only ${done.size} of 30 chunks completed after a restart`,
        );
        try {
          if (stale.length) {
            await b.ack(stale.map((d) => ({ delivery: d, result: resultFor(d, "b") })));
            stale = [];
          }
          if (a.capabilities.leases === "extend") await a.reclaim({ jobId });
          const batch: Delivery[] = await a.pull({ jobId, max: 10, waitMs: 200 });
          const outcomes = await a.ack(
            batch.map((d) => ({ delivery: d, result: resultFor(d, "a") })),
          );
          batch.forEach((d, i) => outcomes[i] !== "zombie" && done.add(d.task.chunkId));
          for (const r of await allResults(a, jobId)) done.add(r.chunkId);
        } catch (error) {
          // The server is coming back: the calls fail until the broker has reconnected.
          assert.match(String((error as Error).message), /Cannot /);
          await sleep(200);
        }
      }
      await eventually(async () => {
        const results = await allResults(a, jobId);
        assert.equal(new Set(results.map((r) => r.chunkId)).size, 30);
        assert.equal(results.length, 30, "a chunk was counted twice");
        const stats = await a.stats(jobId);
        assert.equal(stats.completed, 30);
        assertAccounted(stats, 30);
      }, 20_000);
    },
    { restart: true },
  );
}
