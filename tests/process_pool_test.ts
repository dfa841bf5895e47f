/**
 * The process executor with real Python handlers (tests/fixtures/python/quirky.py): protocol v1
 * round trips, and what becomes of a process that times out, exits, prints garbage, says the
 * wrong hello, or keeps dying.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ChunkTask } from "../brokers/broker.ts";
import type { Logger } from "../jobs/define_job.ts";
import { computeRange } from "../jobs/sweep.ts";
import { fsum } from "../jobs/exact_sum.ts";
import type { ExecutionOutcome, ExecutionRequest } from "../workers/executor.ts";
import { planSweep } from "../workers/plan.ts";
import { handlerEnv, sandboxProblem } from "../workers/process_command.ts";
import { ProcessPoolExecutor, type ProcessPoolOptions } from "../workers/process_pool.ts";
import { until } from "./helpers.ts";
import {
  processTable,
  PY_ADAPTER_DIR,
  PYTHON,
  QUIRKY,
  readmePythonJob,
} from "./process_helpers.ts";

function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const add = (message: string) => void lines.push(message);
  return { lines, debug: add, info: add, warn: add, error: add };
}

function setup(args: string[], options: Partial<ProcessPoolOptions> = {}) {
  const log = recordingLog();
  const pool = ProcessPoolExecutor.create({
    argv: [PYTHON, QUIRKY, ...args],
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    jobName: "test.quirky",
    size: 1,
    log,
    ...options,
  });
  return { log, pool };
}

function task(start: number, end: number, args: Record<string, unknown> = {}): ChunkTask {
  const plan = planSweep({
    jobId: "pp",
    handler: "test.quirky",
    params: 1000,
    chunkSize: 10,
    args,
  });
  return { ...plan.tasks[Math.floor(start / 10)]!, start, end };
}

function run(
  pool: ProcessPoolExecutor,
  t: ChunkTask,
  extra: Partial<ExecutionRequest> = {},
): Promise<ExecutionOutcome> {
  return pool.execute({
    task: t,
    attempt: 1,
    workerId: "w",
    timeoutMs: 20_000,
    signal: new AbortController().signal,
    ...extra,
  });
}

Deno.test("a chunk goes to a handler process as one JSON line and its result comes back; progress and stderr reach the worker", async () => {
  const { pool, log } = setup(["echo"]);
  await using p = await pool;
  const progress: number[] = [];
  const outcome = await run(p, task(20, 30, { k: "v" }), {
    attempt: 2,
    onProgress: (done) => progress.push(done),
  });
  assert.deepEqual(outcome.ok && outcome.value, {
    jobId: "pp",
    chunkId: "00002",
    start: 20,
    end: 30,
    totalParams: 1000,
    args: { k: "v" },
    attempt: 2,
  });
  assert.deepEqual(progress, [10]);
  assert.ok(log.lines.includes("[00002] working on 00002"), log.lines.join("\n"));
  assert.ok(log.lines.includes("[00002] a stray print goes to the log, not to the protocol"));
});

Deno.test("a result line of several megabytes arrives whole", async () => {
  const { pool } = setup(["big", String(3 * 1024 * 1024)]);
  await using p = await pool;
  const outcome = await run(p, task(0, 10));
  assert.equal(outcome.ok && (outcome.value as string).length, 3 * 1024 * 1024);
  assert.ok((await run(p, task(10, 20))).ok, "and the next line is read apart from it");
});

Deno.test("the Python sweep's chunk result is the TypeScript sweep's, bit for bit", async () => {
  const { pool } = setup(["poison"]);
  await using p = await pool;
  const outcome = await run(p, task(100, 200));
  const { sum_parts: parts, ...fields } = (outcome.ok ? outcome.value : {}) as Record<
    string,
    unknown
  >;
  const { sum_parts: expectedParts, ...expected } = computeRange(100, 200);
  assert.deepEqual(fields, expected);
  assert.equal(fsum(parts as number[]), fsum(expectedParts!), "the same exact sum");
});

Deno.test("a raised exception fails the chunk with its message; the process lives on", async () => {
  const { pool } = setup(["poison", "42"]);
  await using p = await pool;
  const failed = await run(p, task(40, 50));
  assert.equal(!failed.ok && failed.kind, "failed");
  assert.equal(!failed.ok && failed.reason, "ValueError: parameter 42 is poison");
  assert.ok((await run(p, task(50, 60))).ok);
  assert.equal(p.processesReplaced, 0);
});

Deno.test("the README's squares.py: its result, and an Unrecoverable raised is an unrecoverable failure (dead-lettered at once)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ttg-squares-" });
  try {
    await Deno.writeTextFile(`${dir}/squares.py`, await readmePythonJob());
    const { pool } = setup([], {
      argv: [PYTHON, `${dir}/squares.py`],
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", PYTHONPATH: PY_ADAPTER_DIR },
    });
    await using p = await pool;
    const squares = await run(p, task(0, 10));
    assert.deepEqual(squares.ok && squares.value, 285); // 0² + 1² + … + 9²
    const bad = await run(p, task(10, 20, { bad: true }));
    assert.deepEqual(
      bad.ok ? bad : [bad.kind, bad.reason],
      ["unrecoverable", "bad input"],
    );
    assert.equal(p.processesReplaced, 0, "the process lives on");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a chunk past its timeout has its process group killed (children too) and a new process serves the next", async () => {
  const mark = `ttg-sleep-${crypto.randomUUID().slice(0, 8)}`;
  const { pool } = setup(["sleep", "5", mark]);
  await using p = await pool;
  const outcome = await run(p, task(0, 10), { timeoutMs: 1000 });
  assert.equal(!outcome.ok && outcome.kind, "timeout");
  assert.match(!outcome.ok ? outcome.reason : "", /timed out after 1000 ms/);
  const left = (await processTable()).filter((l) => l.includes(mark));
  assert.equal(left.length, 1, `only the replacement is left:\n${left.join("\n")}`);
  assert.match(left[0]!, /quirky\.py sleep/, "the sleeping child went with its group");
  assert.ok((await run(p, task(10, 20))).ok, "the replacement answers");
  assert.equal(p.processesReplaced, 1);
  await p.close();
  assert.deepEqual((await processTable()).filter((l) => l.includes(mark)), []);
});

Deno.test("a process that exits in the middle of a chunk fails it with its exit code, and is replaced", async () => {
  const { pool } = setup(["exit-once", "00003"]);
  await using p = await pool;
  const outcome = await run(p, task(30, 40));
  assert.equal(!outcome.ok && outcome.kind, "failed");
  assert.match(
    !outcome.ok ? outcome.reason : "",
    /^The handler process ".*quirky\.py exit-once 00003" \(pid \d+\) exited with code 3 while running chunk 00003; its last stderr line: "exiting in the middle of the chunk"$/,
  );
  assert.ok((await run(p, task(30, 40), { attempt: 2 })).ok, "the retry completes");
  assert.equal(p.processesReplaced, 1);
});

Deno.test("a line outside the protocol fails the chunk with the line quoted, and the process is replaced", async () => {
  const { pool } = setup(["garbage", "7"]);
  await using p = await pool;
  const outcome = await run(p, task(0, 10));
  assert.equal(!outcome.ok && outcome.kind, "failed");
  assert.match(
    !outcome.ok ? outcome.reason : "",
    /printed a line outside the protocol: "Traceback\? no: this line is not the protocol" while running chunk 00000$/,
  );
  assert.ok((await run(p, task(10, 20))).ok);
});

Deno.test("a process that does not start with the protocol's hello cannot start the pool: the error names the hello expected", async () => {
  await assert.rejects(
    () => setup(["nohello"]).pool,
    /Cannot start the handlers of job "test\.quirky": the handler process .* did not start with the protocol: its first line was "starting up\.\.\.", not the protocol's hello line \{"ttg": 1, "ready": true\}/,
  );
  await assert.rejects(
    () => setup(["hello2"]).pool,
    /it speaks protocol version 2; this TTG speaks version 1/,
  );
  await assert.rejects(
    () => setup([], { argv: ["/nonexistent/handler"] }).pool,
    /the handler process "\/nonexistent\/handler" cannot be started/,
  );
});

Deno.test("a handler that keeps dying is backed off, never spun on; a waiting chunk can be released, and runs once it starts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ttg-flaky-" });
  try {
    const { pool, log } = setup(["flaky", dir], { restartBackoff: { baseMs: 50, maxMs: 400 } });
    await using p = await pool;
    await Deno.writeTextFile(`${dir}/down`, "");
    const crashed = await run(p, task(0, 10, { crash: true }));
    assert.match(!crashed.ok ? crashed.reason : "", /exited with code 1 while running chunk/);
    const stop = new AbortController();
    const waiting = run(p, task(10, 20), { signal: stop.signal });
    await new Promise((r) => setTimeout(r, 2000));
    stop.abort();
    const released = await waiting;
    assert.equal(!released.ok && released.kind, "aborted", "released, not failed");
    const starts = (await Deno.readTextFile(`${dir}/starts`)).split("\n").length - 1;
    // 1 + restarts after 50, 100, 200, 400, 400… ms: a handful in 2 s, not hundreds.
    assert.ok(starts >= 3 && starts <= 12, `${starts} starts in 2 s`);
    assert.ok(log.lines.includes("Handler processes keep dying; waiting before the next start"));
    await Deno.remove(`${dir}/down`);
    const later = await run(p, task(20, 30));
    assert.ok(later.ok, "a start that succeeds serves the chunk");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an abort (shutdown, lost lease) kills the running process: no result, the chunk is released", async () => {
  const mark = `ttg-abort-${crypto.randomUUID().slice(0, 8)}`;
  const { pool } = setup(["sleep", "5", mark]);
  await using p = await pool;
  const stop = new AbortController();
  setTimeout(() => stop.abort(), 500);
  const outcome = await run(p, task(0, 10), { signal: stop.signal });
  assert.equal(!outcome.ok && outcome.kind, "aborted");
  await p.close();
  assert.deepEqual((await processTable()).filter((l) => l.includes(mark)), []);
});

Deno.test("a handler's environment is clean: PATH and the variables its job names, nothing of the worker's", async () => {
  const worker: Record<string, string> = {
    PATH: Deno.env.get("PATH")!,
    TTG_BROKER_URL: "redis://:secret@cache:6379",
    OMP_NUM_THREADS: "2",
  };
  const env = handlerEnv(
    { argv: [], env: { MODE: "fast" }, passEnv: ["OMP_NUM_THREADS", "UNSET"], sandbox: false },
    (k) => worker[k],
  );
  const { pool } = setup(["env"], { env });
  await using p = await pool;
  const outcome = await run(p, task(0, 10));
  // Python itself may add LC_CTYPE when it coerces a C locale (PEP 538).
  const names = (outcome.ok ? outcome.value as string[] : []).filter((n) => n !== "LC_CTYPE");
  assert.deepEqual(names, ["MODE", "OMP_NUM_THREADS", "PATH"]);
});

const noSandbox = await sandboxProblem();
Deno.test({
  name: `--cmd-sandbox: a sandboxed handler cannot reach the network${
    noSandbox ? ` (ignored: ${noSandbox})` : ""
  }`,
  ignore: noSandbox !== undefined,
  async fn() {
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = String(listener.addr.port);
    const accepting = (async () => {
      for await (const conn of listener) conn.close();
    })().catch(() => {});
    {
      await using open = await setup(["net", port]).pool;
      const reached = await run(open, task(0, 10));
      assert.equal(
        (reached.ok ? reached.value as Record<string, unknown> : {}).connected,
        true,
      );
    }
    const { SANDBOX_PREFIX } = await import("../workers/process_command.ts");
    await using boxed = await setup(["net", port], {
      argv: [...SANDBOX_PREFIX, PYTHON, QUIRKY, "net", port],
    }).pool;
    const outcome = await run(boxed, task(0, 10));
    assert.equal((outcome.ok ? outcome.value as Record<string, unknown> : {}).connected, false);
    listener.close();
    await accepting;
  },
});

Deno.test("the Python adapter exits in the middle of a chunk once its worker is gone, even without the watchdog", async () => {
  const mark = `ttg-parent-${crypto.randomUUID().slice(0, 8)}`;
  const line = JSON.stringify({ chunk: { ...task(0, 10), attempt: 1 } });
  // A stand-in worker: a shell that starts the handler, gives it a chunk that never ends, and
  // is then SIGKILLed (no watchdog here).
  const parent = new Deno.Command("sh", {
    args: ["-c", `echo '${line}' | ${PYTHON} ${QUIRKY} sleep 5 ${mark}`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  const handler = () =>
    processTable().then((t) =>
      t.filter((l) => l.includes(`quirky.py sleep 5 ${mark}`) && !l.includes("sh -c"))
    );
  try {
    await until(async () => (await handler()).length === 1 || undefined, 20_000, "the handler");
    await until(
      async () =>
        (await processTable()).some((l) => l.includes(`sleep 600; : ${mark}`)) || undefined,
      20_000,
      "the chunk to run",
    );
    Deno.kill(parent.pid, "SIGKILL");
    await parent.status;
    await until(
      async () => (await handler()).length === 0 || undefined,
      5_000,
      "the handler to exit",
    );
  } finally {
    try {
      Deno.kill(-parent.pid, "SIGKILL"); // the chunk's own child, left to the watchdog in a worker
    } catch {
      // gone
    }
  }
});
