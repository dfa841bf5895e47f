import assert from "node:assert/strict";
import { openBroker } from "../brokers/open.ts";
import { spawnTtg, tempDir, ttg, until } from "./helpers.ts";
import {
  assertBusyHandlerKeepsItsLease,
  assertPausedWorkerCannotCommit,
} from "./stall_scenarios.ts";

Deno.test("ttg run --fault-demo --json: one worker SIGKILLed at ~30%, every chunk counted once, sum 5000355.0", async () => {
  await using dir = await tempDir();
  const { code, stdout, stderr } = await ttg([
    "run",
    "--fault-demo",
    "--json",
    "--workers",
    "3",
    "--work-ms",
    "2",
    "--sqlite-path",
    `${dir.path}/ttg.db`,
  ]);
  assert.equal(code, 0, stderr);
  const report = JSON.parse(stdout);
  assert.ok(Math.abs(report.aggregate.sum - 5000355.0) < 1e-6, `sum ${report.aggregate.sum}`);
  assert.equal(report.aggregate.count, 10_000);
  assert.deepEqual(
    {
      total: report.chunks.total,
      completed: report.chunks.completed,
      dead: report.chunks.dead_lettered,
    },
    { total: 100, completed: 100, dead: 0 },
  );
  assert.equal(report.faults.workers_killed, 1);
  assert.equal(report.backend, "sqlite");
  for (
    const key of [
      "job_id",
      "params",
      "duplicates_discarded",
      "retries",
      "duration_seconds",
      "chunks_per_second",
    ]
  ) {
    assert.ok(key in report, `report lacks ${key}`);
  }
  assert.equal(
    report.workers.reduce((n: number, w: { params: number }) => n + w.params, 0),
    10_000,
  );
  assert.match(stderr, /Fault demo: SIGKILLed worker-1/);
});

Deno.test("bad input exits with code 2 and one line naming the setting and the value", async () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [
      ["run", "--workers", "abc"],
      {},
      /^ttg: Invalid --workers "abc": expected a whole number from 1 to 256\n$/,
    ],
    [
      ["worker", "--idle-timeout", "1"],
      { SIMULATE_FAULT_RATE: "2" },
      /^ttg: Invalid SIMULATE_FAULT_RATE "2"/,
    ],
    [
      ["run", "--job", "no/such/job.ts"],
      {},
      /^ttg: Cannot load job "no\/such\/job.ts": the file does not exist\n$/,
    ],
    [["status", "--backend", "kafka"], {}, /^ttg: Invalid --backend "kafka"/],
    [
      ["run", "--sqlite-path", ":memory:", "--params", "100"],
      {},
      /^ttg: Invalid --sqlite-path ":memory:": ttg run starts worker processes/,
    ],
    [
      ["static", "--index", "5", "--workers", "3"],
      {},
      /^ttg: Invalid --index "5": expected 0 to 2 \(one index per pod; --workers is 3\)\n$/,
    ],
    [
      ["static", "--workers", "3"],
      { JOB_COMPLETION_INDEX: "3" },
      /^ttg: Invalid JOB_COMPLETION_INDEX "3": expected 0 to 2/,
    ],
    [
      ["dlq", "replay", "--sqlite-path", ":memory:", "--id", "7", "bogus"],
      {},
      /^ttg: Invalid dead-letter id "bogus": expected an id listed by ttg dlq list, like 42\n$/,
    ],
    [
      ["submit", "--sqlite-path", ":memory:", "--params", "5000000", "--chunk-size", "2"],
      {},
      /^ttg: Invalid --chunk-size "2": 5000000 parameters would make 2500000 chunks, more than 1000000 \(use --chunk-size 5 or more\)\n$/,
    ],
  ];
  for (const [args, env, pattern] of cases) {
    const { code, stderr } = await ttg(args, env);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.match(stderr, pattern);
  }
});

