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
  assert.equal(report.aggregate.sum, 5000355, "the correctly rounded sum");
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
    [
      ["run", "--args", "[1]"],
      {},
      /^ttg: Invalid --args "\[1\]": expected a JSON object such as \{"bad": true\}, got an array\n$/,
    ],
    [
      ["submit", "--sqlite-path", ":memory:"],
      { TTG_ARGS: "{oops" },
      /^ttg: Invalid TTG_ARGS "\{oops": expected a JSON object such as \{"bad": true\}, got invalid JSON \(.*\)\n$/,
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

Deno.test("a broker URL chooses the backend through the real CLI: ttg run and ttg status never fall back to SQLite", async () => {
  await using dir = await tempDir();
  const db = `${dir.path}/ttg.db`;
  const exists = (path: string) => Deno.stat(path).then(() => true, () => false);
  // Nothing listens on port 1: each command fails as a Redis (or RabbitMQ) command would.
  const unreachable: [string[], Record<string, string>][] = [
    [["run", "--broker-url", "redis://127.0.0.1:1", "--params", "100"], {}],
    [["status", "--broker-url", "redis://127.0.0.1:1"], {}],
    [["status"], { REDIS_URL: "redis://127.0.0.1:1" }],
    [["status"], { TTG_BROKER_URL: "redis://127.0.0.1:1" }],
    [["results"], { AMQP_URL: "amqp://u:p@127.0.0.1:1" }],
  ];
  for (const [args, env] of unreachable) {
    const { code, stdout, stderr } = await ttg(
      [...args, "--sqlite-path", db, "--connect-timeout", "1"],
      env,
    );
    const what = `${args.join(" ")} ${JSON.stringify(env)}`;
    assert.equal(code, 1, `${what}: ${stdout}${stderr}`);
    // The connect retries are told as they happen; the failure is one line, last.
    const lines = stderr.trimEnd().split("\n");
    assert.match(lines.at(-1)!, /^ttg: Cannot [^\n]+ at 127\.0\.0\.1:1: /, what);
    for (const line of lines.slice(0, -1)) {
      assert.match(line, /^Connecting to \S+ at [^:]+:\d+: .+; retrying in [\d.]+ s$/, what);
    }
    assert.doesNotMatch(stderr, /sqlite/i, what);
    assert.equal(await exists(db), false, `${what} opened the SQLite database`);
  }
  // Settings only a broker with a URL reads show which one was chosen, before any connection.
  const chosen = await ttg(["status", "--rabbitmq-queue-type", "stream"], {
    AMQP_URL: "amqp://u:p@127.0.0.1:1",
  });
  assert.deepEqual([chosen.code, chosen.stderr], [
    2,
    'ttg: Invalid --rabbitmq-queue-type "stream": expected one of classic, quorum\n',
  ]);
  const tls = await ttg(["run", "--tls-ca", `${dir.path}/none.pem`], {
    TTG_BROKER_URL: "rediss://127.0.0.1:1",
  });
  assert.deepEqual([tls.code, tls.stderr], [
    2,
    `ttg: Invalid --tls-ca "${dir.path}/none.pem": the file does not exist\n`,
  ]);
  // A backend named beside a URL of another is bad input naming both.
  const conflicts: [string[], Record<string, string>, string][] = [
    [
      ["run", "--backend", "sqlite", "--broker-url", "redis://127.0.0.1:1"],
      {},
      'ttg: Invalid --broker-url "redis://127.0.0.1:1": a redis:// URL is for backend redis, but --backend is "sqlite"\n',
    ],
    [
      ["status", "--broker-url", "amqp://u:secret@127.0.0.1:1"],
      { TTG_BACKEND: "redis" },
      'ttg: Invalid --broker-url "amqp://u:***@127.0.0.1:1": an amqp:// URL is for backend rabbitmq, but TTG_BACKEND is "redis"\n',
    ],
  ];
  for (const [args, env, message] of conflicts) {
    const out = await ttg([...args, "--sqlite-path", db], env);
    assert.deepEqual([out.code, out.stderr], [2, message]);
  }
  assert.equal(await exists(db), false);
});

Deno.test("--args (or TTG_ARGS) of ttg submit and ttg run reaches every chunk's args", async () => {
  await using dir = await tempDir();
  const poison = new URL("./fixtures/poison_job.ts", import.meta.url).pathname;
  const base = ["--sqlite-path", `${dir.path}/ttg.db`, "--job-id", "args"];
  const submit = await ttg(["submit", ...base, "--job", poison, "--params", "40"].concat(
    ["--chunk-size", "10", "--args", '{"poison": [5, 25]}'],
  ));
  assert.equal(submit.code, 0, submit.stderr);
  const work = await ttg(["worker", ...base, "--job", poison, "--max-attempts", "1"].concat(
    ["--min-split", "100", "--idle-timeout", "0.5"],
  ));
  assert.equal(work.code, 0, work.stderr);
  const list = await ttg(["dlq", "list", ...base]);
  assert.match(list.stdout, /00000 \[0, 10\) failed after 1 attempt\(s\): parameter 5 is poison/);
  assert.match(list.stdout, /00002 \[20, 30\) failed after 1 attempt\(s\): parameter 25 is poison/);
  const run = await ttg(
    ["run", ...base.slice(0, 2), "--job", poison, "--params", "100", "--chunk-size", "10"]
      .concat(["--job-id", "args-run", "--workers", "1", "--json", "--max-attempts", "1"]),
    { TTG_ARGS: '{"poison": [42]}' },
  );
  assert.equal(run.code, 3, run.stderr);
  const report = JSON.parse(run.stdout);
  assert.equal(report.aggregate.count, 99, run.stderr);
  assert.deepEqual(report.dead_letters.map((d: { start: number }) => d.start), [42]);
});

/** Keys with a capital letter anywhere in `value`, except inside the job's own data. */
function camelKeys(value: unknown, path = "$"): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => camelKeys(v, `${path}[${i}]`));
  if (typeof value !== "object" || value === null) return [];
  return Object.entries(value).flatMap(([key, v]) => [
    ...(/[A-Z]/.test(key) ? [`${path}.${key}`] : []),
    ...(["args", "aggregate", "raw"].includes(key) ? [] : camelKeys(v, `${path}.${key}`)),
  ]);
}

