/**
 * The broker conformance suite: one set of cases, run against every broker module through a tiny
 * factory. A broker's test file is a few lines:
 *
 * ```ts
 * runBrokerConformance({ name: "sqlite", setup: async () => ({ open, cleanup }) });
 * ```
 *
 * A case a broker cannot pass states its reason in `skip`, and the reason is printed.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type Broker,
  type BrokerOptions,
  type ChunkResult,
  type ChunkTask,
  type DeadLetter,
  type Delivery,
  formatChunkId,
} from "../brokers/contract.ts";
import { BrokerError } from "../brokers/errors.ts";

/** A fresh, isolated broker store for one test case. */
export interface ConformanceSetup {
  /** Opens a broker on the case's store; each call is a new consumer (connection, handle). */
  open(options?: Partial<BrokerOptions>): Promise<Broker>;
  /**
   * Writes `raw` to the job's task queue exactly as a foreign producer would, bypassing
   * validation, so the malformed-message case can run.
   */
  injectRaw?(jobId: string, raw: string): Promise<void>;
  /** Removes everything the case created. */
  cleanup(): Promise<void>;
}

/** The names of the suite's cases, for `skip`. */
export type ConformanceCase =
  | "roundtrip"
  | "batch"
  | "emptyPull"
  | "ack"
  | "duplicate"
  | "retry"
  | "poison"
  | "unrecoverable"
  | "release"
  | "reclaim"
  | "expired"
  | "extend"
  | "zombie"
  | "priority"
  | "aging"
  | "jobs"
  | "split"
  | "createJob"
  | "deadLetters"
  | "malformed"
  | "closed"
  | "validation";

/** Options of {@linkcode runBrokerConformance}. */
export interface ConformanceOptions {
  /** Broker name, used in test names. */
  readonly name: string;
  /** Makes a fresh store for one case. */
  setup(): Promise<ConformanceSetup>;
  /** Cases to skip, each with its reason. */
  readonly skip?: Partial<Record<ConformanceCase, string>>;
  /** Deno's op and resource sanitizers. @default true */
  readonly sanitize?: boolean;
  /** Ignore the whole suite (e.g. the server is not reachable), with this reason. */
  readonly ignoreReason?: string;
}

let jobCounter = 0;

function newJobId(): string {
  jobCounter += 1;
  return `conf-${Date.now().toString(36)}-${jobCounter}-${crypto.randomUUID().slice(0, 6)}`;
}

/** Makes `count` chunks of `size` parameters for a job. */
export function makeTasks(
  jobId: string,
  count: number,
  overrides: Partial<ChunkTask> = {},
  size = 10,
): ChunkTask[] {
  const createdAt = new Date().toISOString();
  return Array.from({ length: count }, (_, i) => ({
    jobId,
    chunkId: formatChunkId(i),
    handler: "ttg.sweep",
    start: i * size,
    end: (i + 1) * size,
    totalParams: count * size,
    totalChunks: count,
    priority: 0,
    createdAt,
    args: { work_ms: 0 },
    divisible: true,
    ...overrides,
  }));
}

function resultFor(delivery: Delivery, workerId = "w-test"): ChunkResult {
  const params = delivery.task.end - delivery.task.start;
  return {
    value: { sum: delivery.task.start, count: params },
    params,
    workerId,
    durationMs: 1,
    completedAt: new Date().toISOString(),
  };
}

/** Pulls until `count` deliveries arrived or `timeoutMs` passed. */
async function pullAll(
  broker: Broker,
  jobId: string,
  count: number,
  timeoutMs = 10_000,
): Promise<Delivery[]> {
  const out: Delivery[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < deadline) {
    out.push(...await broker.pull({ jobId, max: count - out.length, waitMs: 200 }));
  }
  return out;
}

