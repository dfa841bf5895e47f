/**
 * The Redis broker against a real Redis: the shared conformance suite (with the predecessor's
 * producer and worker, and a private redis-server it may kill), then what only Redis has: the
 * predecessor's wire format field for field, connection URLs and TLS, stream upkeep, fencing by
 * delivery count, live consumers from CLIENT LIST, and the real `ttg` program on a private server.
 *
 * Redis is `REDIS_URL`, else `REDIS_HOST`/`REDIS_PORT`, else 127.0.0.1:6379 (redis_support.ts).
 * Every case on it uses its own key prefix and deletes its keys; nothing is flushed. Cases that
 * kill Redis start their own redis-server on a free port.
 */
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import type { ChunkResult, ChunkTask, StoredResult } from "../brokers/broker.ts";
import { formatChunkId } from "../brokers/task.ts";
import { allResults } from "../brokers/results.ts";
import { BrokerError, ConfigError } from "../errors.ts";
import { openRedisBroker, type RedisBrokerOptions } from "../brokers/redis/redis.ts";
import {
  DEFAULT_KEY_PREFIX,
  encodeTask,
  GROUP,
  jobKeyBase,
  kvKey,
  streamKey,
} from "../brokers/redis/codec.ts";
import { closeClient, redisTarget } from "../brokers/redis/connection.ts";
import { SCRIPTS } from "../brokers/redis/scripts/mod.ts";
import { localPlan } from "../deploy/local.ts";
import { synth } from "../deploy/synth.ts";
import { defineJob } from "../jobs/define_job.ts";
import { computeRange } from "../jobs/sweep.ts";
import { planSweep } from "../workers/plan.ts";
import { InlineExecutor } from "../workers/executor.ts";
import { silentLogger } from "../workers/log.ts";
import { TtgWorker } from "../workers/worker.ts";
import { type ConformanceSetup, makeTasks, runBrokerConformance } from "./conformance.ts";
import { eventually, pullAll, resultFor, sleep } from "./conformance/support.ts";
import {
  assertReadsLegacyJob,
  freePort,
  runGeneratedContainers,
  ttg,
  ttgEntrypoint,
} from "./helpers.ts";
import { PrivateRedis, type PrivateRedisOptions } from "./servers.ts";
import { required } from "./targets.ts";
import { assertSweepNeedsCa, makeCertificates } from "./tls_certs.ts";
import {
  assertBusyHandlerKeepsItsLease,
  assertPausedWorkerCannotCommit,
} from "./stall_scenarios.ts";
import {
  deleteKeys,
  freshPrefix,
  rawClient,
  REDIS_URL,
  scanKeys,
  sharedTest,
  unreachable,
} from "./redis_support.ts";

