/**
 * One fleet for many jobs, with real `ttg worker --all-jobs` processes on a SQLite file: jobs
 * submitted before and after the fleet started all complete exactly once, each with its own
 * handler (a built-in, a module under --jobs-dir); a job whose module the fleet cannot load is
 * left alone (not taken, not dead-lettered, shown in `ttg status`); `ttg reset` of one job leaves
 * the others running; an urgent job overtakes a long one already running; SIGTERM drains.
 *
 * @module
 */
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { openSqliteBroker } from "../brokers/sqlite/sqlite.ts";
import { allResults } from "../brokers/results.ts";
import { spawnTtg, tempDir, ttg, until } from "./helpers.ts";

/** The fleet's --jobs-dir: the repository, where the tests run (so `tests/fixtures/…` resolves). */
const ROOT = dirname(fileURLToPath(new URL("../deno.json", import.meta.url)));

interface Fleet {
  readonly db: string;
  readonly workers: Deno.ChildProcess[];
  stop(): Promise<number[]>;
}

function startFleet(db: string, count: number, extra: readonly string[] = []): Fleet {
  const workers = Array.from({ length: count }, (_, i) =>
    spawnTtg([
      "worker",
      "--all-jobs",
      "--jobs-dir",
      ROOT,
      "--sqlite-path",
      db,
      "--worker-id",
      `fleet-${i}`,
      "--idle-timeout",
      "0",
      "--heartbeat-ms",
      "200",
      ...extra,
    ]));
  return {
    db,
    workers,
    async stop() {
      for (const w of workers) w.kill("SIGTERM");
      return await Promise.all(workers.map(async (w) => (await w.output()).code));
    },
  };
}

async function submit(db: string, jobId: string, ...args: string[]): Promise<void> {
  const out = await ttg(["submit", "--sqlite-path", db, "--job-id", jobId, ...args]);
  assert.equal(out.code, 0, out.stderr);
}

async function stats(db: string, jobId: string) {
  const broker = await openSqliteBroker({ path: db });
  try {
    return await broker.stats(jobId);
  } finally {
    await broker.close();
  }
}

async function done(db: string, jobId: string, chunks: number, timeoutMs = 60_000) {
  return await until(
    async () => {
      const s = await stats(db, jobId);
      return s.completed === chunks ? s : undefined;
    },
    timeoutMs,
    `job "${jobId}" to complete its ${chunks} chunks`,
  );
}

Deno.test("a fleet serves every job: built-in and module handlers, jobs submitted later, exactly once; an unloadable job is left alone; reset of one job leaves the others", async () => {
  await using dir = await tempDir();
  const db = `${dir.path}/fleet.db`;
  await submit(db, "early", "--params", "3000", "--chunk-size", "10", "--work-ms", "1");
  await submit(db, "module", "--job", "tests/fixtures/quirky_job.ts", "--params", "400");
  // A module the fleet must not load: outside its --jobs-dir.
  const foreign = `${dir.path}/foreign_job.ts`;
  await Deno.writeTextFile(
    foreign,
    (await Deno.readTextFile(`${ROOT}/tests/fixtures/quirky_job.ts`)).replace(
      "../../jobs/define_job.ts",
      new URL("../jobs/define_job.ts", import.meta.url).href,
    ),
  );
  await submit(db, "outside", "--job", foreign, "--params", "100", "--chunk-size", "10");
  const fleet = startFleet(db, 2);
  try {
    await until(async () => (await stats(db, "early")).completed > 0 || undefined, 30_000, "work");
    await submit(db, "late", "--params", "500", "--chunk-size", "10", "--work-ms", "1");
    await submit(db, "doomed", "--params", "100000", "--chunk-size", "100", "--work-ms", "5");
    await until(
      async () => (await stats(db, "doomed")).completed > 0 || undefined,
      30_000,
      "doomed",
    );
    assert.equal((await ttg(["reset", "--sqlite-path", db, "--job-id", "doomed"])).code, 0);
    for (const [jobId, chunks] of [["early", 300], ["module", 4], ["late", 50]] as const) {
      const s = await done(db, jobId, chunks);
      assert.equal(s.duplicates, 0);
      assert.equal(s.deadLettered, 0);
    }
    const broker = await openSqliteBroker({ path: db });
    try {
      const module = await allResults(broker, "module");
      assert.deepEqual(
        module.map((r) => r.value),
        Array(4).fill({ count: 100 }),
        "its own handler",
      );
      assert.equal((await allResults(broker, "late")).length, 50, "results kept per job");
    } finally {
      await broker.close();
    }
    const outside = await stats(db, "outside");
    assert.equal(outside.ready, 10, "the unloadable job's chunks are not taken");
    assert.equal(outside.deadLettered, 0);
    const status = await ttg(["status", "--sqlite-path", db, "--job-id", "outside"]);
    assert.match(
      status.stdout,
      /unloadable +2 fleet worker\(s\) cannot load its handler: .*outside the jobs directory/,
    );
    assert.equal((await stats(db, "doomed")).ready, 0, "the reset job is gone");
  } finally {
    assert.deepEqual(await fleet.stop(), [0, 0]);
  }
});

Deno.test("on one fleet, an urgent job submitted mid-run of a long one is done long before it", async () => {
  await using dir = await tempDir();
  const db = `${dir.path}/fleet.db`;
  await submit(db, "long", "--params", "3000", "--chunk-size", "10", "--work-ms", "2");
  const fleet = startFleet(db, 1, ["--concurrency", "2"]);
  try {
    await until(async () => (await stats(db, "long")).completed >= 10 || undefined, 30_000, "work");
    await submit(
      db,
      "urgent",
      "--params",
      "100",
      "--chunk-size",
      "10",
      "--priority",
      "10",
      "--work-ms",
      "2",
    );
    await done(db, "urgent", 10);
    const long = await stats(db, "long");
    assert.ok(
      long.completed < 200,
      `the long job had ${long.completed} of 300 done when the urgent one was`,
    );
    await done(db, "long", 300);
  } finally {
    assert.deepEqual(await fleet.stop(), [0]);
  }
});

Deno.test("a job's --max-in-flight caps its chunks running at once over the whole fleet", async () => {
  await using dir = await tempDir();
  const db = `${dir.path}/fleet.db`;
  await submit(
    db,
    "capped",
    "--params",
    "300",
    "--chunk-size",
    "10",
    "--work-ms",
    "20",
    "--max-in-flight",
    "2",
  );
  const fleet = startFleet(db, 2, ["--concurrency", "4"]);
  try {
    let peak = 0;
    await until(
      async () => {
        const s = await stats(db, "capped");
        peak = Math.max(peak, s.inFlight);
        return s.completed === 30 ? s : undefined;
      },
      60_000,
      "the capped job to complete",
    );
    assert.ok(peak >= 1 && peak <= 2, `at most 2 in flight, saw ${peak}`);
  } finally {
    assert.deepEqual(await fleet.stop(), [0, 0]);
  }
});
