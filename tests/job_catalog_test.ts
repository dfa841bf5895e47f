/**
 * The fleet worker's catalog of jobs (workers/job_catalog.ts) over a real SQLite broker: jobs of
 * one module share one handler pool, a job whose module cannot be loaded is left out and named,
 * an idle pool is closed and reopened on use, and a job submitted later is found on the next
 * look, without waiting for the periodic listing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { JobRecord } from "../brokers/broker.ts";
import { openSqliteBroker } from "../brokers/sqlite/sqlite.ts";
import { BUILTIN_JOBS, loadJob } from "../jobs/load.ts";

const BUILTIN_SWEEP = BUILTIN_JOBS.get("ttg.sweep")!;
import { FleetCatalog, type HandlerSpec, type JobHandler } from "../workers/job_catalog.ts";
import { silentLogger } from "../workers/log.ts";

function record(jobId: string, module?: string): JobRecord {
  return {
    jobId,
    handler: "ttg.sweep",
    ...(module ? { module } : {}),
    totalParams: 10,
    totalChunks: 1,
    chunkSize: 10,
    createdAt: new Date().toISOString(),
    args: {},
  };
}

Deno.test("a fleet's jobs of one module share a pool; an unloadable job is left out; an idle pool closes and reopens on use; a new job is found at once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ttg-catalog-" });
  await using broker = await openSqliteBroker({ path: join(dir, "broker.db") });
  let now = 1_000_000;
  const made: string[] = [];
  let closed = 0;
  const createHandler = async (spec: HandlerSpec): Promise<JobHandler> => {
    made.push(spec.kind);
    const { job } = spec.kind === "builtin" ? { job: spec.job } : await loadJob(spec.path);
    return {
      job,
      executor: {
        mode: "inline",
        execute: () => Promise.reject(new Error("not run here")),
        close: () => Promise.resolve(void closed++),
        [Symbol.asyncDispose]: () => Promise.resolve(),
      },
    };
  };
  const catalog = new FleetCatalog({
    broker,
    pattern: "cat-*",
    jobsDir: dir,
    createHandler,
    log: silentLogger,
    now: () => now,
  });
  try {
    await broker.createJob(record("cat-a"));
    await broker.createJob(record("cat-b"));
    await broker.createJob(record("cat-missing", "missing.ts"));
    await broker.createJob(record("other"));
    await catalog.refresh();
    assert.deepEqual([...catalog.ids()].sort(), ["cat-a", "cat-b"]);
    assert.deepEqual(
      made,
      ["builtin", "module"],
      "one pool for both sweeps, one try of the module",
    );
    assert.equal(catalog.pools, 1);
    assert.match(catalog.unloadable().get("cat-missing") ?? "", /missing\.ts/);
    const a = await catalog.acquire("cat-a");
    const b = await catalog.acquire("cat-b");
    assert.ok(a && a === b, "both jobs run on the same pool");
    catalog.release("cat-a");
    catalog.release("cat-b");

    await broker.createJob(record("cat-c"));
    await catalog.refresh(); // the same instant: found through the index's version
    assert.deepEqual([...catalog.ids()].sort(), ["cat-a", "cat-b", "cat-c"]);
    assert.equal(made.length, 2, "the new job of a loaded module starts no pool");

    now += 61_000;
    await catalog.refresh();
    assert.equal(closed, 1, "the idle pool is closed");
    assert.equal(catalog.pools, 0);
    assert.deepEqual(
      [...catalog.ids()].sort(),
      ["cat-a", "cat-b", "cat-c"],
      "its jobs stay served",
    );
    assert.ok(await catalog.acquire("cat-c"), "a pull reopens it");
    assert.equal(made.filter((k) => k === "builtin").length, 2);
    catalog.release("cat-c");

    for (const id of ["cat-a", "cat-b", "cat-c"]) await broker.reset(id);
    await catalog.refresh();
    assert.deepEqual(catalog.ids(), []);
    assert.equal(closed, 2, "a pool no served job uses is closed at once");
    assert.equal(await catalog.acquire("cat-a"), undefined);
  } finally {
    await catalog.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a job reset while one of its chunks runs keeps its pool until the chunk is released, then the pool closes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ttg-catalog-" });
  await using broker = await openSqliteBroker({ path: join(dir, "broker.db") });
  let closed = 0;
  let now = 1_000_000;
  const catalog = new FleetCatalog({
    broker,
    pattern: "held-*",
    now: () => now,
    jobsDir: dir,
    createHandler: (spec) =>
      Promise.resolve({
        job: spec.kind === "builtin" ? spec.job : BUILTIN_SWEEP,
        executor: {
          mode: "inline",
          execute: () => Promise.reject(new Error("not run here")),
          close: () => Promise.resolve(void closed++),
          [Symbol.asyncDispose]: () => Promise.resolve(),
        },
      }),
    log: silentLogger,
  });
  try {
    await broker.createJob(record("held-a"));
    await catalog.refresh();
    assert.ok(await catalog.acquire("held-a"));
    await broker.reset("held-a");
    await catalog.refresh();
    assert.deepEqual(catalog.ids(), [], "a reset job is no longer pulled");
    assert.equal(closed, 0, "its running chunk keeps the pool open");
    catalog.release("held-a");
    now += 1000; // the next listing (nothing changed the job index since the last one)
    await catalog.refresh();
    assert.equal(closed, 1, "released, the pool no job uses is closed");
    assert.equal(catalog.pools, 0);
  } finally {
    await catalog.close();
    await Deno.remove(dir, { recursive: true });
  }
});