Deno.test("every --json output has snake_case keys; a job's own arguments keep theirs", async () => {
  await using dir = await tempDir();
  const poison = new URL("./fixtures/poison_job.ts", import.meta.url).pathname;
  const base = ["--sqlite-path", `${dir.path}/ttg.db`, "--job-id", "json"];
  const json = async (args: string[]) => {
    const out = await ttg(args);
    assert.equal(out.code, 0, `${args.join(" ")}: ${out.stderr}`);
    const value = JSON.parse(out.stdout.trim().split("\n").pop()!);
    assert.deepEqual(camelKeys(value), [], args.join(" "));
    return value;
  };
  const submit = await json(["submit", ...base, "--json", "--job", poison, "--params", "20"].concat(
    ["--chunk-size", "10", "--args", '{"poison": [5], "keepMe": 1}'],
  ));
  assert.deepEqual(submit, { job_id: "json", created: true, chunks: 2 });
  const worker = await json(["worker", ...base, "--report-json", "--job", poison].concat(
    ["--max-attempts", "1", "--min-split", "100", "--idle-timeout", "0.5"],
  ));
  assert.equal(worker.chunks, 1);
  assert.equal(worker.dead_lettered, 1);
  assert.equal(worker.exit_reason, "idle");
  assert.ok(worker.peak_rss_bytes > 0);
  const status = await json(["status", ...base, "--json"]);
  assert.equal(status.job.total_chunks, 2);
  assert.deepEqual(status.job.args, { work_ms: 1, fault_rate: 0, poison: [5], keepMe: 1 });
  assert.equal(status.stats.dead_lettered, 1);
  assert.equal(status.stats.in_flight, 0);
  const [letter] = await json(["dlq", "list", ...base, "--json"]);
  assert.equal(letter.job_id, "json");
  assert.equal(letter.task.chunk_id, "00000");
  assert.equal(letter.task.args.keepMe, 1);
  assert.equal(letter.history[0].worker_id.length > 0, true);
  await json(["results", ...base, "--json"]);
  const run = await json(["run", "--sqlite-path", `${dir.path}/ttg.db`, "--job-id", "json-run"]
    .concat(["--params", "100", "--workers", "1", "--json"]));
  assert.equal(run.workers[0].peak_rss_mb > 0, true);
});

