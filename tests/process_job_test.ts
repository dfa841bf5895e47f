/**
 * Handlers in other languages through the real `ttg` program, on every broker (tests/targets.ts):
 * a Python sweep equal to the TypeScript one, poison parameters bisected, a timeout, an exit in
 * the middle of a chunk, a garbage line, a SIGKILLed worker leaving no handler behind, SIGTERM,
 * the README's Python job and shell one-liner, and a TypeScript job denied the network it did not
 * declare.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Broker, DeadLetter } from "../brokers/broker.ts";
import { allResults } from "../brokers/results.ts";
import { spawnTtg, ttg, until } from "./helpers.ts";
import {
  processTable,
  PY_ADAPTER_DIR,
  PY_SWEEP,
  PYTHON,
  QUIRKY,
  readmePythonJob,
} from "./process_helpers.ts";
import { type TargetRun, targets, targetTest } from "./targets.ts";

const FETCH_JOB = new URL("./fixtures/fetch_job.ts", import.meta.url).pathname;
const README = new URL("../README.md", import.meta.url);

/** The README's shell one-liner: each chunk's result is the sum of its parameters. */
const SHELL_ONE_LINER =
  `echo "{\\"ttg\\": 1, \\"ready\\": true}"; while read -r line; do s=\${line#*\\"start\\":}; s=\${s%%,*}; e=\${line#*\\"end\\":}; e=\${e%%,*}; echo "{\\"result\\": $(( (s + e - 1) * (e - s) / 2 ))}"; done`;

function jobId(kind: string): string {
  return `px-${kind}-${crypto.randomUUID().slice(0, 6)}`;
}

/** `--cmd` with an exact argv (no shell). */
function cmd(...argv: string[]): string[] {
  return ["--cmd", JSON.stringify(argv)];
}

async function observed(
  run: TargetRun,
  job: string,
  fn: (observer: Broker) => Promise<void>,
): Promise<void> {
  const observer = await run.open("observer");
  try {
    await fn(observer);
  } finally {
    await observer.reset(job).catch(() => {});
    await observer.close();
  }
}

/**
 * Submits a sweep of the job `handler` names (`--cmd …` or `--job …`), then runs one
 * `ttg worker` of it until the job is drained; returns the worker's log.
 */
async function submitAndWork(
  run: TargetRun,
  job: string,
  { handler, sweep = [], worker = [] }: { handler: string[]; sweep?: string[]; worker?: string[] },
): Promise<string> {
  const base = [...run.args, "--job-id", job, ...handler];
  const submitted = await ttg(["submit", ...base, "--work-ms", "0", ...sweep]);
  assert.equal(submitted.code, 0, submitted.stderr);
  const out = await ttg([
    "worker",
    ...base,
    "--idle-timeout",
    "1",
    "--concurrency",
    "2",
    ...worker,
  ]);
  assert.equal(out.code, 0, out.stderr);
  return out.stderr;
}

function ranges(letters: readonly DeadLetter[]) {
  return letters.map((l) => [l.task?.start, l.task?.end, l.kind, l.reason]).sort();
}

type Scenario = [name: string, fn: (run: TargetRun) => Promise<void>];