/** Retries `check` until it passes or `timeoutMs` passed; rethrows its last failure. */
async function eventually(check: () => Promise<void>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Registers the conformance cases for one broker with `Deno.test`.
 *
 * @example
 * ```ts ignore
 * import { runBrokerConformance } from "./conformance.ts";
 * import { openSqliteBroker } from "../brokers/sqlite.ts";
 * runBrokerConformance({
 *   name: "sqlite",
 *   setup: async () => {
 *     const path = await Deno.makeTempFile({ suffix: ".db" });
 *     return { open: (o) => openSqliteBroker({ path, ...o }), cleanup: () => Deno.remove(path) };
 *   },
 * });
 * ```
 */
export function runBrokerConformance(options: ConformanceOptions): void {
  const sanitize = options.sanitize ?? true;

  function test(
    name: ConformanceCase,
    title: string,
    fn: (ctx: { setup: ConformanceSetup; jobId: string; brokers: Broker[] }) => Promise<void>,
  ): void {
    const skipReason = options.ignoreReason ?? options.skip?.[name];
    Deno.test({
      name: `${options.name}: ${title}${skipReason ? ` (skipped: ${skipReason})` : ""}`,
      ignore: skipReason !== undefined,
      sanitizeOps: sanitize,
      sanitizeResources: sanitize,
      async fn() {
        const setup = await options.setup();
        const brokers: Broker[] = [];
        const tracked: ConformanceSetup = {
          ...setup,
          async open(o) {
            const broker = await setup.open(o);
            brokers.push(broker);
            return broker;
          },
        };
        const jobId = newJobId();
        try {
          await fn({ setup: tracked, jobId, brokers });
        } finally {
          const cleaner = await setup.open().catch(() => undefined);
          await cleaner?.reset(jobId).catch(() => undefined);
          await cleaner?.close().catch(() => undefined);
          for (const broker of brokers) await broker.close().catch(() => undefined);
          await setup.cleanup();
        }
      },
    });
  }

  test(
    "roundtrip",
    "pull() returns a published task whole, with attempt 1 and a lease epoch",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const [task] = makeTasks(jobId, 1, { priority: 3, args: { work_ms: 5, note: "x" } });
      await broker.publish([task!]);
      const [delivery, ...rest] = await pullAll(broker, jobId, 1);
      assert.equal(rest.length, 0);
      assert.ok(delivery, "expected one delivery");
      assert.deepEqual(delivery.task, task);
      assert.equal(delivery.attempt, 1);
      assert.ok(delivery.epoch >= 1, `epoch ${delivery.epoch} should be at least 1`);
      assert.equal(delivery.maxAttempts, broker.options.retry.maxAttempts);
      assert.deepEqual(delivery.history, []);
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
      while ([...seen.values()].reduce((x, y) => x + y, 0) < 250 && Date.now() < deadline) {
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
    "an empty pull() waits about waitMs, returns [], and ends early on abort",
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
      // A task published while a consumer waits is delivered to it.
      const waiting = broker.pull({ jobId, max: 1, waitMs: 5000 });
      await sleep(100);
      const other = await setup.open({ consumerId: "producer" });
      await other.publish(makeTasks(jobId, 1));
      const got = await waiting;
      const late = got.length ? got : await pullAll(broker, jobId, 1);
      assert.equal(late.length, 1);
    },
  );

  test(
    "ack",
    "ack() stores the result once and results()/stats() report it",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      await broker.publish(makeTasks(jobId, 3));
      const deliveries = await pullAll(broker, jobId, 3);
      assert.equal(deliveries.length, 3);
      const outcomes = await broker.ack(
        deliveries.map((d) => ({ delivery: d, result: resultFor(d, "w1") })),
      );
      assert.deepEqual(outcomes, ["stored", "stored", "stored"]);
      const results = await broker.results(jobId);
      assert.deepEqual(results.map((r) => r.chunkId).sort(), ["00000", "00001", "00002"]);
      const first = results.find((r) => r.chunkId === "00001")!;
      assert.deepEqual(first.value, { sum: 10, count: 10 });
      assert.equal(first.params, 10);
      assert.equal(first.workerId, "w1");
      const stats = await broker.stats(jobId);
      assert.equal(stats.completed, 3);
      assert.equal(stats.ready, 0);
      assert.equal(stats.inFlight, 0);
      assert.equal(stats.duplicates, 0);
      assert.ok(stats.consumers >= 1, `consumers ${stats.consumers}`);
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
      assert.equal(deliveries.length, 2);
      const first = await broker.ack([{
        delivery: deliveries[0]!,
        result: resultFor(deliveries[0]!, "w1"),
      }]);
      const second = await broker.ack([{
        delivery: deliveries[1]!,
        result: resultFor(deliveries[1]!, "w2"),
      }]);
      assert.deepEqual([...first, ...second], ["stored", "duplicate"]);
      const results = await broker.results(jobId);
      assert.equal(results.length, 1);
      assert.equal(results[0]!.workerId, "w1");
      const stats = await broker.stats(jobId);
      assert.equal(stats.completed, 1);
      assert.equal(stats.duplicates, 1);
    },
  );

  test(
    "retry",
    "nack() retries after the backoff with the next attempt and the failure in history",
    async ({ setup, jobId }) => {
      const broker = await setup.open({
        retry: { maxAttempts: 4, baseDelayMs: 600, factor: 2, maxDelayMs: 10_000 },
      });
      await broker.publish(makeTasks(jobId, 1));
      const [d1] = await pullAll(broker, jobId, 1);
      const [outcome] = await broker.nack([{
        delivery: d1!,
        kind: "timeout",
        reason: "took too long",
        workerId: "w1",
      }]);
      assert.equal(outcome, "retrying");
      const stats = await broker.stats(jobId);
      assert.equal(stats.delayed, 1, "a retrying chunk counts as delayed");
      assert.equal(stats.retried, 1);
      assert.deepEqual(
        await broker.pull({ jobId, max: 1, waitMs: 0 }),
        [],
        "retried before its backoff",
      );
      const [d2] = await pullAll(broker, jobId, 1);
      assert.ok(d2, "the chunk came back after its backoff");
      assert.equal(d2.attempt, 2);
      assert.ok(d2.epoch > d1!.epoch, `epoch ${d2.epoch} should exceed ${d1!.epoch}`);
      assert.equal(d2.history.length, 1);
      assert.equal(d2.history[0]!.kind, "timeout");
      assert.equal(d2.history[0]!.reason, "took too long");
      assert.equal(d2.history[0]!.attempt, 1);
    },
  );

  test(
    "poison",
    "a chunk that fails every attempt is dead-lettered with its reason and history",
    async ({ setup, jobId }) => {
      const broker = await setup.open({
        retry: { maxAttempts: 3, baseDelayMs: 50, factor: 1, maxDelayMs: 50 },
      });
      await broker.publish(makeTasks(jobId, 1));
      const outcomes = [];
      for (let i = 1; i <= 3; i++) {
        const [d] = await pullAll(broker, jobId, 1);
        assert.ok(d, `attempt ${i} was not delivered`);
        assert.equal(d.attempt, i);
        outcomes.push(
          ...await broker.nack([{
            delivery: d,
            kind: "failed",
            reason: `boom ${i}`,
            workerId: "w1",
          }]),
        );
      }
      assert.deepEqual(outcomes, ["retrying", "retrying", "dead_lettered"]);
      assert.deepEqual(await broker.pull({ jobId, max: 1, waitMs: 300 }), []);
      const letters = await broker.deadLetters.list(jobId);
      assert.equal(letters.length, 1);
      const [letter] = letters;
      assert.equal(letter!.task?.chunkId, "00000");
      assert.equal(letter!.reason, "boom 3");
      assert.equal(letter!.kind, "failed");
      assert.equal(letter!.attempts, 3);
      assert.deepEqual(letter!.history.map((h) => h.reason), ["boom 1", "boom 2", "boom 3"]);
      const stats = await broker.stats(jobId);
      assert.equal(stats.deadLettered, 1);
      assert.equal(stats.ready + stats.inFlight + stats.delayed, 0);
    },
  );

  test("unrecoverable", "an unrecoverable nack dead-letters at once", async ({ setup, jobId }) => {
    const broker = await setup.open();
    await broker.publish(makeTasks(jobId, 1));
    const [d] = await pullAll(broker, jobId, 1);
    const [outcome] = await broker.nack([{
      delivery: d!,
      kind: "unrecoverable",
      reason: 'Unknown handler "x"',
      workerId: "w1",
    }]);
    assert.equal(outcome, "dead_lettered");
    const [letter] = await broker.deadLetters.list(jobId);
    assert.equal(letter?.kind, "unrecoverable");
    assert.equal(letter?.reason, 'Unknown handler "x"');
    assert.equal(letter?.attempts, 1);
    // A reason that is not well-formed UTF-16 (a lone surrogate, from a handler's message) is
    // stored all the same, with the other dead letter of the same call.
    await broker.publish(makeTasks(jobId, 3).slice(1));
    const more = await pullAll(broker, jobId, 2);
    const outcomes = await broker.nack(more.map((delivery, i) => ({
      delivery,
      kind: "unrecoverable" as const,
      reason: i === 0 ? "plain" : "broken \ud800 text",
      workerId: "w1",
    })));
    assert.deepEqual(outcomes, ["dead_lettered", "dead_lettered"]);
    const letters = await broker.deadLetters.list(jobId);
    assert.equal(letters.length, 3);
    assert.ok(letters.some((l) => l.reason.startsWith("broken ") && l.reason.endsWith(" text")));
    const stats = await broker.stats(jobId);
    assert.equal(stats.ready + stats.inFlight + stats.delayed, 0);
    assert.equal(stats.deadLettered, 3);
  });

  test(
    "release",
    "a released delivery is back at once without burning an attempt",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      await broker.publish(makeTasks(jobId, 1));
      const [d1] = await pullAll(broker, jobId, 1);
      const [outcome] = await broker.nack([{
        delivery: d1!,
        kind: "released",
        reason: "shutting down",
        workerId: "w1",
      }]);
      assert.equal(outcome, "released");
      const [d2] = await pullAll(broker, jobId, 1, 3000);
      assert.ok(d2, "a released chunk is pullable at once");
      assert.equal(d2.attempt, 1);
      assert.ok(d2.epoch > d1!.epoch);
      assert.equal((await broker.stats(jobId)).retried, 0);
    },
  );

  test(
    "reclaim",
    "a dead consumer's chunk comes back after its lease and is counted exactly once",
    async ({ setup, jobId }) => {
      const dead = await setup.open({ consumerId: "dead", leaseMs: 600 });
      const live = await setup.open({ consumerId: "live", leaseMs: 600 });
      await dead.publish(makeTasks(jobId, 2));
      const taken = await pullAll(dead, jobId, 2);
      assert.equal(taken.length, 2);
      await dead.close(); // dies holding both leases
      const deadline = Date.now() + 10_000;
      const recovered: Delivery[] = [];
      while (recovered.length < 2 && Date.now() < deadline) {
        await live.reclaim({ jobId });
        recovered.push(...await live.pull({ jobId, max: 2, waitMs: 200 }));
      }
      assert.equal(recovered.length, 2, "the dead consumer's chunks were not reclaimed");
      assert.ok(recovered.every((d) => d.attempt === 2), "a reclaimed chunk is a new attempt");
      assert.deepEqual(
        await live.ack(recovered.map((d) => ({ delivery: d, result: resultFor(d, "live") }))),
        ["stored", "stored"],
      );
      const results = await live.results(jobId);
      assert.equal(results.length, 2);
      assert.ok(results.every((r) => r.workerId === "live"));
      const stats = await live.stats(jobId);
      assert.equal(stats.completed, 2);
      if (!live.capabilities.connectionBoundLeases) assert.equal(stats.reclaimed, 2);
    },
  );

  test(
    "expired",
    "a chunk whose lease expires on its last attempt is dead-lettered as expired, not redone",
    async ({ setup, jobId }) => {
      const retry = { maxAttempts: 2, baseDelayMs: 1, factor: 1, maxDelayMs: 1 };
      const dead = await setup.open({ consumerId: "dead", leaseMs: 400, retry });
      const live = await setup.open({ consumerId: "live", leaseMs: 400, retry });
      await dead.publish(makeTasks(jobId, 1));
      const [first] = await pullAll(dead, jobId, 1);
      await dead.nack([{ delivery: first!, kind: "failed", reason: "boom", workerId: "dead" }]);
      const deadline = Date.now() + 10_000;
      const last: Delivery[] = [];
      while (last.length === 0 && Date.now() < deadline) {
        last.push(...await dead.pull({ jobId, max: 1, waitMs: 100 }));
      }
      assert.equal(last[0]?.attempt, 2);
      await dead.close(); // dies holding its last attempt
      let letters: DeadLetter[] = [];
      while (letters.length === 0 && Date.now() < deadline) {
        await live.reclaim({ jobId });
        assert.deepEqual(await live.pull({ jobId, max: 1, waitMs: 100 }), [], "redone");
        letters = await live.deadLetters.list(jobId);
      }
      assert.equal(letters.length, 1, "the chunk was not dead-lettered");
      assert.equal(letters[0]!.kind, "expired");
      assert.equal(letters[0]!.attempts, 2);
      assert.ok(letters[0]!.reason.length > 0, "no reason");
      assert.deepEqual(letters[0]!.history.map((h) => h.kind), ["failed", "expired"]);
      const stats = await live.stats(jobId);
      assert.equal(stats.ready + stats.inFlight + stats.delayed, 0);
      assert.equal(stats.deadLettered, 1);
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
        await other.reclaim({ jobId });
        assert.deepEqual(
          await other.pull({ jobId, max: 1, waitMs: 0 }),
          [],
          "a live lease was stolen",
        );
      }
      assert.deepEqual(await slow.ack([{ delivery: d!, result: resultFor(d!) }]), ["stored"]);
      assert.equal((await other.stats(jobId)).reclaimed, 0);
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
      let fresh: Delivery | undefined;
      const deadline = Date.now() + 10_000;
      while (!fresh && Date.now() < deadline) {
        await live.reclaim({ jobId });
        [fresh] = await live.pull({ jobId, max: 1, waitMs: 200 });
      }
      assert.ok(fresh, "the stalled consumer's chunk was not reclaimed");
      assert.ok(fresh.epoch > old!.epoch);
      assert.deepEqual(await zombie.extend([old!]), ["zombie"]);
      assert.deepEqual(await live.ack([{ delivery: fresh, result: resultFor(fresh, "live") }]), [
        "stored",
      ]);
      assert.deepEqual(await zombie.ack([{ delivery: old!, result: resultFor(old!, "zombie") }]), [
        "zombie",
      ]);
      assert.deepEqual(
        await zombie.nack([{ delivery: old!, kind: "failed", reason: "late", workerId: "zombie" }]),
        ["zombie"],
      );
      const results = await live.results(jobId);
      assert.equal(results.length, 1);
      assert.equal(results[0]!.workerId, "live");
      const stats = await live.stats(jobId);
      assert.equal(stats.zombies, 3);
      assert.equal(stats.duplicates, 0);
      assert.equal(stats.deadLettered + stats.delayed + stats.ready, 0);
    },
  );

  test("priority", "higher priority is pulled first", async ({ setup, jobId }) => {
    const broker = await setup.open();
    const tasks = [0, 5, 10, 3, 7].map((priority, i) => makeTasks(jobId, 5, { priority })[i]!);
    await broker.publish(tasks);
    await sleep(200);
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

  test(
    "jobs",
    "several jobs share one broker without seeing each other's chunks",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const otherJob = `${jobId}-b`;
      try {
        await broker.publish([...makeTasks(jobId, 3), ...makeTasks(otherJob, 2)]);
        const mine = await pullAll(broker, jobId, 5, 1500);
        assert.equal(mine.length, 3);
        assert.ok(mine.every((d) => d.task.jobId === jobId));
        await broker.ack(mine.map((d) => ({ delivery: d, result: resultFor(d) })));
        assert.equal((await broker.stats(jobId)).completed, 3);
        const other = await broker.stats(otherJob);
        assert.equal(other.completed, 0);
        assert.equal(other.ready, 2);
        assert.equal((await broker.results(otherJob)).length, 0);
        await broker.reset(jobId);
        assert.equal((await broker.results(jobId)).length, 0);
        assert.equal((await broker.stats(otherJob)).ready, 2, "reset() touched another job");
      } finally {
        await broker.reset(otherJob);
      }
    },
  );

  test(
    "split",
    "nack() with split replaces a chunk by its halves in one step",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const [task] = makeTasks(jobId, 1, {}, 100);
      await broker.publish([task!]);
      const [d] = await pullAll(broker, jobId, 1);
      const halves = [
        { ...task!, chunkId: "00000.0", start: 0, end: 50 },
        { ...task!, chunkId: "00000.1", start: 50, end: 100 },
      ];
      const [outcome] = await broker.nack([{
        delivery: d!,
        kind: "failed",
        reason: "boom",
        workerId: "w",
        split: halves,
      }]);
      assert.equal(outcome, "split");
      const parts = await pullAll(broker, jobId, 3, 2000);
      assert.deepEqual(parts.map((p) => p.task.chunkId).sort(), ["00000.0", "00000.1"]);
      assert.ok(parts.every((p) => p.attempt === 1));
      await broker.ack(parts.map((p) => ({ delivery: p, result: resultFor(p) })));
      const results = await broker.results(jobId);
      assert.deepEqual(results.map((r) => r.chunkId).sort(), ["00000.0", "00000.1"]);
      assert.equal((await broker.deadLetters.list(jobId)).length, 0);
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
    "deadLetters",
    "dead letters can be listed, replayed with fresh attempts and purged",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      await broker.publish(makeTasks(jobId, 2));
      const ds = await pullAll(broker, jobId, 2);
      await broker.nack(
        ds.map((d) => ({
          delivery: d,
          kind: "unrecoverable" as const,
          reason: "bad",
          workerId: "w",
        })),
      );
      const letters = await broker.deadLetters.list(jobId);
      assert.equal(letters.length, 2);
      const replayId = letters.find((l) => l.task?.chunkId === "00000")!.id;
      assert.equal(await broker.deadLetters.replay({ jobId, ids: [replayId] }), 1);
      const [again] = await pullAll(broker, jobId, 1);
      assert.equal(again?.task.chunkId, "00000");
      assert.equal(again?.attempt, 1);
      assert.deepEqual(await broker.ack([{ delivery: again!, result: resultFor(again!) }]), [
        "stored",
      ]);
      const left = await broker.deadLetters.list(jobId);
      assert.deepEqual(left.map((l) => l.task?.chunkId), ["00001"]);
      assert.equal(await broker.deadLetters.purge({ jobId }), 1);
      assert.equal((await broker.deadLetters.list(jobId)).length, 0);
      const stats = await broker.stats(jobId);
      assert.equal(stats.deadLettered, 0);
      assert.equal(stats.completed, 1);
    },
  );

  test(
    "malformed",
    "a malformed message is dead-lettered with its reason and does not block the queue",
    async ({ setup, jobId }) => {
      if (!setup.injectRaw) throw new Error("setup.injectRaw is required for the malformed case");
      const broker = await setup.open();
      await setup.injectRaw(jobId, "{not json");
      await setup.injectRaw(jobId, JSON.stringify({ jobId, chunkId: "00009" }));
      await broker.publish(makeTasks(jobId, 1));
      const got = await pullAll(broker, jobId, 1);
      assert.equal(got.length, 1);
      assert.equal(got[0]!.task.chunkId, "00000");
      await eventually(async () => {
        const letters = await broker.deadLetters.list(jobId);
        assert.equal(letters.length, 2);
        assert.ok(letters.every((l) => l.kind === "malformed" && l.reason.length > 0));
        assert.ok(letters.some((l) => l.raw === "{not json"));
      }, 5000);
    },
  );

  test("closed", "calls on a closed broker fail with code CLOSED", async ({ setup, jobId }) => {
    const broker = await setup.open();
    await broker.close();
    await assert.rejects(
      () => broker.pull({ jobId, max: 1, waitMs: 0 }),
      (e: unknown) => e instanceof BrokerError && e.code === "CLOSED",
    );
    await broker.close(); // twice is safe
  });

  test(
    "validation",
    "publish() rejects an invalid task with a TypeError naming the field",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const [task] = makeTasks(jobId, 1, { priority: 11 });
      await assert.rejects(
        () => broker.publish([task!]),
        (e: unknown) => e instanceof TypeError && /priority/.test(String(e)),
      );
      const [bad] = makeTasks(jobId, 1, { start: 10, end: 5 });
      await assert.rejects(() => broker.publish([bad!]), TypeError);
      assert.equal((await broker.stats(jobId)).ready, 0);
    },
  );
}
