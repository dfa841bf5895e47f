import assert from "node:assert/strict";
import { planSweep } from "../workers/plan.ts";
import { InlineExecutor } from "../workers/executor.ts";
import { silentLogger } from "../workers/log.ts";
import { ThreadPoolExecutor } from "../workers/thread_pool.ts";
import { loadJob } from "../jobs/load.ts";

const moduleUrl = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).href;

function task(handler: string, chunkId = "00001", args: Record<string, unknown> = {}) {
  const [t] = planSweep({ jobId: "pool", handler, params: 10, chunkSize: 10, args }).tasks;
  return { ...t!, chunkId };
}

Deno.test("a CPU-bound handler in a thread never blocks the main event loop", async () => {
  await using pool = await ThreadPoolExecutor.create({
    moduleUrl: moduleUrl("busy_job.ts"),
    jobName: "test.busy",
    size: 1,
    log: silentLogger,
  });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 50);
  const progress: number[] = [];
  const outcome = await pool.execute({
    task: task("test.busy", "00001", { busy_ms: 1000 }),
    attempt: 1,
    workerId: "w",
    timeoutMs: 10_000,
    signal: new AbortController().signal,
    onProgress: (done) => progress.push(done),
  });
  clearInterval(timer);
  assert.deepEqual(outcome.ok && outcome.value, { count: 10 });
  assert.ok(ticks >= 10, `the main loop ticked only ${ticks} times in 1 s of handler work`);
  // ctx.progress reaches the main thread while the handler spins, throttled to 5 per second.
  assert.ok(progress.length >= 3 && progress.length <= 6, `progress calls: ${progress}`);
  assert.deepEqual(progress, [...progress].sort((a, b) => a - b));
  assert.ok(progress.every((n) => n >= 0 && n <= 10), `progress calls: ${progress}`);
});

Deno.test("a handler that loops forever is timed out, its thread replaced, and the pool keeps serving", async () => {
  await using pool = await ThreadPoolExecutor.create({
    moduleUrl: moduleUrl("forever_job.ts"),
    jobName: "test.forever",
    size: 1,
    log: silentLogger,
  });
  const signal = new AbortController().signal;
  const stuck = await pool.execute({
    task: task("test.forever", "00000"),
    attempt: 1,
    workerId: "w",
    timeoutMs: 300,
    signal,
  });
  assert.equal(stuck.ok, false);
  assert.equal(!stuck.ok && stuck.kind, "timeout");
  assert.equal(pool.threadsReplaced, 1);
  const next = await pool.execute({
    task: task("test.forever", "00001"),
    attempt: 1,
    workerId: "w",
    timeoutMs: 5000,
    signal,
  });
  assert.deepEqual(next.ok && next.value, { count: 10 });
});

Deno.test("an unknown handler is unrecoverable, and a thrown error is a failure with its message", async () => {
  const { job } = await loadJob("tests/fixtures/poison_job.ts");
  const inline = new InlineExecutor(job, silentLogger);
  const signal = new AbortController().signal;
  const unknown = await inline.execute({
    task: task("other.job"),
    attempt: 1,
    workerId: "w",
    timeoutMs: 1000,
    signal,
  });
  assert.equal(!unknown.ok && unknown.kind, "unrecoverable");
  assert.match(!unknown.ok ? unknown.reason : "", /Unknown handler "other.job"/);
  const failed = await inline.execute({
    task: task("test.poison", "00000", { poison: [3] }),
    attempt: 1,
    workerId: "w",
    timeoutMs: 1000,
    signal,
  });
  assert.equal(!failed.ok && failed.kind, "failed");
  assert.equal(!failed.ok && failed.reason, "parameter 3 is poison");
});

Deno.test("an aborted chunk reports aborted, not failed (so it is released, not retried)", async () => {
  await using pool = await ThreadPoolExecutor.create({
    moduleUrl: new URL("../jobs/sweep.ts", import.meta.url).href,
    jobName: "ttg.sweep",
    size: 1,
    log: silentLogger,
  });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  const outcome = await pool.execute({
    task: task("ttg.sweep", "00000", { work_ms: 1000 }),
    attempt: 1,
    workerId: "w",
    timeoutMs: 60_000,
    signal: controller.signal,
  });
  assert.equal(!outcome.ok && outcome.kind, "aborted");
});

Deno.test("a handler that returns after its abort is reported aborted: its partial value is never a result", async () => {
  await using pool = await ThreadPoolExecutor.create({
    moduleUrl: moduleUrl("quirky_job.ts"),
    jobName: "test.quirky",
    size: 1,
    log: silentLogger,
  });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  const outcome = await pool.execute({
    task: task("test.quirky", "00000", { mode: "partial" }),
    attempt: 1,
    workerId: "w",
    timeoutMs: 60_000,
    signal: controller.signal,
  });
  assert.equal(outcome.ok, false, `a partial value was returned: ${JSON.stringify(outcome)}`);
  assert.equal(!outcome.ok && outcome.kind, "aborted");
});

Deno.test("a thread that crashes fails its chunk at once and is replaced for the next one", async () => {
  await using pool = await ThreadPoolExecutor.create({
    moduleUrl: moduleUrl("quirky_job.ts"),
    jobName: "test.quirky",
    size: 1,
    log: silentLogger,
  });
  const run = (mode: string) =>
    pool.execute({
      task: task("test.quirky", "00000", { mode }),
      attempt: 1,
      workerId: "w",
      timeoutMs: 20_000,
      signal: new AbortController().signal,
    });
  const t0 = performance.now();
  const crashed = await run("crash");
  assert.equal(crashed.ok, false);
  assert.equal(!crashed.ok && crashed.kind, "failed");
  assert.match(!crashed.ok ? crashed.reason : "", /stray timer blew up/);
  assert.ok(performance.now() - t0 < 10_000, "the crash was noticed only by the chunk timeout");
  const next = await run("count");
  assert.deepEqual(next.ok && next.value, { count: 10 });
  assert.equal(pool.threadsReplaced, 1);
});
