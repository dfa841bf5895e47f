import { allResults } from "../brokers/results.ts";
import assert from "node:assert/strict";
import type { Broker, PartialBrokerOptions } from "../brokers/broker.ts";
import { openBroker } from "../brokers/open.ts";
import { defineJob, type Job } from "../jobs/define_job.ts";
import { loadJob } from "../jobs/load.ts";
import { planSweep } from "../workers/plan.ts";
import { combineSweep, type SweepResult } from "../jobs/sweep.ts";
import { type ChunkExecutor, InlineExecutor } from "../workers/executor.ts";
import { silentLogger } from "../workers/log.ts";
import { ThreadPoolExecutor } from "../workers/thread_pool.ts";
import { submitPlan } from "../workers/run.ts";
import { TtgWorker, type WorkerBaseOptions } from "../workers/worker.ts";

interface Fixture {
  path: string;
  jobId: string;
  open(options?: PartialBrokerOptions): Promise<Broker>;
  [Symbol.asyncDispose](): Promise<void>;
}

async function setup(): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "ttg-worker-" });
  const path = `${dir}/ttg.db`;
  const opened: Broker[] = [];
  return {
    path,
    jobId: `w-${crypto.randomUUID().slice(0, 8)}`,
    async open(options = {}) {
      const broker = await openBroker({ backend: "sqlite", sqlitePath: path, ...options });
      opened.push(broker);
      return broker;
    },
    async [Symbol.asyncDispose]() {
      for (const b of opened) await b.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function worker(
  broker: Broker,
  jobId: string,
  job: Job,
  executor: ChunkExecutor,
  overrides: Partial<WorkerBaseOptions> = {},
): TtgWorker {
  return new TtgWorker({
    broker,
    jobId,
    workerId: broker.options.consumerId,
    job,
    executor,
    log: silentLogger,
    concurrency: 4,
    batch: 32,
    heartbeatMs: 100,
    idleTimeoutMs: 300,
    graceMs: 1000,
    chunkTimeoutMs: 10_000,
    pollMs: 100,
    ...overrides,
  });
}

Deno.test("a worker completes every chunk exactly once and exits when the job is drained", async () => {
  await using f = await setup();
  const broker = await f.open({ consumerId: "w1" });
  const { job } = await loadJob();
  const plan = planSweep({ jobId: f.jobId, params: 10_000, chunkSize: 100 });
  await broker.publish(plan.tasks);
  const report = await worker(broker, f.jobId, job, new InlineExecutor(job, silentLogger)).run(
    new AbortController().signal,
  );
  assert.equal(report.exitReason, "idle");
  assert.equal(report.chunks, 100);
  assert.equal(report.params, 10_000);
  const results = await allResults(broker, f.jobId);
  assert.equal(results.length, 100);
  const total = combineSweep(results.map((r) => r.value as SweepResult));
  assert.ok(Math.abs(total.sum - 5000355.0) < 1e-6, `sum ${total.sum}`);
});

Deno.test("on stop, a chunk that cannot finish within the grace period is released at once, never half-published", async () => {
  await using f = await setup();
  const broker = await f.open({ consumerId: "w1" });
  const { job } = await loadJob();
  // 10 parameters × 200 ms: each chunk takes 2 s, far past the 200 ms grace period.
  await broker.publish(
    planSweep({ jobId: f.jobId, params: 40, chunkSize: 10, args: { work_ms: 200 } }).tasks,
  );
  const stop = new AbortController();
  const w = worker(broker, f.jobId, job, new InlineExecutor(job, silentLogger), {
    graceMs: 200,
    idleTimeoutMs: 0,
  });
  const running = w.run(stop.signal);
  await new Promise((r) => setTimeout(r, 300));
  const t0 = performance.now();
  stop.abort();
  const report = await running;
  assert.ok(
    performance.now() - t0 < 3000,
    "shutdown waited for the chunks instead of releasing them",
  );
  assert.equal(report.chunks, 0);
  assert.equal(report.released, 4);
  assert.equal(
    (await allResults(broker, f.jobId)).length,
    0,
    "a stopped worker published a result",
  );
  const stats = await broker.stats(f.jobId);
  assert.equal(stats.ready, 4, "released chunks are ready again at once (no lease expiry wait)");
  const again = await broker.pull({ jobId: f.jobId, max: 4, waitMs: 0 });
  assert.ok(again.every((d) => d.attempt === 1), "a release burned an attempt");
});

Deno.test("a chunk past its timeout is nacked as timed out and dead-lettered after its attempts", async () => {
  await using f = await setup();
  const broker = await f.open({
    consumerId: "w1",
    retry: { maxAttempts: 2, baseDelayMs: 10, factor: 1, maxDelayMs: 10, minSplit: 10 },
  });
  const { job } = await loadJob();
  await broker.publish(
    planSweep({ jobId: f.jobId, params: 10, chunkSize: 10, args: { work_ms: 100 } }).tasks,
  );
  const report = await worker(broker, f.jobId, job, new InlineExecutor(job, silentLogger), {
    chunkTimeoutMs: 100, // minSplit 10: too small to bisect, dead-letter the chunk itself
  }).run(new AbortController().signal);
  assert.equal(report.retried, 1);
  assert.equal(report.deadLettered, 1);
  const [letter] = await broker.deadLetters.list(f.jobId);
  assert.equal(letter?.kind, "timeout");
  assert.match(letter?.reason ?? "", /timed out after 100 ms/);
  assert.deepEqual(letter?.history.map((h) => h.kind), ["timeout", "timeout"]);
});

Deno.test("a handler thread that loops forever is timed out and replaced; the worker serves every other chunk", async () => {
  await using f = await setup();
  const broker = await f.open({
    consumerId: "w1",
    retry: { maxAttempts: 2, baseDelayMs: 10, factor: 1, maxDelayMs: 10, minSplit: 10 },
  });
  const moduleUrl = new URL("./fixtures/forever_job.ts", import.meta.url).href;
  const { job } = await loadJob(moduleUrl);
  await broker.publish(
    planSweep({ jobId: f.jobId, handler: job.name, params: 100, chunkSize: 10 }).tasks,
  );
  await using pool = await ThreadPoolExecutor.create({
    moduleUrl,
    jobName: job.name,
    size: 2,
    log: silentLogger,
  });
  const report = await worker(broker, f.jobId, job, pool, {
    chunkTimeoutMs: 300, // minSplit 10: the whole chunk is the failing range
  }).run(AbortSignal.timeout(20_000));
  assert.equal(report.exitReason, "idle");
  assert.equal(report.chunks, 9, "the other chunks were not all served");
  assert.equal(report.retried, 1);
  assert.equal(report.deadLettered, 1);
  assert.equal(pool.threadsReplaced, 2, "each timed-out attempt replaces its thread");
  const [letter] = await broker.deadLetters.list(f.jobId);
  assert.equal(letter?.task?.chunkId, "00000");
  assert.equal(letter?.kind, "timeout");
  assert.match(letter?.reason ?? "", /timed out after 300 ms \(handler thread replaced\)/);
});

Deno.test("a CPU-bound handler busy for 3× the lease completes exactly once, with no reclaim and no duplicate", async () => {
  await using f = await setup();
  const leaseMs = 600;
  const a = await f.open({ consumerId: "busy", leaseMs });
  const b = await f.open({ consumerId: "other", leaseMs });
  const moduleUrl = new URL("./fixtures/busy_job.ts", import.meta.url).href;
  const { job } = await loadJob(moduleUrl);
  const tasks = planSweep({
    jobId: f.jobId,
    handler: job.name,
    params: 10,
    chunkSize: 10,
    args: { busy_ms: 3 * leaseMs },
  }).tasks;
  await a.publish(tasks);
  await using poolA = await ThreadPoolExecutor.create({
    moduleUrl,
    jobName: job.name,
    size: 1,
    log: silentLogger,
  });
  await using poolB = await ThreadPoolExecutor.create({
    moduleUrl,
    jobName: job.name,
    size: 1,
    log: silentLogger,
  });
  const stop = new AbortController();
  const t0 = performance.now();
  const first = worker(a, f.jobId, job, poolA, { idleTimeoutMs: 0, heartbeatMs: 150 }).run(
    stop.signal,
  );
  await new Promise((r) => setTimeout(r, 200)); // a holds the chunk
  const second = worker(b, f.jobId, job, poolB, { idleTimeoutMs: 0, heartbeatMs: 150 }).run(
    stop.signal,
  );
  const deadline = Date.now() + 15_000;
  while ((await a.stats(f.jobId)).completed < 1 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  stop.abort();
  const [ra, rb] = await Promise.all([first, second]);
  assert.ok(performance.now() - t0 >= 3 * leaseMs, "the handler did not stay busy for 3 leases");
  const stats = await a.stats(f.jobId);
  assert.equal(stats.completed, 1);
  assert.equal(stats.reclaimed, 0, "a live CPU-bound chunk was reclaimed");
  assert.equal(stats.duplicates, 0);
  assert.equal(stats.zombies, 0);
  assert.equal(ra.chunks + rb.chunks, 1);
  assert.equal(ra.chunks, 1, "the chunk was taken away from the busy worker");
});

Deno.test("poison-chunk bisection dead-letters exactly the failing parameters and counts all the others", async () => {
  await using f = await setup();
  const broker = await f.open({
    consumerId: "w1",
    retry: { maxAttempts: 2, baseDelayMs: 1, factor: 1, maxDelayMs: 1 },
  });
  const { job } = await loadJob("tests/fixtures/poison_job.ts");
  await broker.publish(
    planSweep({
      jobId: f.jobId,
      handler: job.name,
      params: 10_000,
      chunkSize: 100,
      args: { poison: [1234, 5678] },
    }).tasks,
  );
  const report = await worker(broker, f.jobId, job, new InlineExecutor(job, silentLogger), {
    batch: 128,
  }).run(
    new AbortController().signal,
  );
  assert.equal(report.exitReason, "idle");
  const results = await allResults(broker, f.jobId);
  assert.equal(results.reduce((n, r) => n + r.params, 0), 9_998);
  const letters = await broker.deadLetters.list(f.jobId);
  assert.deepEqual(
    letters.map((l) => [l.task?.start, l.task?.end, l.reason]).sort(),
    [[1234, 1235, "parameter 1234 is poison"], [5678, 5679, "parameter 5678 is poison"]],
  );
  const total = combineSweep(results.map((r) => r.value as SweepResult));
  assert.equal(total.count, 9_998);
});

Deno.test("a result that cannot be stored as JSON fails its chunk (retried, then dead-lettered) with the reason; the others complete", async () => {
  await using f = await setup();
  const broker = await f.open({ consumerId: "w1", retry: { maxAttempts: 2, baseDelayMs: 10 } });
  const job = defineJob({
    name: "test.bigint",
    indivisible: true,
    run: (chunk) => chunk.start === 30 ? { total: BigInt(chunk.end) } : { total: chunk.end },
  });
  await broker.publish(
    planSweep({ jobId: f.jobId, handler: job.name, params: 100, chunkSize: 10, divisible: false })
      .tasks,
  );
  const stop = AbortSignal.timeout(20_000);
  const report = await worker(broker, f.jobId, job, new InlineExecutor(job, silentLogger))
    .run(stop);
  assert.equal(stop.aborted, false, "the worker wedged on the result it could not store");
  assert.equal(report.exitReason, "idle");
  assert.equal(report.chunks, 9);
  const letters = await broker.deadLetters.list(f.jobId);
  assert.equal(letters.length, 1);
  assert.equal(letters[0]!.task?.start, 30);
  assert.match(letters[0]!.reason, /cannot be stored as JSON: .*BigInt/);
  assert.equal(letters[0]!.kind, "failed");
  assert.equal(letters[0]!.attempts, 2, "a failure like any other: retried, then dead-lettered");
});

Deno.test("a long chunk logs its latest ctx.progress in PROGRESS lines, also while it reports nothing new; a short one logs none", async () => {
  await using f = await setup();
  const broker = await f.open({ consumerId: "w1" });
  const job = defineJob({
    name: "test.progress",
    async run(chunk, ctx) {
      if (chunk.start === 0) {
        for (let p = 1; p <= 3; p++) {
          await new Promise((resolve) => setTimeout(resolve, 60));
          ctx.progress(p);
        }
        await new Promise((resolve) => setTimeout(resolve, 500)); // quiet, still running
      } else ctx.progress(10);
      return { n: chunk.end - chunk.start };
    },
  });
  await broker.publish(
    planSweep({ jobId: f.jobId, handler: job.name, params: 20, chunkSize: 10 }).tasks,
  );
  const lines: Record<string, unknown>[] = [];
  const log = {
    ...silentLogger,
    info(message: string, fields?: Record<string, unknown>) {
      if (message === "PROGRESS") lines.push(fields ?? {});
    },
  };
  const report = await worker(broker, f.jobId, job, new InlineExecutor(job, log), {
    log,
    progressLogMs: 100,
    workerProgressMs: 100,
    heartbeatMs: 50,
  }).run(AbortSignal.timeout(20_000));
  assert.equal(report.chunks, 2);
  const chunkLines = lines.filter((l) => "chunk_id" in l);
  assert.ok(chunkLines.every((l) => l.chunk_id === "00000" && l.of === 10), JSON.stringify(lines));
  const done = chunkLines.map((l) => l.done as number);
  assert.deepEqual(done, [...done].sort((a, b) => a - b));
  // The last report (3) keeps being logged on progress ticks while the handler is quiet.
  assert.ok(done.filter((n) => n === 3).length >= 2, `PROGRESS lines: ${JSON.stringify(lines)}`);
  // The worker's own lines, between STARTING and COMPLETED, count what the broker stored.
  const own = lines.filter((l) => "chunks" in l).map((l) => l.chunks as number);
  assert.ok(own.length >= 1 && own.every((n) => n >= 1 && n <= 2), JSON.stringify(lines));
});

Deno.test("a submit whose publish fails removes its job again, so the next submit starts over", async () => {
  await using f = await setup();
  const broker = await f.open({ consumerId: "coordinator" });
  const plan = planSweep({ jobId: f.jobId, params: 100, chunkSize: 10 });
  // Its first batch goes out, its second is refused: the job must not stay half published.
  const broken = {
    ...plan,
    *batches() {
      yield [...plan.tasks];
      yield [{ ...plan.tasks[0]!, chunkId: "bad", end: -1 }];
    },
  };
  await assert.rejects(() => submitPlan(broker, broken), TypeError);
  assert.equal(await submitPlan(broker, plan), true, "the failed submit left its job behind");
  assert.equal((await broker.stats(f.jobId)).ready, 10);
  assert.equal(await submitPlan(broker, plan), false);
});

Deno.test("a chunk given back for a retry is listed in the worker's fleet record with its job and due time until the retry is due", async () => {
  await using f = await setup();
  const retry = { baseDelayMs: 60_000, maxDelayMs: 60_000 };
  const broker = await f.open({ consumerId: "w1", retry });
  const job = defineJob({
    name: "test.retrying",
    run(chunk) {
      if (chunk.chunkId === "00001") throw new Error("not yet");
      return { n: chunk.end - chunk.start };
    },
  });
  await broker.publish(
    planSweep({ jobId: f.jobId, handler: job.name, params: 30, chunkSize: 10 }).tasks,
  );
  const before = Date.now();
  const identity = {
    workerId: "w1",
    host: "h",
    pod: "",
    node: "",
    pid: Deno.pid,
    version: "test",
    startedAt: new Date().toISOString(),
  };
  const report = await worker(broker, f.jobId, job, new InlineExecutor(job, silentLogger), {
    identity,
  }).run(AbortSignal.timeout(2000)); // the job is not drained: its retry is a minute away

  assert.deepEqual([report.chunks, report.retried], [2, 1]);
  const [record] = await broker.fleet.list({ jobId: f.jobId });
  assert.deepEqual(record?.retrying?.map((r) => [r.jobId, r.chunkId]), [[f.jobId, "00001"]]);
  const due = Date.parse(record!.retrying![0]!.until) - before;
  assert.ok(due >= 59_000 && due <= 61_000 + (Date.now() - before), `due in ${due} ms`);
});

Deno.test("a cancel reaches a running handler through ctx.signal on the next heartbeat; nothing of it is published", async () => {
  await using f = await setup();
  const broker = await f.open({ consumerId: "w1" });
  const observer = await f.open({ consumerId: "observer" });
  let started = 0;
  let aborted = 0;
  const job = defineJob({
    name: "test.cancelled",
    async run(_chunk, ctx) {
      started++;
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      aborted++;
      return { partial: true };
    },
  });
  await submitPlan(
    broker,
    planSweep({ jobId: f.jobId, handler: job.name, params: 40, chunkSize: 10 }),
  );
  const run = worker(broker, f.jobId, job, new InlineExecutor(job, silentLogger), {
    concurrency: 2,
    batch: 1,
  }).run(AbortSignal.timeout(20_000));
  while (started < 2) await new Promise((resolve) => setTimeout(resolve, 20));
  const outcome = await observer.control(f.jobId, "cancel");
  const report = await run;
  assert.equal(aborted, 2, "both running handlers saw the abort");
  // Queued chunks were cancelled by the cancel itself, the ones the worker held when it learnt it.
  assert.deepEqual([report.chunks, report.cancelled + outcome.cancelled], [0, 4]);
  const stats = await observer.stats(f.jobId);
  assert.deepEqual([stats.completed, stats.cancelled, stats.inFlight, stats.ready], [0, 4, 0, 0]);
  assert.equal((await allResults(observer, f.jobId)).length, 0, "a partial result was published");
});
