/**
 * Conformance cases: publishing, pulling, acking, job records, and the checks every call makes
 * (closed broker, invalid job ids, invalid options), with the same error on every broker.
 *
 * @module
 */
import { allResults } from "../../brokers/results.ts";
import assert from "node:assert/strict";
import type { Broker } from "../../brokers/broker.ts";
import { BrokerError } from "../../errors.ts";
import { type CaseRegistry, eventually, makeTasks, pullAll, resultFor, sleep } from "./support.ts";

/** Every method of the contract, called with a given job id (and harmless other arguments). */
function everyCall(broker: Broker, jobId: string): [string, () => Promise<unknown>][] {
  const [task] = makeTasks(jobId, 1);
  const delivery = {
    task: task!,
    attempt: 1,
    maxAttempts: 4,
    crashes: 0,
    epoch: 1,
    receipt: "1",
    history: [],
  };
  const record = {
    jobId,
    handler: "ttg.sweep",
    totalParams: 10,
    totalChunks: 1,
    chunkSize: 10,
    createdAt: new Date().toISOString(),
    args: {},
  };
  return [
    ["createJob", () => broker.createJob(record)],
    ["getJob", () => broker.getJob(jobId)],
    ["publish", () => broker.publish([task!])],
    ["pull", () => broker.pull({ jobId, max: 1, waitMs: 0 })],
    ["ack", () => broker.ack([{ delivery, result: resultFor(delivery) }])],
    ["nack", () => broker.nack([{ delivery, kind: "failed", reason: "x", workerId: "w" }])],
    ["extend", () => broker.extend([delivery])],
    ["stats", () => broker.stats(jobId)],
    ["results", () => broker.results(jobId)],
    ["deadLetters.list", () => broker.deadLetters.list(jobId)],
    ["deadLetters.replay", () => broker.deadLetters.replay({ jobId })],
    ["deadLetters.purge", () => broker.deadLetters.purge({ jobId })],
    ["reset", () => broker.reset(jobId)],
  ];
}