Deno.test("ttg submit is idempotent, and status/results/dlq/reset read the job", async () => {
  await using dir = await tempDir();
  const base = ["--sqlite-path", `${dir.path}/ttg.db`, "--job-id", "cli"];
  const first = await ttg(["submit", ...base, "--params", "1000", "--chunk-size", "100"]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /Submitted job "cli": 10 chunks/);
  const second = await ttg(["submit", ...base, "--params", "1000", "--chunk-size", "100"]);
  assert.match(second.stdout, /already submitted; nothing enqueued/);
  const work = await ttg(["worker", ...base, "--idle-timeout", "0.5", "--report-json"]);
  assert.equal(work.code, 0, work.stderr);
  assert.equal(JSON.parse(work.stdout.trim().split("\n").pop()!).chunks, 10);
  const status = await ttg(["status", ...base, "--json"]);
  assert.equal(JSON.parse(status.stdout).stats.completed, 10);
  const results = JSON.parse((await ttg(["results", ...base, "--json"])).stdout);
  assert.equal(results.aggregate.count, 1000);
  assert.match((await ttg(["dlq", "list", ...base])).stdout, /has no dead letters/);
  assert.match((await ttg(["reset", ...base])).stdout, /Reset job "cli"/);
  for (const command of ["status", "results"]) {
    const gone = await ttg([command, ...base]);
    assert.equal(gone.code, 1, `${command} of a reset job: ${gone.stdout}`);
    assert.equal(
      gone.stderr,
      'ttg: Job "cli" was not found on sqlite: check --job-id and --backend\n',
    );
  }
});

Deno.test("a handler thread spinning for 3× the lease keeps its chunk: completed once, never reclaimed", async () => {
  await using dir = await tempDir();
  const db = `${dir.path}/ttg.db`;
  const observer = await openBroker({ backend: "sqlite", sqlitePath: db, consumerId: "observer" });
  try {
    await assertBusyHandlerKeepsItsLease({
      brokerArgs: ["--sqlite-path", db, "--job-id", "busy"],
      jobId: "busy",
      observer,
      leaseMs: 1000,
    });
  } finally {
    await observer.close();
  }
});

Deno.test("a paused worker (SIGSTOP past its lease) cannot commit after SIGCONT: its completion is a counted zombie", async () => {
  await using dir = await tempDir();
  const db = `${dir.path}/ttg.db`;
  const observer = await openBroker({ backend: "sqlite", sqlitePath: db, consumerId: "observer" });
  try {
    await assertPausedWorkerCannotCommit({
      brokerArgs: ["--sqlite-path", db, "--job-id", "zombie"],
      jobId: "zombie",
      observer,
      leaseMs: 1000,
    });
  } finally {
    await observer.close();
  }
});

for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  Deno.test(`ttg run stopped by ${signal} exits ${code} with the command that finishes the job, and that command does`, async () => {
    await using dir = await tempDir();
    const db = `${dir.path}/ttg.db`;
    const base = ["--sqlite-path", db, "--job-id", "intr"];
    const run = spawnTtg([
      "run",
      ...base,
      "--params",
      "3000",
      "--chunk-size",
      "10",
      "--work-ms",
      "3",
    ]);
    const observer = await openBroker({
      backend: "sqlite",
      sqlitePath: db,
      consumerId: "observer",
    });
    try {
      await until(
        async () =>
          ((await observer.stats("intr").catch(() => undefined))?.completed ?? 0) >= 5 || undefined,
        30_000,
        "the first completed chunks",
      );
      run.kill(signal);
      const out = await run.output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, code, stderr);
      const hint = stderr.match(/run (ttg worker .*)$/m);
      assert.ok(hint, `no resume command in: ${stderr}`);
      assert.equal(hint[1], `ttg worker --backend sqlite --sqlite-path ${db} --job-id intr`);
      const stats = await observer.stats("intr");
      assert.ok(stats.completed < 300, "the run finished before the interrupt");
      assert.equal(stats.inFlight, 0, "an interrupted run left chunks leased");
      const resume = await ttg([...hint[1].split(" ").slice(1), "--idle-timeout", "0.5"]);
      assert.equal(resume.code, 0, resume.stderr);
      const results = JSON.parse((await ttg(["results", ...base, "--json"])).stdout);
      assert.equal(results.aggregate.count, 3000);
      assert.equal((await observer.stats("intr")).completed, 300);
    } finally {
      await observer.close();
    }
  });
}