Deno.test("after bisection, ttg run's report and ttg status count parameters that add up and bisected parts apart", async () => {
  await using dir = await tempDir();
  const poison = new URL("./fixtures/poison_job.ts", import.meta.url).pathname;
  const base = ["--sqlite-path", `${dir.path}/ttg.db`, "--job-id", "bisect"];
  const run = await ttg(["run", ...base, "--job", poison, "--args", '{"poison": [1234]}'].concat(
    ["--workers", "2", "--max-attempts", "1", "--allow-dead-letters"],
  ));
  assert.equal(run.code, 0, run.stderr);
  assert.match(
    run.stdout,
    /^ {2}parameters 10000\/10000 accounted: 9,999 counted, 1 dead-lettered$/m,
  );
  const chunks = run.stdout.match(
    /^ {2}chunks {5}100 planned, (\d+) bisected into (\d+) parts → (\d+) completed, 1 dead-lettered$/m,
  );
  assert.ok(chunks, run.stdout);
  const [bisected, parts, completed] = chunks.slice(1).map(Number) as [number, number, number];
  assert.equal(parts, 2 * bisected);
  assert.equal(100 - bisected + parts, completed + 1, "the chunks add up");
  const status = await ttg(["status", ...base]);
  assert.match(
    status.stdout,
    new RegExp(`^ {2}chunks {6}100 planned, ${bisected} bisected into ${parts} parts$`, "m"),
  );
  assert.match(
    status.stdout,
    new RegExp(`^ {2}completed {3}${completed} \\(\\d+ parameters\\)$`, "m"),
  );
});

Deno.test("a finished ttg run with dead letters exits 3 after its report, unless --allow-dead-letters", async () => {
  await using dir = await tempDir();
  const poison = new URL("./fixtures/poison_job.ts", import.meta.url).pathname;
  const run = (id: string, ...extra: string[]) =>
    ttg(
      ["run", "--sqlite-path", `${dir.path}/ttg.db`, "--job-id", id, "--job", poison]
        .concat(["--params", "1000", "--args", '{"poison": [7, 700]}', "--max-attempts", "1"])
        .concat(["--workers", "1", ...extra]),
    );
  const text = await run("dead-text");
  assert.equal(text.code, 3, text.stderr);
  assert.match(text.stdout, /^ {2}parameters 1000\/1000 accounted: 998 counted, 2 dead-lettered$/m);
  assert.match(text.stdout, /^Dead letters:$/m);
  assert.equal(
    text.stderr.split("\n").filter((l) => l.startsWith("ttg: ")).join("\n"),
    'ttg: Job "dead-text" finished with 2 dead letters (exit code 3; --allow-dead-letters exits 0): see ttg dlq list --job-id dead-text',
  );
  const json = await run("dead-json", "--json");
  assert.equal(json.code, 3, json.stderr);
  assert.equal(JSON.parse(json.stdout).parameters.dead_lettered, 2);
  const allowed = await run("dead-allowed", "--json", "--allow-dead-letters");
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.doesNotMatch(allowed.stderr, /^ttg: /m);
  const clean = await ttg(["run", "--sqlite-path", `${dir.path}/ttg.db`, "--params", "100"]);
  assert.equal(clean.code, 0, clean.stderr);
});

Deno.test("ttg static does the simulated work --work-ms (or SIMULATE_WORK_MS) asks for, and SIGTERM stops it", async () => {
  const quick = await ttg(["static", "--index", "1", "--workers", "2", "--params", "1000"].concat(
    ["--work-ms", "0"],
  ));
  assert.equal(quick.code, 0, quick.stderr);
  const share = JSON.parse(quick.stdout);
  assert.deepEqual([share.start, share.end, share.result.count], [500, 1000, 500]);
  // 200 parameters × 50 ms: still working when SIGTERM arrives; no partial share is printed.
  const slow = spawnTtg(["static", "--workers", "1", "--params", "200"], {
    SIMULATE_WORK_MS: "50",
  });
  await new Promise((resolve) => setTimeout(resolve, 2000));
  slow.kill("SIGTERM");
  const out = await slow.output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  assert.equal(out.code, 143, decode(out.stderr));
  assert.equal(decode(out.stdout), "");
  assert.equal(
    decode(out.stderr),
    "ttg: ttg static was stopped before it computed parameters [0, 200)\n",
  );
});