/** Registers the basic cases. */
export function basicCases(test: CaseRegistry): void {
  test(
    "roundtrip",
    "pull() returns a published task whole, with attempt 1, no crash and a lease epoch",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const [task] = makeTasks(jobId, 1, { priority: 3, args: { work_ms: 5, note: "x" } });
      await broker.publish([task!]);
      const [delivery, ...rest] = await pullAll(broker, jobId, 1);
      assert.equal(rest.length, 0);
      assert.deepEqual(delivery!.task, task);
      assert.equal(delivery!.attempt, 1);
      assert.equal(delivery!.crashes, 0);
      assert.ok(delivery!.epoch >= 1, `epoch ${delivery!.epoch} should be at least 1`);
      assert.equal(delivery!.maxAttempts, broker.options.retry.maxAttempts);
      assert.deepEqual(delivery!.history, []);
    },
  );

  test(
    "batch",
    "pull() hands out each of 250 published chunks exactly once, at most max at a time",
    async ({ setup, jobId }) => {
      const a = await setup.open({ consumerId: "a" });
      const b = await setup.open({ consumerId: "b" });
      await a.publish(makeTasks(jobId, 250));
      const seen = new Map<string, number>();
      const deadline = Date.now() + 15_000;
      while ([...seen.values()].reduce((x, y) => x + y, 0) < 250) {
        assert.ok(Date.now() < deadline, `only ${seen.size} of 250 chunks delivered in time`);
        for (const broker of [a, b]) {
          const batch = await broker.pull({ jobId, max: 40, waitMs: 100 });
          assert.ok(batch.length <= 40, `pull returned ${batch.length} > max 40`);
          for (const d of batch) seen.set(d.task.chunkId, (seen.get(d.task.chunkId) ?? 0) + 1);
          if (batch.length) {
            const outcomes = await broker.ack(
              batch.map((d) => ({ delivery: d, result: resultFor(d) })),
            );
            assert.ok(outcomes.every((o) => o === "stored"), `outcomes ${outcomes}`);
          }
        }
      }
      assert.equal(seen.size, 250);
      assert.ok([...seen.values()].every((n) => n === 1), "a chunk was delivered twice");
      const stats = await a.stats(jobId);
      assert.equal(stats.completed, 250);
      assert.equal(stats.ready + stats.inFlight + stats.delayed, 0);
    },
  );

  test(
    "emptyPull",
    "an empty pull() waits about waitMs, ends early on abort, and takes a task published meanwhile",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      let t0 = performance.now();
      assert.deepEqual(await broker.pull({ jobId, max: 5, waitMs: 400 }), []);
      const waited = performance.now() - t0;
      assert.ok(waited >= 300, `returned after ${waited} ms, before its 400 ms timeout`);
      assert.ok(waited < 5000, `returned after ${waited} ms, far past its 400 ms timeout`);
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      t0 = performance.now();
      assert.deepEqual(
        await broker.pull({ jobId, max: 5, waitMs: 10_000, signal: controller.signal }),
        [],
      );
      assert.ok(performance.now() - t0 < 5000, "abort did not end the wait");
      const waiting = broker.pull({ jobId, max: 1, waitMs: 8000 });
      await sleep(200);
      const other = await setup.open({ consumerId: "producer" });
      await other.publish(makeTasks(jobId, 1));
      const got = await waiting;
      assert.equal(got.length, 1, "the waiting pull did not get the task published meanwhile");
      assert.equal(got[0]!.task.chunkId, "00000");
    },
  );

  test(
    "ack",
    "ack() stores the result once and results()/stats() report it",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      await broker.publish(makeTasks(jobId, 3));
      const deliveries = await pullAll(broker, jobId, 3);
      const outcomes = await broker.ack(
        deliveries.map((d) => ({ delivery: d, result: resultFor(d, "w1") })),
      );
      assert.deepEqual(outcomes, ["stored", "stored", "stored"]);
      const results = await allResults(broker, jobId);
      assert.deepEqual(results.map((r) => r.chunkId).sort(), ["00000", "00001", "00002"]);
      const first = results.find((r) => r.chunkId === "00001")!;
      assert.deepEqual(first.value, { sum: 10, count: 10 });
      assert.equal(first.params, 10);
      assert.equal(first.workerId, "w1");
      const stats = await broker.stats(jobId);
      assert.equal(stats.completed, 3);
      assert.equal(stats.completedParams, 30);
      assert.equal(stats.ready, 0);
      assert.equal(stats.inFlight, 0);
      assert.equal(stats.duplicates, 0);
      assert.equal(stats.zombies, 0);
      assert.equal(stats.consumers, 1, "the one live consumer");
    },
  );

  test(
    "consumers",
    "stats().consumers counts the consumers alive now: one that closes drops out",
    async ({ setup, jobId }) => {
      const a = await setup.open({ consumerId: "a" });
      const b = await setup.open({ consumerId: "b" });
      await a.publish(makeTasks(jobId, 2));
      for (const broker of [a, b]) {
        const [d] = await broker.pull({ jobId, max: 1, waitMs: 2000 });
        await broker.ack([{ delivery: d!, result: resultFor(d!) }]);
      }
      // A consumer is one that pulls: `a` keeps pulling (an empty queue) while it is counted.
      const counted = (n: number) => async () => {
        await a.pull({ jobId, max: 1, waitMs: 0 });
        assert.equal((await a.stats(jobId)).consumers, n);
      };
      await eventually(counted(2), 5000);
      await b.close();
      await eventually(counted(1), 10_000);
    },
  );

  test(
    "duplicate",
    "a second result for the same chunk is discarded and counted as a duplicate",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const [task] = makeTasks(jobId, 1);
      await broker.publish([task!]);
      await broker.publish([task!]); // the same chunk enqueued twice (a re-run submit, a redelivery)
      const deliveries = await pullAll(broker, jobId, 2);
      const first = await broker.ack([{
        delivery: deliveries[0]!,
        result: resultFor(deliveries[0]!, "w1"),
      }]);
      const second = await broker.ack([{
        delivery: deliveries[1]!,
        result: resultFor(deliveries[1]!, "w2"),
      }]);
      assert.deepEqual([...first, ...second], ["stored", "duplicate"]);
      const results = await allResults(broker, jobId);
      assert.equal(results.length, 1);
      assert.equal(results[0]!.workerId, "w1");
      const stats = await broker.stats(jobId);
      assert.equal(stats.completed, 1);
      assert.equal(stats.duplicates, 1);
    },
  );

  test(
    "batchDuplicate",
    "one ack batch holding two deliveries of a chunk stores one and counts one duplicate",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const [task] = makeTasks(jobId, 1);
      await broker.publish([task!, task!]);
      const deliveries = await pullAll(broker, jobId, 2);
      const outcomes = await broker.ack(deliveries.map((delivery, i) => ({
        delivery,
        result: { ...resultFor(delivery, `w${i}`), value: i },
      })));
      assert.deepEqual(outcomes, ["stored", "duplicate"]);
      const results = await allResults(broker, jobId);
      assert.deepEqual(results.map((r) => [r.value, r.workerId]), [[0, "w0"]]);
      const stats = await broker.stats(jobId);
      assert.equal(stats.completed, 1);
      assert.equal(stats.duplicates, 1);
    },
  );

  test(
    "jobs",
    "several jobs share one broker without seeing each other's chunks",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const otherJob = `${jobId}-b`;
      await broker.publish([...makeTasks(jobId, 3), ...makeTasks(otherJob, 2)]);
      const mine = await pullAll(broker, jobId, 3);
      assert.deepEqual(await broker.pull({ jobId, max: 5, waitMs: 300 }), []);
      assert.ok(mine.every((d) => d.task.jobId === jobId));
      await broker.ack(mine.map((d) => ({ delivery: d, result: resultFor(d) })));
      assert.equal((await broker.stats(jobId)).completed, 3);
      const other = await broker.stats(otherJob);
      assert.equal(other.completed, 0);
      assert.equal(other.ready, 2);
      assert.equal((await allResults(broker, otherJob)).length, 0);
      await broker.reset(jobId);
      assert.equal((await allResults(broker, jobId)).length, 0);
      assert.equal((await broker.stats(otherJob)).ready, 2, "reset() touched another job");
    },
  );

  test(
    "reset",
    "reset() deletes every trace of the job from the store, and nothing of another job",
    async ({ setup, jobId }) => {
      const broker = await setup.open({ retry: { maxAttempts: 1 } });
      const otherJob = `${jobId}-b`;
      await broker.createJob({
        jobId,
        handler: "ttg.sweep",
        totalParams: 40,
        totalChunks: 4,
        chunkSize: 10,
        createdAt: new Date().toISOString(),
        args: {},
      });
      await broker.publish([
        ...makeTasks(jobId, 4, { divisible: false }),
        ...makeTasks(otherJob, 1),
      ]);
      await setup.injectRaw(jobId, "{not json");
      const [a, b, c] = await pullAll(broker, jobId, 3);
      await broker.ack([{ delivery: a!, result: resultFor(a!) }]);
      await broker.nack([{ delivery: b!, kind: "failed", reason: "boom", workerId: "w" }]);
      await broker.extend([c!]);
      await broker.stats(jobId);
      assert.notDeepEqual(await setup.traces(jobId), [], "the job left no trace to delete");
      await broker.reset(jobId);
      assert.deepEqual(await setup.traces(jobId), [], "reset() left part of the job behind");
      assert.notDeepEqual(await setup.traces(otherJob), [], "reset() deleted another job");
      const stats = await broker.stats(jobId);
      assert.equal(stats.ready + stats.inFlight + stats.completed + stats.deadLettered, 0);
    },
  );

  test(
    "createJob",
    "createJob() records a job once, so a repeated submit can tell",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const record = {
        jobId,
        handler: "ttg.sweep",
        totalParams: 1000,
        totalChunks: 10,
        chunkSize: 100,
        createdAt: new Date().toISOString(),
        args: { work_ms: 0 },
      };
      assert.equal(await broker.getJob(jobId), null);
      assert.equal(await broker.createJob(record), true);
      assert.equal(await broker.createJob(record), false);
      assert.deepEqual(await broker.getJob(jobId), record);
    },
  );

  test(
    "validation",
    "publish() rejects an invalid task with a TypeError naming the field, and enqueues nothing",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const [task] = makeTasks(jobId, 1, { priority: 11 });
      await assert.rejects(
        () => broker.publish([task!]),
        (e: unknown) => e instanceof TypeError && /priority/.test(String(e)),
      );
      const [bad] = makeTasks(jobId, 1, { start: 10, end: 5 });
      await assert.rejects(() => broker.publish([bad!]), TypeError);
      const good = makeTasks(jobId, 1);
      await assert.rejects(() => broker.publish([...good, bad!]), TypeError);
      assert.equal((await broker.stats(jobId)).ready, 0);
    },
  );

  test(
    "pullValidation",
    "invalid pull, reclaim and list options are a RangeError naming the option, on every broker",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      for (const max of [0, -1, 1.5, Number.NaN]) {
        await assert.rejects(() => broker.pull({ jobId, max, waitMs: 0 }), {
          name: "RangeError",
          message: `Invalid max "${max}": expected a whole number from 1`,
        });
      }
      for (const waitMs of [-1, Number.NaN, Infinity]) {
        await assert.rejects(() => broker.pull({ jobId, max: 1, waitMs }), {
          name: "RangeError",
          message: `Invalid waitMs "${waitMs}": expected 0 or more milliseconds`,
        });
      }
      await assert.rejects(() => broker.reclaim({ jobId, max: 0 }), {
        name: "RangeError",
        message: 'Invalid max "0": expected a whole number from 1',
      });
      await assert.rejects(() => broker.deadLetters.list(jobId, { limit: -1 }), {
        name: "RangeError",
        message: 'Invalid limit "-1": expected a whole number from 0',
      });
      await assert.rejects(() => broker.deadLetters.replay({ jobId, ids: ["not an id"] }), {
        name: "TypeError",
        message: /^Invalid dead-letter id "not an id": expected an id listed by ttg dlq list/,
      });
    },
  );

  test(
    "jobIdValidation",
    "an invalid job id is the same TypeError on every method",
    async ({ setup }) => {
      const broker = await setup.open();
      for (const bad of ["", "a:b", "x".repeat(64), " spaced"]) {
        for (const [method, call] of everyCall(broker, bad)) {
          await assert.rejects(call, {
            name: "TypeError",
            message: `Invalid job id "${bad}": expected 1 to 63 letters, digits, ".", "_" or "-"`,
          }, `${method}("${bad}")`);
        }
      }
    },
  );

  test(
    "closed",
    "every method of a closed broker fails with code CLOSED and one wording; close() twice is safe",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      await broker.close();
      const calls = [...everyCall(broker, jobId), ["reclaim", () => broker.reclaim({ jobId })]] as [
        string,
        () => Promise<unknown>,
      ][];
      for (const [method, call] of calls) {
        await assert.rejects(call, (e: unknown) => {
          assert.ok(e instanceof BrokerError, `${method}: ${e}`);
          assert.equal(e.code, "CLOSED", method);
          assert.match(e.message, /^Cannot .+: the (SQLite|Redis|RabbitMQ) broker is closed$/);
          return true;
        }, method);
      }
      await broker.close();
    },
  );

  test(
    "closeWhilePulling",
    "closing the broker ends a waiting pull with CLOSED",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const waiting = broker.pull({ jobId, max: 1, waitMs: 10_000 });
      waiting.catch(() => {}); // it may fail while close() is still under way
      await sleep(100);
      const t0 = performance.now();
      // Watched before close() resolves: a close that waits on the server (a QUIT, a channel
      // close) may end the pull first.
      const ended = assert.rejects(
        waiting,
        (e: unknown) => e instanceof BrokerError && e.code === "CLOSED",
      );
      await broker.close();
      await ended;
      assert.ok(performance.now() - t0 < 5000, "the waiting pull outlived close() by seconds");
    },
  );
}