const LEGACY_WORKER = new URL("./fixtures/legacy_redis_worker.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

async function hasCommand(command: string, ...args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(command, { args, stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

// A run that requires Redis (CI) fails the private-server cases when redis-server is missing.
const hasRedisServer = required("redis") || await hasCommand("redis-server", "--version");
const hasOpenssl = await hasCommand("openssl", "version");

// ---------------------------------------------------------------------------------------------
// Fixtures.

/** XADDs task entries exactly as the predecessor's producer (worker 0) did, and its group. */
async function legacyEnqueue(client: Redis, stream: string, chunks: number, size = 10) {
  const pipeline = client.pipeline();
  for (let i = 0; i < chunks; i++) {
    pipeline.xadd(
      stream,
      "*",
      "chunk_id",
      formatChunkId(i),
      "start_param",
      String(i * size),
      "end_param",
      String((i + 1) * size),
      "params_count",
      String(size),
      "total_params",
      String(chunks * size),
      "total_chunks",
      String(chunks),
      "created_at",
      "2026-02-09T10:00:00Z",
      "status",
      "pending",
    );
  }
  await pipeline.exec();
  await client.xgroup("CREATE", stream, GROUP, "0", "MKSTREAM").catch(() => {});
}

/**
 * Runs the legacy worker simulator to its exit (killed after 60 s) and returns the chunk ids it
 * completed.
 */
async function runLegacyWorker(args: string[]): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, LEGACY_WORKER, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `legacy worker failed: ${stderr}`);
  const last = new TextDecoder().decode(out.stdout).trim().split("\n").pop()!;
  return (JSON.parse(last) as { chunks: string[] }).chunks;
}

/** A conformance store: a key prefix on `url`, read and written around the broker by `client`. */
async function storeOn(
  url: string,
  extra: Pick<ConformanceSetup, "restart"> & { stop?(): Promise<void> } = {},
): Promise<ConformanceSetup> {
  const prefix = freshPrefix("conf");
  const client = await rawClient(url);
  return {
    open: (options?: Partial<RedisBrokerOptions>) =>
      openRedisBroker({ url, keyPrefix: prefix, ...options }),
    async injectRaw(jobId, message) {
      await client.xadd(streamKey(jobKeyBase(prefix, jobId), "0"), "*", "payload", message);
    },
    async traces(jobId) {
      const keys = await scanKeys(client, `${jobKeyBase(prefix, jobId)}:*`);
      // The job index and its control: fields of the key-value store's hashes.
      for (const space of ["jobs", "controls"] as const) {
        const hash = kvKey(prefix, space);
        if (await client.hexists(hash, jobId)) keys.push(`${hash} ${jobId}`);
      }
      return keys;
    },
    legacy: {
      jobId: prefix, // the job whose keys are the predecessor's names under this prefix
      enqueue: (chunks, size) => legacyEnqueue(client, `${prefix}:tasks`, chunks, size),
      async work(count) {
        const names = ["--tasks", `${prefix}:tasks`, "--results", `${prefix}:results`];
        const args = ["--url", url, ...names, "--consumer", "old-1", "--idle-ms", "1500"];
        return (await runLegacyWorker([...args, "--max-chunks", String(count)])).length;
      },
    },
    ...(extra.restart ? { restart: extra.restart } : {}),
    async cleanup() {
      await deleteKeys(client, prefix).catch(() => {});
      await closeClient(client, 1000);
      await extra.stop?.();
    },
  };
}

function sweepResult(task: ChunkTask, workerId: string): ChunkResult {
  return {
    value: computeRange(task.start, task.end),
    params: task.end - task.start,
    workerId,
    durationMs: 0.5,
    completedAt: new Date().toISOString(),
  };
}

/** Checks that results hold each chunk of [0, chunks) exactly once, with the sweep's sums. */
function assertExactSweep(results: readonly StoredResult[], chunks: number, size: number) {
  const ids = results.map((r) => r.chunkId).sort();
  assert.deepEqual(ids, Array.from({ length: chunks }, (_, i) => formatChunkId(i)));
  const sum = results.reduce((s, r) => s + (r.value as { sum: number }).sum, 0);
  assert.ok(Math.abs(sum - computeRange(0, chunks * size).sum) < 1e-6, `sum ${sum}`);
}

/** A case on a private redis-server of its own, stopped after it. */
function privateTest(
  name: string,
  options: PrivateRedisOptions,
  fn: (server: PrivateRedis) => Promise<void>,
  ignore = !hasRedisServer,
): void {
  Deno.test({
    name: `redis: ${name}`,
    ignore,
    sanitizeOps: true,
    sanitizeResources: true,
    async fn() {
      const server = await PrivateRedis.start(options);
      try {
        await fn(server);
      } finally {
        await server.stop();
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// The conformance suite.

runBrokerConformance({
  name: "redis",
  ignoreReason: unreachable,
  setup: () => storeOn(REDIS_URL),
  privateSetup: hasRedisServer
    ? async () => {
      const server = await PrivateRedis.start({ aof: true });
      return await storeOn(server.url, {
        async restart() {
          await server.kill("SIGKILL");
          await server.startAgain();
        },
        stop: () => server.stop(),
      });
    }
    : undefined,
});

// ---------------------------------------------------------------------------------------------
// The predecessor's wire format.

Deno.test({
  name: "redis: job ttg uses exactly the predecessor's stream, results and group names",
  sanitizeOps: true,
  sanitizeResources: true,
  fn() {
    const base = jobKeyBase(DEFAULT_KEY_PREFIX, "ttg");
    assert.equal(streamKey(base, "0"), "ttg:tasks");
    assert.equal(`${base}:results`, "ttg:results");
    assert.equal(GROUP, "ttg-workers");
    assert.equal(streamKey(jobKeyBase("ttg", "nightly"), "0"), "ttg:nightly:tasks");
    const fields = encodeTask(makeTasks("ttg", 43)[42]!);
    assert.deepEqual(fields.slice(0, 16).filter((_, i) => i % 2 === 0), [
      "chunk_id",
      "start_param",
      "end_param",
      "params_count",
      "total_params",
      "total_chunks",
      "created_at",
      "status",
    ]);
    assert.equal(fields[1], "00042");
    assert.equal(fields[5], "430"); // end_param is exclusive
  },
});

sharedTest(
  "task entries written by the predecessor are consumed, counted and mirrored in its format",
  async ({ prefix, client, open }) => {
    const broker = await open({ consumerId: "new-1" });
    await legacyEnqueue(client, `${prefix}:tasks`, 5);
    const deliveries = await pullAll(broker, prefix, 5);
    const first = deliveries.find((d) => d.task.chunkId === "00003")!;
    assert.deepEqual(first.task, {
      jobId: prefix,
      chunkId: "00003",
      handler: "ttg.sweep",
      start: 30,
      end: 40,
      totalParams: 50,
      totalChunks: 5,
      priority: 0,
      createdAt: "2026-02-09T10:00:00Z",
      args: {},
      divisible: true,
    });
    assert.equal(first.attempt, 1);
    const outcomes = await broker.ack(
      deliveries.map((d) => ({ delivery: d, result: sweepResult(d.task, "new-1") })),
    );
    assert.deepEqual(outcomes, ["stored", "stored", "stored", "stored", "stored"]);
    const stats = await broker.stats(prefix);
    assert.equal(stats.completed, 5);
    assert.equal(stats.ready + stats.inFlight, 0);
    assertExactSweep(await allResults(broker, prefix), 5, 10);
    // Legacy tools read the results stream: one entry per chunk in the predecessor's format.
    const mirrored = await client.xrange(`${prefix}:results`, "-", "+");
    assert.equal(mirrored.length, 5);
    const [, fields] = mirrored[0]!;
    assert.deepEqual(fields.filter((_, i) => i % 2 === 0), [
      "chunk_id",
      "worker_id",
      "status",
      "duration_seconds",
      "completed_at",
      "result_data",
      "params",
      "ttg",
    ]);
    const entry = Object.fromEntries(fields.flatMap((v, i, a) => i % 2 ? [] : [[v, a[i + 1]]]));
    assert.equal(entry.status, "completed");
    assert.equal(entry.worker_id, "new-1");
    assert.equal(entry.duration_seconds, "0.0005");
    assert.equal(entry.params, "10");
    // The predecessor's result fields, and the exact partials the sweep added since (ignored by
    // the predecessor's readers; combineSweep counts a result without them as its sum).
    assert.deepEqual(Object.keys(JSON.parse(entry.result_data ?? "null")).sort(), [
      "avg",
      "count",
      "max",
      "min",
      "sum",
      "sum_parts",
    ]);
  },
);

sharedTest(
  "publish() writes each entry field for field as the wire format documents",
  async ({ prefix, client, open }) => {
    const broker = await open();
    const [low, high] = makeTasks("job", 2);
    const tasks = [
      { ...low!, args: { work_ms: 2, note: 'é "quoted"' } },
      { ...high!, priority: 3, divisible: false },
    ];
    await broker.publish(tasks);
    const first = async (key: string) => (await client.xrange(key, "-", "+"))[0]?.[1];
    assert.deepEqual(await first(`${prefix}:job:tasks`), encodeTask(tasks[0]!));
    assert.deepEqual(await first(`${prefix}:job:tasks.p3`), encodeTask(tasks[1]!));
    assert.deepEqual(encodeTask(tasks[1]!).slice(16), [
      "job_id",
      "job",
      "handler",
      "ttg.sweep",
      "priority",
      "3",
      "args",
      '{"work_ms":0}',
      "divisible",
      "0",
    ]);
  },
);

sharedTest(
  "results() and stats() read a job produced entirely by legacy workers",
  async ({ prefix, client, open }) => {
    const broker = await open();
    const names = ["--url", REDIS_URL, "--tasks", `${prefix}:tasks`, "--results"];
    const common = [...names, `${prefix}:results`, "--idle-ms", "800"];
    const a = await runLegacyWorker([
      ...common,
      ...["--consumer", "worker-0", "--init-params", "2000", "--chunk-size", "100"],
      ...["--max-chunks", "8"],
    ]);
    const b = await runLegacyWorker([...common, "--consumer", "worker-1"]);
    assert.equal(a.length, 8);
    assert.equal(b.length, 12);
    assert.equal(await broker.getJob(prefix), null);
    const results = await allResults(broker, prefix);
    assertExactSweep(results, 20, 100);
    const r3 = results.find((r) => r.chunkId === "00003")!;
    assert.equal(r3.workerId, "worker-0");
    assert.equal(r3.params, 100);
    let stats = await broker.stats(prefix);
    assert.equal(stats.completed, 20);
    assert.equal(stats.completedParams, 2000, "a legacy result's parameters were not counted");
    assert.equal(stats.ready + stats.inFlight + stats.delayed, 0);
    assert.equal(stats.duplicates, 0);
    // A legacy worker that redid a chunk (its stale-task recovery) wrote a second result.
    await client.xadd(
      `${prefix}:results`,
      "*",
      ...["chunk_id", "00003", "worker_id", "worker-1", "status", "completed"],
      ...["duration_seconds", "0.01", "completed_at", new Date().toISOString()],
      ...["result_data", JSON.stringify(computeRange(300, 400))],
    );
    stats = await broker.stats(prefix);
    assert.equal(stats.completed, 20);
    assert.equal(stats.completedParams, 2000);
    assert.equal(stats.duplicates, 1);
    const again = await allResults(broker, prefix);
    assert.equal(again.length, 20);
    assert.equal(again.find((r) => r.chunkId === "00003")!.workerId, "worker-0");
  },
);

privateTest(
  "ttg status and ttg results read a job the predecessor's workers produced (ttg:tasks)",
  {},
  async (server) => {
    // A private server: the predecessor's names (job id ttg) are used as they are.
    const done = await runLegacyWorker(
      [
        "--url",
        server.url,
        "--consumer",
        "worker-0",
        "--init-params",
        "1000",
        "--chunk-size",
        "100",
      ],
    );
    assert.equal(done.length, 10);
    await assertReadsLegacyJob("redis", { REDIS_URL: server.url });
  },
);

sharedTest(
  "a result holding a lone surrogate is stored and read back as it was",
  async ({ open }) => {
    const broker = await open({ consumerId: "w1" });
    // JSON.stringify escapes a lone surrogate (\ud83d); the ack script must keep it intact.
    const label = "😀".slice(0, 1);
    const job = defineJob({
      name: "test.surrogate",
      run: (chunk) => ({ label: chunk.start === 30 ? label : "ok" }),
    });
    await broker.publish(
      planSweep({ jobId: "surrogate", handler: job.name, params: 100, chunkSize: 10 }).tasks,
    );
    const stop = AbortSignal.timeout(20_000);
    const report = await new TtgWorker({
      broker,
      jobId: "surrogate",
      workerId: "w1",
      job,
      executor: new InlineExecutor(job, silentLogger),
      log: silentLogger,
      concurrency: 4,
      batch: 32,
      heartbeatMs: 200,
      idleTimeoutMs: 500,
      graceMs: 1000,
      chunkTimeoutMs: 10_000,
      pollMs: 100,
    }).run(stop);
    assert.equal(stop.aborted, false, "the worker wedged on a result with a lone surrogate");
    assert.equal(report.exitReason, "idle");
    assert.equal(report.chunks, 10);
    const results = await allResults(broker, "surrogate");
    assert.deepEqual(results.find((r) => r.chunkId === formatChunkId(3))?.value, { label });
    assert.equal((await broker.deadLetters.list("surrogate")).length, 0);
  },
);

// ---------------------------------------------------------------------------------------------
// Streams, leases and consumers.

sharedTest(
  "a chunk coming back goes before new chunks of its priority, never above higher ones",
  async ({ open }) => {
    const broker = await open();
    const jobId = "job";
    const next = async () => (await pullAll(broker, jobId, 1, { max: 1 }))[0]!;
    const release = (d: Awaited<ReturnType<typeof next>>) =>
      broker.nack([{ delivery: d, kind: "released", reason: "test", workerId: "w" }]);
    const tasks = makeTasks(jobId, 4);
    await broker.publish([0, 10, 5, 5].map((priority, i) => ({ ...tasks[i]!, priority })));
    const b = await next();
    assert.equal(b.task.chunkId, "00001");
    await release(b);
    const c = await pullAll(broker, jobId, 2, { max: 2 });
    assert.deepEqual(c.map((d) => d.task.chunkId), ["00001", "00002"]);
    await release(c[1]!);
    const order = [(await next()).task.chunkId, (await next()).task.chunkId];
    order.push((await next()).task.chunkId);
    assert.deepEqual(order, ["00002", "00003", "00000"]);
  },
);

sharedTest(
  "reclaim trims acknowledged entries off the task stream; counts stay exact",
  async ({ prefix, client, open }) => {
    const broker = await open();
    await broker.publish(makeTasks("job", 1000));
    const stream = `${prefix}:job:tasks`;
    const ackSome = async (n: number) => {
      for (let done = 0; done < n;) {
        const got = await pullAll(broker, "job", Math.min(100, n - done), { max: 100 });
        await broker.ack(got.map((d) => ({ delivery: d, result: resultFor(d) })));
        done += got.length;
      }
    };
    await ackSome(500);
    const held = await pullAll(broker, "job", 1); // stays pending
    await ackSome(200);
    await broker.reclaim({ jobId: "job" });
    const stats = await broker.stats("job");
    assert.deepEqual([stats.ready, stats.inFlight, stats.completed], [299, 1, 700]);
    const left = await client.xlen(stream);
    assert.ok(left <= 500 + 100, `${left} entries kept: the acknowledged ones were not trimmed`);
    assert.ok(left >= 300, `${left} entries kept: unacknowledged ones were trimmed`);
    await broker.ack(held.map((d) => ({ delivery: d, result: resultFor(d) })));
    await ackSome(299);
    await broker.reclaim({ jobId: "job" });
    assert.ok((await client.xlen(stream)) <= 100, "a drained stream kept its entries");
    const end = await broker.stats("job");
    assert.equal(end.ready + end.inFlight, 0);
    assert.equal(end.completed, 1000);
  },
);

sharedTest(
  "a consumer that takes over its own lapsed claim is fenced off from it like any other holder",
  async ({ open }) => {
    const broker = await open({ consumerId: "solo", leaseMs: 300 });
    await broker.publish(makeTasks("job", 1));
    const [old] = await pullAll(broker, "job", 1);
    await sleep(400); // its heartbeat stalled: the lease lapsed
    assert.equal(await broker.reclaim({ jobId: "job" }), 1);
    const [fresh] = await pullAll(broker, "job", 1);
    assert.equal(fresh!.crashes, 1);
    assert.ok(fresh!.epoch > old!.epoch);
    assert.deepEqual(await broker.extend([old!]), ["zombie"]);
    assert.deepEqual(await broker.ack([{ delivery: old!, result: resultFor(old!) }]), ["zombie"]);
    assert.deepEqual(await broker.ack([{ delivery: fresh!, result: resultFor(fresh!) }]), [
      "stored",
    ]);
    const stats = await broker.stats("job");
    assert.deepEqual([stats.completed, stats.zombies, stats.reclaimed], [1, 2, 1]);
  },
);

sharedTest(
  "entries a reclaimer took over but never planned (it died between its two scripts) are taken over again and counted once",
  async ({ prefix, client, open }) => {
    const options = { leaseMs: 400, retry: { maxCrashes: 5 } };
    const holder = await open({ ...options, consumerId: "holder" });
    const live = await open({ ...options, consumerId: "live" });
    await holder.publish(makeTasks("job", 2));
    const held = await pullAll(holder, "job", 2);
    await sleep(500);
    // The takeover script alone, as a reclaimer that died before planning would have run it.
    const base = jobKeyBase(prefix, "job");
    const [, taken] = JSON.parse(
      await client.eval(
        SCRIPTS.ttgTakeover.lua,
        0,
        base,
        "gone-reclaimer",
        400,
        10,
        100,
        "",
      ) as string,
    ) as [string, unknown[]];
    assert.equal(taken.length, 2);
    const outcomes = await holder.ack(held.map((d) => ({ delivery: d, result: resultFor(d) })));
    assert.deepEqual(outcomes, ["zombie", "zombie"], "the takeover did not fence the holder");
    assert.equal((await live.stats("job")).inFlight, 2, "taken entries are still in flight");
    const recovered = await pullAll(live, "job", 2, { reclaim: true });
    assert.ok(recovered.every((d) => d.crashes === 1 && d.attempt === 1));
    await live.ack(recovered.map((d) => ({ delivery: d, result: resultFor(d, "live") })));
    const stats = await live.stats("job");
    assert.deepEqual([stats.completed, stats.reclaimed, stats.ready + stats.inFlight], [2, 2, 0]);
  },
);

sharedTest(
  "stats() counts a consumer whose connection closed no more, at once",
  async ({ open }) => {
    const a = await open({ consumerId: "a" });
    const b = await open({ consumerId: "b" });
    await a.publish(makeTasks("job", 2));
    await pullAll(a, "job", 1);
    await pullAll(b, "job", 1);
    assert.equal((await a.stats("job")).consumers, 2);
    await b.close();
    await eventually(async () => assert.equal((await a.stats("job")).consumers, 1), 2000);
  },
);

sharedTest(
  "a live consumer with a non-ASCII id is seen as alive: its chunk is not taken over",
  async ({ open }) => {
    const holder = await open({ consumerId: "wörker-é-1", leaseMs: 60_000 });
    const other = await open({ consumerId: "w2" });
    await holder.publish(makeTasks("job", 1));
    const [held] = await pullAll(holder, "job", 1);
    await sleep(1500);
    assert.equal(await other.reclaim({ jobId: "job" }), 0, "a live consumer's chunk was taken");
    assert.equal((await other.stats("job")).consumers, 1, "its holder is not counted alive");
    assert.deepEqual(await holder.ack([{ delivery: held!, result: resultFor(held!) }]), [
      "stored",
    ]);
  },
);

sharedTest("a dead-letter id is a stream entry id; anything else is a TypeError naming it", async ({
  open,
}) => {
  const broker = await open();
  for (const op of ["replay", "purge"] as const) {
    await assert.rejects(
      () => broker.deadLetters[op]({ jobId: "job", ids: ["1-0", "bogus"] }),
      { name: "TypeError", message: /^Invalid dead-letter id "bogus": .* like 1732780800000-0$/ },
    );
  }
  assert.equal(await broker.deadLetters.replay({ jobId: "job", ids: ["1-0"] }), 0);
  assert.equal(await broker.deadLetters.purge({ jobId: "job", ids: ["1-0"] }), 0);
});

// ---------------------------------------------------------------------------------------------
// Connections.

Deno.test({
  name: "redis: a URL's user, password, database and rediss:// reach the client options",
  sanitizeOps: true,
  sanitizeResources: true,
  fn() {
    const { options, where } = redisTarget({ url: "rediss://alice:p%40ss@cache.example:6380/2" });
    assert.equal(where, "cache.example:6380");
    assert.equal(options.username, "alice");
    assert.equal(options.password, "p@ss");
    assert.equal(options.db, 2);
    assert.deepEqual(options.tls, { servername: "cache.example" });
    const override = redisTarget({ url: "redis://x:y@h:1", username: "u", password: "p" });
    assert.equal(override.options.username, "u");
    assert.equal(override.options.password, "p");
    assert.equal(override.options.tls, undefined);
    assert.throws(() => redisTarget({ url: "http://h" }), ConfigError);
    assert.throws(() => redisTarget({ url: "http://u:s3cret@h" }), {
      message: 'Invalid --broker-url "http://u:***@h": expected a redis:// or rediss:// URL',
    });
  },
});

Deno.test({
  name: "redis: a Redis that is not there fails to open with UNAVAILABLE, naming where",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const port = freePort();
    await assert.rejects(
      () => openRedisBroker({ url: `redis://:s3cret@127.0.0.1:${port}`, connectTimeoutMs: 1000 }),
      (e: unknown) => {
        assert.ok(e instanceof BrokerError && e.code === "UNAVAILABLE", String(e));
        assert.match(
          e.message,
          new RegExp(`^Cannot open a connection on Redis at 127.0.0.1:${port}: `),
        );
        assert.doesNotMatch(e.message, /s3cret/);
        return true;
      },
    );
  },
});

privateTest(
  "close() while Redis is down ends waiting calls at once, then calls fail with CLOSED",
  {},
  async (server) => {
    const broker = await openRedisBroker({ url: server.url });
    const code = (e: unknown) => (e as BrokerError).code;
    const pulling = broker.pull({ jobId: "down", max: 1, waitMs: 5000 }).then(
      () => "answered",
      code,
    );
    await sleep(200);
    await server.kill("SIGKILL");
    const stats = broker.stats("down").then(() => "answered", code);
    await sleep(200);
    const t0 = performance.now();
    await broker.close();
    assert.equal(await pulling, "CLOSED");
    assert.equal(await stats, "CLOSED");
    assert.ok(performance.now() - t0 < 2000, "close() waited for Redis");
    await assert.rejects(() => broker.stats("down"), { code: "CLOSED" });
  },
);

Deno.test({
  name: "redis: rediss:// with an ACL user and password from the URL (and a wrong password fails)",
  ignore: !hasRedisServer || !hasOpenssl,
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const certs = await Deno.makeTempDir({ prefix: "ttg-redis-tls-" });
    const ca = await makeCertificates(certs);
    const server = await PrivateRedis.start({
      args: (port, dir) => [
        ...["--port", "0", "--tls-port", String(port), "--bind", "127.0.0.1", "--dir", dir],
        ...["--save", "", "--tls-auth-clients", "no"],
        ...["--tls-cert-file", `${certs}/server.crt`, "--tls-key-file", `${certs}/server.key`],
        ...["--tls-ca-cert-file", `${certs}/ca.crt`],
        ...["--user", "alice", "on", ">s3cret", "~*", "&*", "+@all", "--user", "default", "off"],
      ],
    });
    const url = `rediss://alice:s3cret@127.0.0.1:${server.port}`;
    try {
      const broker = await openRedisBroker({ url, tls: { ca } });
      try {
        await broker.publish(makeTasks("tls", 2));
        const got = await pullAll(broker, "tls", 2);
        assert.deepEqual(
          await broker.ack(got.map((d) => ({ delivery: d, result: sweepResult(d.task, "w") }))),
          ["stored", "stored"],
        );
        assert.equal((await broker.stats("tls")).completed, 2);
      } finally {
        await broker.close();
      }
      await assert.rejects(
        () => openRedisBroker({ url: url.replace("s3cret", "wrong"), tls: { ca } }),
        (e: unknown) => e instanceof BrokerError && e.code === "UNAVAILABLE",
      );
      await assertSweepNeedsCa("redis", url, `${certs}/ca.crt`);

      // The Kubernetes wiring: the submit, worker and report containers a deployment with
      // tls.secretName generates, run as processes with their generated env. Only what the
      // kubelet and this test's server decide differs: the port, the CA's mount path, the user.
      const { manifests } = synth({
        backend: "redis",
        tls: { secretName: "broker-tls" },
        job: { id: "tls-k8s", params: 400, chunkSize: 20, workMs: 0 },
        workers: { count: 2, idleTimeoutSeconds: 1 },
      }, { randomSecret: () => "s3cret" });
      const plan = localPlan(manifests, { entrypoint: ttgEntrypoint() });
      const local = {
        REDIS_PORT: String(server.port),
        REDIS_USERNAME: "alice",
        TTG_TLS_CA_FILE: `${certs}/ca.crt`,
      };
      for (const p of [...plan.submit, ...plan.workers, ...plan.report]) {
        assert.equal(p.env.REDIS_TLS, "true", p.name);
      }
      const k8sReport = await runGeneratedContainers(plan, local);
      assert.match(k8sReport, /chunks +20 planned → 20 completed, 0 dead-lettered/);
      const k8sStats = await ttg(["status", "--job-id", "tls-k8s", "--json"], {
        ...local,
        TTG_BACKEND: "redis",
        REDIS_TLS: "true",
        REDIS_PASSWORD: "s3cret",
      });
      assert.equal(k8sStats.code, 0, k8sStats.stderr);
      assert.equal(JSON.parse(k8sStats.stdout).stats.completed, 20);
    } finally {
      await server.stop();
      await Deno.remove(certs, { recursive: true });
    }
  },
});

// ---------------------------------------------------------------------------------------------
// The real `ttg` program and worker loop against a private redis-server.

privateTest(
  "ttg run --fault-demo counts every chunk once after a worker is SIGKILLed",
  {},
  async (server) => {
    const run = await ttg([
      ...["run", "--backend", "redis", "--broker-url", server.url, "--fault-demo", "--json"],
      ...["--workers", "3", "--work-ms", "2"],
    ]);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    assert.ok(Math.abs(report.aggregate.sum - 5000355.0) < 1e-6, `sum ${report.aggregate.sum}`);
    assert.equal(report.aggregate.count, 10_000);
    assert.equal(report.chunks.completed, 100);
    assert.equal(report.chunks.dead_lettered, 0);
    assert.equal(report.faults.workers_killed, 1);
    assert.equal(report.zombie_completions, 0);
    assert.match(run.stderr, /Fault demo: SIGKILLed worker-1/);
  },
);

const STALL_SCENARIOS = [
  [
    "a handler thread spinning for 3× the lease keeps its chunk: completed once, never reclaimed",
    assertBusyHandlerKeepsItsLease,
  ],
  [
    "a worker paused past its lease (SIGSTOP) cannot commit after SIGCONT",
    assertPausedWorkerCannotCommit,
  ],
] as const;

for (const [name, scenario] of STALL_SCENARIOS) {
  privateTest(name, {}, async (server) => {
    const observer = await openRedisBroker({ url: server.url, consumerId: "observer" });
    try {
      await scenario({
        brokerArgs: ["--backend", "redis", "--broker-url", server.url, "--job-id", "stall"],
        jobId: "stall",
        observer,
        leaseMs: 1000,
      });
    } finally {
      await observer.close();
    }
  });
}