Deno.test("ttg dlq replay and purge with --id ids that do not exist name them, exit 2 and change nothing", async () => {
  await using dir = await tempDir();
  const poison = new URL("./fixtures/poison_job.ts", import.meta.url).pathname;
  const base = ["--sqlite-path", `${dir.path}/ttg.db`, "--job-id", "dlq-ids"];
  const submit = await ttg(["submit", ...base, "--job", poison, "--params", "20"].concat(
    ["--chunk-size", "10", "--args", '{"poison": [3, 13]}'],
  ));
  assert.equal(submit.code, 0, submit.stderr);
  const work = await ttg(["worker", ...base, "--job", poison, "--max-attempts", "1"].concat(
    ["--min-split", "100", "--idle-timeout", "0.5"],
  ));
  assert.equal(work.code, 0, work.stderr);
  const ids = () =>
    ttg(["dlq", "list", ...base, "--json"]).then((out) =>
      (JSON.parse(out.stdout) as { id: string }[]).map((d) => d.id)
    );
  const [first, second] = await ids();
  assert.ok(first && second);
  for (const [op, verb] of [["replay", "replayed"], ["purge", "purged"]]) {
    const out = await ttg(["dlq", op!, ...base, "--id", first, "999998", "999999"]);
    assert.deepEqual([out.code, out.stdout, out.stderr], [
      2,
      "",
      `ttg: No dead letters "999998", "999999" in job "dlq-ids": nothing ${verb} (ttg dlq list --job-id dlq-ids lists them)\n`,
    ]);
    assert.deepEqual(await ids(), [first, second], `${op} changed the dead letters`);
  }
  const one = await ttg(["dlq", "purge", ...base, "--id", second]);
  assert.deepEqual([one.code, one.stdout], [0, 'Purged 1 dead letter(s) of job "dlq-ids"\n']);
  const gone = await ttg(["dlq", "replay", ...base, "--id", second]);
  assert.equal(gone.code, 2);
  assert.match(gone.stderr, new RegExp(`^ttg: No dead letter "${second}" in job "dlq-ids"`));
});

Deno.test("a handler thread killed by a stray timer's throw dead-letters its chunk, with no stack trace on stderr", async () => {
  await using dir = await tempDir();
  const quirky = new URL("./fixtures/quirky_job.ts", import.meta.url).pathname;
  const base = ["--sqlite-path", `${dir.path}/ttg.db`, "--job-id", "crash"];
  const submit = await ttg(["submit", ...base, "--job", quirky, "--params", "1"].concat(
    ["--args", '{"mode": "crash"}'],
  ));
  assert.equal(submit.code, 0, submit.stderr);
  const work = await ttg(["worker", ...base, "--job", quirky, "--max-attempts", "1"].concat(
    ["--idle-timeout", "0.5"],
  ));
  assert.equal(work.code, 0, work.stderr);
  assert.doesNotMatch(work.stderr, /Uncaught \(in worker|^\s+at /m);
  const [letter] = JSON.parse((await ttg(["dlq", "list", ...base, "--json"])).stdout);
  assert.equal(letter.reason, "The handler thread crashed: Uncaught Error: stray timer blew up");
});

Deno.test("a mistyped flag or command is one line and a pointer to its --help, exit 2", async () => {
  const cases: [string[], string][] = [
    [
      ["run", "--wrokers", "3"],
      "ttg: unknown option '--wrokers' (Did you mean --workers?); see ttg run --help\n",
    ],
    [["rn"], "ttg: unknown command 'rn' (Did you mean run?); see ttg --help\n"],
    [["dlq", "replay", "--nope"], "ttg: unknown option '--nope'; see ttg dlq replay --help\n"],
    [["worker", "--batch"], "ttg: option '--batch <n>' argument missing; see ttg worker --help\n"],
    // status, results, reset and dlq take no failure-policy or logging flags: they use none.
    [["status", "--lease-ms", "100"], "ttg: unknown option '--lease-ms'; see ttg status --help\n"],
  ];
  for (const [args, stderr] of cases) {
    const out = await ttg(args);
    assert.deepEqual([out.code, out.stdout, out.stderr], [2, "", stderr], args.join(" "));
  }
});