const SCENARIOS: Scenario[] = [
  [
    "a Python handler runs the sweep; its aggregate equals the TypeScript sweep's exactly, in ttg run and ttg results",
    async (run) => {
      const ts = jobId("ts");
      const py = jobId("py");
      await observed(run, ts, () =>
        observed(run, py, async () => {
          const sweep = ["--json", "--workers", "2", "--work-ms", "0"];
          const a = await ttg(["run", ...run.args, "--job-id", ts, ...sweep]);
          assert.equal(a.code, 0, a.stderr);
          const b = await ttg([
            "run",
            ...run.args,
            "--job-id",
            py,
            ...sweep,
            "--concurrency",
            "2",
            ...cmd(PYTHON, PY_SWEEP),
          ]);
          assert.equal(b.code, 0, b.stderr);
          const [expected, got] = [JSON.parse(a.stdout), JSON.parse(b.stdout)];
          assert.equal(got.handler, "ttg.cmd.sum", "the job record names its reducer");
          assert.equal(got.chunks.completed, 100);
          for (const key of ["sum", "count", "min", "max", "avg"]) {
            assert.equal(got.aggregate[key], expected.aggregate[key], key);
          }
          const results = await ttg(["results", ...run.args, "--job-id", py, "--json"]);
          assert.equal(results.code, 0, results.stderr);
          assert.deepEqual(JSON.parse(results.stdout).aggregate, got.aggregate);
        }));
    },
  ],
  [
    "a Python handler raising on two parameters ends with exactly those two dead-lettered and the rest counted",
    async (run) => {
      const job = jobId("poison");
      await observed(run, job, async (observer) => {
        await submitAndWork(run, job, {
          handler: cmd(PYTHON, QUIRKY, "poison", "1234", "5678"),
          worker: ["--max-attempts", "2", "--retry-base-ms", "10"],
        });
        assert.deepEqual(ranges(await observer.deadLetters.list(job)), [
          [1234, 1235, "failed", "ValueError: parameter 1234 is poison"],
          [5678, 5679, "failed", "ValueError: parameter 5678 is poison"],
        ]);
        const results = await allResults(observer, job);
        assert.equal(results.reduce((n, r) => n + r.params, 0), 9_998);
      });
    },
  ],
  [
    "a Python handler sleeping past the chunk timeout is killed with its children and the chunk dead-lettered as timeout",
    async (run) => {
      const job = jobId("timeout");
      const mark = `ttg-sleep-${crypto.randomUUID().slice(0, 8)}`;
      await observed(run, job, async (observer) => {
        await submitAndWork(run, job, {
          handler: cmd(PYTHON, QUIRKY, "sleep", "15", mark),
          sweep: ["--params", "40", "--chunk-size", "10"],
          worker: ["--chunk-timeout", "1", "--max-attempts", "1", "--min-split", "10"],
        });
        const [letter, ...others] = await observer.deadLetters.list(job);
        assert.deepEqual(others, []);
        assert.deepEqual([letter?.task?.start, letter?.task?.end, letter?.kind], [
          10,
          20,
          "timeout",
        ]);
        assert.match(letter!.reason, /timed out after 1000 ms \(its handler process was killed\)/);
        assert.equal((await observer.stats(job)).completed, 3);
        assert.deepEqual((await processTable()).filter((l) => l.includes(mark)), []);
      });
    },
  ],
  [
    "a Python handler that exits in the middle of a chunk is replaced, and the chunk is retried and completes",
    async (run) => {
      const job = jobId("exit");
      await observed(run, job, async (observer) => {
        const log = await submitAndWork(run, job, {
          handler: cmd(PYTHON, QUIRKY, "exit-once", "00003"),
          sweep: ["--params", "100", "--chunk-size", "10"],
          worker: ["--retry-base-ms", "10"],
        });
        assert.match(log, /exited with code 3 while running chunk 00003/);
        const stats = await observer.stats(job);
        assert.deepEqual([stats.completed, stats.deadLettered, stats.retried], [10, 0, 1]);
      });
    },
  ],
  [
    "a Python handler printing a line outside the protocol fails its chunk with the line quoted",
    async (run) => {
      const job = jobId("garbage");
      await observed(run, job, async (observer) => {
        await submitAndWork(run, job, {
          handler: cmd(PYTHON, QUIRKY, "garbage", "15"),
          sweep: ["--params", "40", "--chunk-size", "10"],
          worker: ["--max-attempts", "1", "--min-split", "10"],
        });
        const letters = await observer.deadLetters.list(job);
        assert.equal(letters.length, 1);
        assert.deepEqual([letters[0]!.task?.start, letters[0]!.kind], [10, "failed"]);
        assert.match(
          letters[0]!.reason,
          /printed a line outside the protocol: "Traceback\? no: this line is not the protocol" while running chunk 00001$/,
        );
      });
    },
  ],
  [
    "SIGKILL of a worker leaves none of its handler processes (nor their children) in the process table",
    async (run) => {
      const job = jobId("orphans");
      const mark = `ttg-orphan-${crypto.randomUUID().slice(0, 8)}`;
      const base = [...run.args, "--job-id", job];
      const handler = cmd(PYTHON, QUIRKY, "sleep", "5", mark);
      await observed(run, job, async () => {
        const submitted = await ttg(["submit", ...base, ...handler, "--params", "100"]);
        assert.equal(submitted.code, 0, submitted.stderr);
        const worker = spawnTtg(["worker", ...base, ...handler, "--concurrency", "3"]);
        // The worker's own command line holds the mark too (its --cmd): it is not one of them.
        const mine = async () =>
          (await processTable()).filter((l) =>
            l.includes(mark) && l.trim().split(/\s+/)[0] !== String(worker.pid)
          );
        // Three handlers, one of them in chunk 00000 with its `sleep 600` child.
        await until(
          async () => (await mine()).length === 4 || undefined,
          30_000,
          "three handler processes and a child",
        );
        const watchdog = (await processTable()).filter((l) =>
          l.includes("ttg-watchdog") && l.trim().split(/\s+/)[1] === String(worker.pid)
        );
        assert.equal(watchdog.length, 1, "the worker's watchdog runs");
        worker.kill("SIGKILL");
        await worker.output();
        const left = await until(
          async () => (await mine()).length === 0 ? [] : undefined,
          10_000,
          "the handler processes to go",
        ).catch(async () => await mine());
        assert.deepEqual(left, [], "orphaned handler processes");
        const watchdogPid = watchdog[0]!.trim().split(/\s+/)[0];
        await until(
          async () =>
            (await processTable()).some((l) => l.trim().split(/\s+/)[0] === watchdogPid)
              ? undefined
              : true,
          10_000,
          "the watchdog to exit after its work",
        );
      });
    },
  ],
  [
    "SIGTERM drains: a chunk done within the grace period is counted, one that is not is released and its handler killed",
    async (run) => {
      const job = jobId("drain");
      const mark = `ttg-drain-${crypto.randomUUID().slice(0, 8)}`;
      const base = [...run.args, "--job-id", job];
      const handler = cmd(PYTHON, QUIRKY, "drain", mark);
      await observed(run, job, async (observer) => {
        const submit = ["submit", ...base, ...handler, "--params", "20", "--chunk-size", "10"];
        const submitted = await ttg(submit);
        assert.equal(submitted.code, 0, submitted.stderr);
        const worker = spawnTtg(["worker", ...base, ...handler, "--concurrency", "2"]
          .concat(["--grace", "4", "--report-json"]));
        await until(
          async () =>
            (await processTable()).some((l) => l.includes(`sleep 600; : ${mark}`)) || undefined,
          30_000,
          "both chunks to run",
        );
        worker.kill("SIGTERM");
        const out = await worker.output();
        const report = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
        assert.equal(report.chunks, 1, "the short chunk finished within the grace period");
        const stats = await observer.stats(job);
        assert.deepEqual([stats.completed, stats.deadLettered, stats.ready + stats.delayed], [
          1,
          0,
          1,
        ]);
        assert.deepEqual((await processTable()).filter((l) => l.includes(mark)), []);
      });
    },
  ],
  [
    "the README's Python job and shell one-liner run as written",
    async (run) => {
      const dir = await Deno.makeTempDir({ prefix: "ttg-readme-" });
      const python = jobId("readme-py");
      const shell = jobId("readme-sh");
      try {
        await Deno.writeTextFile(`${dir}/squares.py`, await readmePythonJob());
        assert.ok((await Deno.readTextFile(README)).includes(`--cmd '${SHELL_ONE_LINER}'`));
        await observed(run, python, () =>
          observed(run, shell, async () => {
            const squares = await ttg([
              "run",
              ...run.args,
              "--job-id",
              python,
              "--json",
              "--workers",
              "1",
              "--cmd",
              `PYTHONPATH=${PY_ADAPTER_DIR} python3 ${dir}/squares.py`,
              "--params",
              "100000",
              "--chunk-size",
              "1000",
            ]);
            assert.equal(squares.code, 0, squares.stderr);
            assert.equal(JSON.parse(squares.stdout).aggregate, 333_328_333_350_000);
            const sum = await ttg(["run", ...run.args, "--job-id", shell, "--json"]
              .concat(["--workers", "1", "--cmd", SHELL_ONE_LINER]));
            assert.equal(sum.code, 0, sum.stderr);
            assert.equal(JSON.parse(sum.stdout).aggregate, 49_995_000); // 0 + 1 + … + 9999
          }));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  ],
  [
    "a TypeScript job without net permission that calls fetch is dead-lettered at once, the permission named",
    async (run) => {
      const job = jobId("fetch");
      await observed(run, job, async (observer) => {
        await submitAndWork(run, job, {
          handler: ["--job", FETCH_JOB],
          sweep: ["--params", "20", "--chunk-size", "10"],
        });
        const letters = await observer.deadLetters.list(job);
        assert.deepEqual(letters.map((l) => [l.kind, l.attempts]), [
          ["unrecoverable", 1],
          ["unrecoverable", 1],
        ]);
        assert.equal(
          letters[0]!.reason,
          'PermissionDenied: job "test.fetch" did not declare net access to "api.example.com:443" (declare it in defineJob({ permissions: { net: [...] } }))',
        );
      });
    },
  ],
];

for (const target of await targets()) {
  for (const [name, fn] of SCENARIOS) targetTest(target, name, fn);
}
