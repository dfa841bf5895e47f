import assert from "node:assert/strict";
import { defineJob, isUnrecoverable, unrecoverable } from "../jobs/define_job.ts";
import { loadJob } from "../jobs/load.ts";
import { planSweep } from "../workers/plan.ts";
import { combineSweep, computeRange, sweepValue } from "../jobs/sweep.ts";
import { bisect } from "../brokers/policy.ts";
import { staticShare } from "../workers/static_mode.ts";
import { tempDir, ttg } from "./helpers.ts";

const COMMAND_JOB = new URL("./fixtures/command_job.ts", import.meta.url).pathname;

Deno.test("ttg.sweep reproduces the predecessor: 10,000 parameters sum to 5000355.0", () => {
  assert.equal(sweepValue(5), 48 + 0.5);
  assert.equal(sweepValue(1234), ((1234 * 7 + 13) % 1000) + 0.34);
  const chunks = planSweep({ jobId: "j", params: 10_000, chunkSize: 100 }).tasks;
  const total = combineSweep(chunks.map((t) => computeRange(t.start, t.end)));
  assert.equal(total.sum, 5000355, "the correctly rounded sum");
  assert.equal(total.count, 10_000);
  assert.equal(total.min, computeRange(0, 10_000).min);
  assert.equal(total.max, computeRange(0, 10_000).max);
  // The fraction comes from a table: the same bits as the predecessor's parseFloat, every time.
  const predecessor = (p: number) => ((p * 7 + 13) % 1000) + parseFloat("0." + String(p % 100));
  for (const p of [...Array(1000).keys(), 123_456_789, 1e12 + 57]) {
    assert.ok(Object.is(sweepValue(p), predecessor(p)), `parameter ${p}`);
  }
});

Deno.test("planSweep() makes 5-digit chunk ids and a shorter last chunk", () => {
  const plan = planSweep({ jobId: "j", params: 1050, chunkSize: 100, priority: 4 });
  assert.equal(plan.tasks.length, 11);
  assert.equal(plan.tasks[10]!.chunkId, "00010");
  assert.equal(plan.tasks[10]!.end, 1050);
  assert.equal(plan.record.totalChunks, 11);
  assert.ok(plan.tasks.every((t) => t.priority === 4 && t.divisible));
});

Deno.test("bisect() halves a chunk down to the minimum size and never an indivisible one", () => {
  const [task] = planSweep({ jobId: "j", params: 100, chunkSize: 100 }).tasks;
  const halves = bisect(task!, 1)!;
  assert.deepEqual(halves.map((h) => [h.chunkId, h.start, h.end]), [["00000.0", 0, 50], [
    "00000.1",
    50,
    100,
  ]]);
  assert.equal(bisect({ ...task!, start: 0, end: 1 }, 1), undefined);
  assert.equal(bisect({ ...task!, end: 60 }, 40), undefined);
  assert.equal(bisect({ ...task!, divisible: false }, 1), undefined);
});

Deno.test("static mode splits parameters across pods like the predecessor's milestone 1", () => {
  const shares = [0, 1, 2].map((i) => staticShare(10_000, 3, i));
  assert.deepEqual(shares.map((s) => [s.start, s.end]), [[0, 3334], [3334, 6667], [6667, 10_000]]);
  assert.throws(() => staticShare(100, 3, 3), RangeError);
});

Deno.test("defineJob() rejects a job without a name or run function", () => {
  assert.throws(() => defineJob({ name: "", run: () => 1 }), TypeError);
  assert.throws(() => defineJob({ name: "x" } as never), TypeError);
  assert.equal(defineJob({ name: "ok", run: () => 1 }).name, "ok");
  assert.ok(isUnrecoverable(unrecoverable(new Error("bad"))));
  assert.ok(!isUnrecoverable(new Error("bad")));
});

Deno.test("loadJob() loads a module's default job and names the file when it cannot", async () => {
  const loaded = await loadJob("tests/fixtures/poison_job.ts");
  assert.equal(loaded.job.name, "test.poison");
  await assert.rejects(
    () => loadJob("tests/fixtures/missing.ts"),
    /Cannot load job "tests\/fixtures\/missing.ts": the file does not exist/,
  );
  await assert.rejects(
    () => loadJob("tests/fixtures/not_a_job.ts"),
    /its default export is not a job/,
  );
  assert.equal((await loadJob()).job.name, "ttg.sweep");
});

Deno.test("loadJob() names the line and column of a job module's syntax error, or of what it threw", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ttg-test-" });
  try {
    await Deno.writeTextFile(
      `${dir}/syntax.ts`,
      'export default {\n  name: "x",\n  run() { return 1 +; },\n};\n',
    );
    await Deno.writeTextFile(`${dir}/throws.ts`, 'const a = 1;\nthrow new Error("no config");\n');
    await assert.rejects(
      () => loadJob(`${dir}/syntax.ts`),
      (e: Error) =>
        e.message ===
          `Cannot load job "${dir}/syntax.ts": SyntaxError: Expression expected at ${dir}/syntax.ts:3:21`,
    );
    await assert.rejects(
      () => loadJob(`${dir}/throws.ts`),
      (e: Error) =>
        e.message === `Cannot load job "${dir}/throws.ts": no config at ${dir}/throws.ts:2:7`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a command job from a module runs with its env and cwd and reduces with its own reduce; --reduce concat keeps chunk order", async () => {
  await using dir = await tempDir();
  const db = ["--sqlite-path", `${dir.path}/cmd.db`, "--workers", "1", "--json"];
  const fromModule = await ttg(["run", ...db, "--job-id", "module", "--job", COMMAND_JOB]
    .concat(["--params", "50", "--chunk-size", "10"]));
  assert.equal(fromModule.code, 0, fromModule.stderr);
  assert.deepEqual(JSON.parse(fromModule.stdout).aggregate, {
    starts: [0, 10, 20, 30, 40],
    cwds: ["/"],
    tags: ["from-the-module"],
  });
  // Each chunk's sum of its parameters, in chunk order whatever order they completed in.
  const sums =
    `echo '{"ttg": 1, "ready": true}'; while read -r line; do s=\${line#*\\"start\\":}; ` +
    `s=\${s%%,*}; echo "{\\"result\\": $s}"; done`;
  const concat = await ttg(["run", ...db, "--job-id", "concat", "--cmd", sums, "--reduce"]
    .concat(["concat", "--params", "40", "--chunk-size", "10", "--concurrency", "4"]));
  assert.equal(concat.code, 0, concat.stderr);
  assert.deepEqual(JSON.parse(concat.stdout).aggregate, [0, 10, 20, 30]);
});
