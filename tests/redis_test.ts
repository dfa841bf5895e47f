/**
 * The Redis broker against a real Redis: the shared conformance suite, then Redis-specific cases
 * (the predecessor's wire format, a mixed fleet, a Redis restart, malformed entries).
 *
 * Redis is `REDIS_URL`, else `REDIS_HOST`/`REDIS_PORT`, else 127.0.0.1:6379. Every case uses its
 * own key prefix and deletes its keys; nothing is flushed.
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import {
  type Broker,
  type ChunkResult,
  type ChunkTask,
  type Delivery,
  EMPTY_STATS,
  formatChunkId,
  type StoredResult,
} from "../brokers/contract.ts";
import { BrokerError, ConfigError } from "../brokers/errors.ts";
import { openRedisBroker, type RedisBrokerOptions } from "../brokers/redis.ts";
import { DEFAULT_KEY_PREFIX, encodeTask, jobKeyBase, streamKey } from "../brokers/redis_codec.ts";
import { redisTarget } from "../brokers/redis_connection.ts";
import { GROUP } from "../brokers/redis_scripts.ts";
import { localPlan } from "../deploy/local.ts";
import { synth } from "../deploy/synth.ts";
import { defineJob } from "../jobs/define_job.ts";
import { loadJob } from "../jobs/load.ts";
import { planSweep } from "../jobs/plan.ts";
import { computeRange } from "../jobs/sweep.ts";
import { InlineExecutor } from "../workers/executor.ts";
import { silentLogger } from "../workers/log.ts";
import { TtgWorker } from "../workers/worker.ts";
import { makeTasks, runBrokerConformance } from "./conformance.ts";
import {
  assertReadsLegacyJob,
  freePort,
  runGeneratedContainers,
  ttg,
  ttgEntrypoint,
  waitUntilListening,
} from "./helpers.ts";
import { assertSweepNeedsCa, makeCertificates } from "./tls_certs.ts";
import {
  assertBusyHandlerKeepsItsLease,
  assertPausedWorkerCannotCommit,
} from "./stall_scenarios.ts";

const REDIS_URL = Deno.env.get("REDIS_URL") ??
  `redis://${Deno.env.get("REDIS_HOST") ?? "127.0.0.1"}:${Deno.env.get("REDIS_PORT") ?? "6379"}`;

async function reachable(url: string): Promise<string | undefined> {
  const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.ping();
    return undefined;
  } catch (error) {
    return `Redis is not reachable at ${url}: ${(error as Error).message}`;
  } finally {
    client.disconnect();
  }
}

const unreachable = await reachable(REDIS_URL);

/** Deletes every key under `prefix:` (SCAN, never FLUSH). */
async function deleteKeys(client: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length) await client.unlink(...keys);
  } while (cursor !== "0");
}

runBrokerConformance({
  name: "redis",
  ignoreReason: unreachable,
  async setup() {
    const prefix = `ttgtest-${crypto.randomUUID().slice(0, 8)}`;
    const raw = new Redis(REDIS_URL, { lazyConnect: true });
    raw.on("error", () => {});
    await raw.connect();
    return {
      open: (o?: Partial<RedisBrokerOptions>) =>
        openRedisBroker({ url: REDIS_URL, keyPrefix: prefix, ...o }),
      async injectRaw(jobId: string, message: string) {
        await raw.xadd(`${prefix}:${jobId}:tasks`, "*", "payload", message);
      },
      async cleanup() {
        await deleteKeys(raw, prefix);
        await raw.quit();
      },
    };
  },
});

// ---------------------------------------------------------------------------------------------
// Redis-specific cases.

const LEGACY_WORKER = new URL("./fixtures/legacy_redis_worker.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** A fresh key prefix; the job whose id equals it uses the predecessor's names (`<p>:tasks`). */
function freshPrefix(kind: string): string {
  return `ttg${kind}-${crypto.randomUUID().slice(0, 8)}`;
}

async function rawClient(url = REDIS_URL): Promise<Redis> {
  const client = new Redis(url, { lazyConnect: true, protocol: 2 });
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** XADDs a task entry exactly as the Python worker 0 did, and creates the group as it did. */
async function legacyEnqueue(client: Redis, stream: string, chunks: number, size = 10) {
  for (let i = 0; i < chunks; i++) {
    await client.xadd(
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
  await client.xgroup("CREATE", stream, "ttg-workers", "0", "MKSTREAM").catch(() => {});
}

/** Runs the legacy worker simulator to its exit and returns the chunk ids it completed. */
async function runLegacyWorker(args: string[]): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, LEGACY_WORKER, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `legacy worker failed: ${stderr}`);
  const last = new TextDecoder().decode(out.stdout).trim().split("\n").pop()!;
  return (JSON.parse(last) as { chunks: string[] }).chunks;
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

/** Pulls and acks with the built-in sweep until `stop` aborts; errors are retried. */
async function consume(
  broker: Broker,
  jobId: string,
  stop: AbortSignal,
  options: { max?: number; pauseMs?: number } = {},
): Promise<string[]> {
  const done: string[] = [];
  let lastReclaim = 0;
  while (!stop.aborted) {
    try {
      if (Date.now() - lastReclaim > 300) {
        lastReclaim = Date.now();
        await broker.reclaim({ jobId });
      }
      const batch = await broker.pull({ jobId, max: options.max ?? 20, waitMs: 100, signal: stop });
      if (batch.length === 0) continue;
      const outcomes = await broker.ack(
        batch.map((d) => ({ delivery: d, result: sweepResult(d.task, broker.options.consumerId) })),
      );
      batch.forEach((d, i) => outcomes[i] === "stored" && done.push(d.task.chunkId));
      if (options.pauseMs) await sleep(options.pauseMs);
    } catch {
      await sleep(100); // Redis restarting: the client reconnects
    }
  }
  return done;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Checks that results hold each chunk of [0, chunks) exactly once, with the sweep's sums. */
function assertExactSweep(results: readonly StoredResult[], chunks: number, size: number) {
  const ids = results.map((r) => r.chunkId).sort();
  assert.deepEqual(ids, Array.from({ length: chunks }, (_, i) => formatChunkId(i)));
  const sum = results.reduce((s, r) => s + (r.value as { sum: number }).sum, 0);
  assert.ok(Math.abs(sum - computeRange(0, chunks * size).sum) < 1e-6, `sum ${sum}`);
}

/** The run_id of a Redis server: it changes when the server restarts. */
async function serverRunId(url: string): Promise<string> {
  const client = await rawClient(url);
  try {
    return /run_id:(\w+)/.exec(await client.info("server"))?.[1] ?? "";
  } finally {
    await client.quit();
  }
}

/** A private redis-server on a free port, persisting to its own directory. */
class PrivateRedis {
  readonly dir: string;
  readonly port: number;
  readonly #args: string[];
  #child: Deno.ChildProcess | undefined;

  private constructor(dir: string, port: number, args: string[]) {
    this.dir = dir;
    this.port = port;
    this.#args = args;
  }

  static async start(args: (port: number, dir: string) => string[]): Promise<PrivateRedis> {
    const dir = await Deno.makeTempDir({ prefix: "ttg-redis-test-" });
    const port = freePort();
    const server = new PrivateRedis(dir, port, args(port, dir));
    await server.restart();
    return server;
  }

  /** Starts the server (again) and waits until it accepts connections. */
  async restart(): Promise<void> {
    this.#child = new Deno.Command("redis-server", {
      args: this.#args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitUntilListening(this.port, { timeoutMs: 5000, pollMs: 25 });
  }

  async kill(signal: Deno.Signal = "SIGKILL"): Promise<void> {
    this.#child?.kill(signal);
    await this.#child?.status;
    this.#child = undefined;
  }

  async stop(): Promise<void> {
    await this.kill("SIGTERM");
    await Deno.remove(this.dir, { recursive: true });
  }
}

async function hasCommand(command: string, ...args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(command, { args, stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

const hasRedisServer = await hasCommand("redis-server", "--version");
const hasOpenssl = await hasCommand("openssl", "version");

Deno.test({
  name: "redis: job ttg uses exactly the predecessor's stream, results and group names",
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

Deno.test({
  name: "redis: a URL's user, password, database and rediss:// reach the client options",
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
  },
});

Deno.test({
  name: "redis: task entries written by the predecessor are consumed, counted and mirrored",
  ignore: unreachable !== undefined,
  async fn() {
    const prefix = freshPrefix("leg");
    const client = await rawClient();
    const broker = await openRedisBroker({
      url: REDIS_URL,
      keyPrefix: prefix,
      consumerId: "new-1",
    });
    try {
      await legacyEnqueue(client, `${prefix}:tasks`, 5);
      const deliveries = [];
      while (deliveries.length < 5) {
        deliveries.push(...await broker.pull({ jobId: prefix, max: 5, waitMs: 500 }));
      }
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
      assertExactSweep(await broker.results(prefix), 5, 10);
      // Legacy tools read the results stream: one entry per chunk in the predecessor's format.
      const mirrored = await client.xrange(`${prefix}:results`, "-", "+");
      assert.equal(mirrored.length, 5);
      const entry = Object.fromEntries(
        mirrored[0]![1].flatMap((v, i, a) => i % 2 ? [] : [[v, a[i + 1]]]),
      );
      assert.equal(entry.status, "completed");
      assert.equal(entry.worker_id, "new-1");
      assert.ok(Number(entry.duration_seconds) >= 0);
      assert.ok(entry.completed_at);
      assert.deepEqual(Object.keys(JSON.parse(entry.result_data ?? "null")).sort(), [
        "avg",
        "count",
        "max",
        "min",
        "sum",
      ]);
    } finally {
      await broker.reset(prefix);
      await broker.close();
      await deleteKeys(client, prefix);
      await client.quit();
    }
  },
});

Deno.test({
  name: "redis: publish() writes each entry field for field as the wire format documents",
  ignore: unreachable !== undefined,
  async fn() {
    const prefix = freshPrefix("wire");
    const client = await rawClient();
    const broker = await openRedisBroker({ url: REDIS_URL, keyPrefix: prefix });
    try {
      const [low, high] = makeTasks("job", 2);
      const tasks = [
        { ...low!, args: { work_ms: 2, note: 'é "quoted"' } },
        { ...high!, priority: 3, divisible: false },
      ];
      await broker.publish(tasks);
      const first = async (key: string) => (await client.xrange(key, "-", "+"))[0]?.[1];
      const band0 = await first(`${prefix}:job:tasks`);
      const band3 = await first(`${prefix}:job:tasks.p3`);
      assert.deepEqual(band0, encodeTask(tasks[0]!));
      assert.deepEqual(band3, encodeTask(tasks[1]!));
    } finally {
      await broker.reset("job");
      await broker.close();
      await deleteKeys(client, prefix);
      await client.quit();
    }
  },
});

Deno.test({
  name:
    "redis: a chunk coming back goes before new chunks of its priority, never above higher ones",
  ignore: unreachable !== undefined,
  async fn() {
    const prefix = freshPrefix("prio");
    const client = await rawClient();
    const broker = await openRedisBroker({ url: REDIS_URL, keyPrefix: prefix });
    const jobId = "job";
    const next = async () => {
      const [d] = await broker.pull({ jobId, max: 1, waitMs: 1000 });
      assert.ok(d, "nothing to pull");
      return d;
    };
    const release = (d: Delivery) =>
      broker.nack([{ delivery: d, kind: "released", reason: "test", workerId: "w" }]);
    try {
      const tasks = makeTasks(jobId, 4);
      await broker.publish([0, 10, 5, 5].map((priority, i) => ({ ...tasks[i]!, priority })));
      const b = await next();
      assert.equal(b.task.chunkId, "00001");
      await release(b);
      const c = await broker.pull({ jobId, max: 2, waitMs: 1000 });
      assert.deepEqual(c.map((d) => d.task.chunkId), ["00001", "00002"]);
      await release(c[1]!);
      const order = [(await next()).task.chunkId, (await next()).task.chunkId];
      order.push((await next()).task.chunkId);
      assert.deepEqual(order, ["00002", "00003", "00000"]);
    } finally {
      await broker.reset(jobId);
      await broker.close();
      await deleteKeys(client, prefix);
      await client.quit();
    }
  },
});

Deno.test({
  name: "redis: results() and stats() read a job produced entirely by legacy workers",
  ignore: unreachable !== undefined,
  async fn() {
    const prefix = freshPrefix("old");
    const client = await rawClient();
    const broker = await openRedisBroker({ url: REDIS_URL, keyPrefix: prefix });
    const names = ["--url", REDIS_URL, "--tasks", `${prefix}:tasks`, "--results"];
    const common = [...names, `${prefix}:results`, "--idle-ms", "800"];
    try {
      const a = await runLegacyWorker([
        ...common,
        "--consumer",
        "worker-0",
        "--init-params",
        "2000",
        "--chunk-size",
        "100",
        "--max-chunks",
        "8",
      ]);
      const b = await runLegacyWorker([...common, "--consumer", "worker-1"]);
      assert.equal(a.length, 8);
      assert.equal(b.length, 12);
      assert.equal(await broker.getJob(prefix), null);
      const results = await broker.results(prefix);
      assertExactSweep(results, 20, 100);
      const r3 = results.find((r) => r.chunkId === "00003")!;
      assert.equal(r3.workerId, "worker-0");
      assert.equal(r3.params, 100);
      let stats = await broker.stats(prefix);
      assert.equal(stats.completed, 20);
      assert.equal(stats.ready + stats.inFlight + stats.delayed, 0);
      assert.equal(stats.duplicates, 0);
      // A legacy worker that redid a chunk (its stale-task recovery) wrote a second result.
      await client.xadd(
        `${prefix}:results`,
        "*",
        "chunk_id",
        "00003",
        "worker_id",
        "worker-1",
        "status",
        "completed",
        "duration_seconds",
        "0.01",
        "completed_at",
        new Date().toISOString(),
        "result_data",
        JSON.stringify(computeRange(300, 400)),
      );
      stats = await broker.stats(prefix);
      assert.equal(stats.completed, 20);
      assert.equal(stats.duplicates, 1);
      const again = await broker.results(prefix);
      assert.equal(again.length, 20);
      assert.equal(again.find((r) => r.chunkId === "00003")!.workerId, "worker-0");
    } finally {
      await broker.reset(prefix);
      await broker.close();
      await deleteKeys(client, prefix);
      await client.quit();
    }
  },
});

Deno.test({
  name:
    "redis: ttg status and ttg results read a job the predecessor's workers produced (ttg:tasks)",
  ignore: !hasRedisServer,
  async fn() {
    // A private server: the predecessor's names (job id ttg) are used as they are.
    const server = await PrivateRedis.start(plainRedis);
    const url = `redis://127.0.0.1:${server.port}`;
    try {
      const done = await runLegacyWorker(
        ["--url", url, "--consumer", "worker-0", "--init-params", "1000", "--chunk-size", "100"],
      );
      assert.equal(done.length, 10);
      await assertReadsLegacyJob("redis", { REDIS_URL: url });
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "redis: a mixed fleet of new and legacy workers counts every chunk exactly once",
  ignore: unreachable !== undefined,
  async fn() {
    const prefix = freshPrefix("mix");
    const client = await rawClient();
    const open = (consumerId: string) =>
      openRedisBroker({ url: REDIS_URL, keyPrefix: prefix, consumerId, leaseMs: 10_000 });
    const coordinator = await open("coordinator");
    const ours = [await open("new-1"), await open("new-2")];
    const stop = new AbortController();
    try {
      await coordinator.publish(makeTasks(prefix, 300, { args: {} }));
      const legacy = ["old-1", "old-2"].map((consumer) =>
        runLegacyWorker([
          "--url",
          REDIS_URL,
          "--tasks",
          `${prefix}:tasks`,
          "--results",
          `${prefix}:results`,
          "--consumer",
          consumer,
          "--idle-ms",
          "1000",
        ])
      );
      const mine = ours.map((b) => consume(b, prefix, stop.signal, { max: 5, pauseMs: 10 }));
      await waitFor(
        async () => (await coordinator.stats(prefix)).completed >= 300,
        30_000,
        "300 chunks",
      );
      stop.abort();
      const byLegacy = (await Promise.all(legacy)).flat();
      const byOurs = (await Promise.all(mine)).flat();
      assert.ok(byLegacy.length > 0, "the legacy workers took no chunk");
      assert.ok(byOurs.length > 0, "the new workers took no chunk");
      assert.equal(byLegacy.length + byOurs.length, 300);
      assertExactSweep(await coordinator.results(prefix), 300, 10);
      const stats = await coordinator.stats(prefix);
      assert.equal(stats.completed, 300);
      assert.equal(stats.duplicates, 0);
      assert.equal(stats.ready + stats.inFlight + stats.delayed + stats.deadLettered, 0);
    } finally {
      stop.abort();
      await coordinator.reset(prefix);
      for (const b of [coordinator, ...ours]) await b.close();
      await deleteKeys(client, prefix);
      await client.quit();
    }
  },
});

Deno.test({
  name: "redis: malformed entries are dead-lettered with their reason and never block the stream",
  ignore: unreachable !== undefined,
  async fn() {
    const prefix = freshPrefix("bad");
    const jobId = "job";
    const client = await rawClient();
    const broker = await openRedisBroker({ url: REDIS_URL, keyPrefix: prefix });
    const stream = `${prefix}:${jobId}:tasks`;
    try {
      const [valid] = makeTasks(jobId, 1);
      const fields = encodeTask(valid!);
      const withField = (name: string, value: string) =>
        fields.map((v, i) => (i % 2 === 1 && fields[i - 1] === name ? value : v));
      await client.xadd(stream, "*", "chunk_id", "00007", "start_param", "70"); // no end_param
      await client.xadd(stream, "*", ...withField("args", "{oops"));
      await client.xadd(stream, "*", ...withField("job_id", "someone-else"));
      await client.xadd(stream, "*", "payload", "{not json");
      await broker.publish([valid!]);
      const got = await broker.pull({ jobId, max: 10, waitMs: 1000 });
      assert.deepEqual(got.map((d) => d.task.chunkId), ["00000"]);
      const letters = await broker.deadLetters.list(jobId);
      assert.equal(letters.length, 4);
      assert.ok(letters.every((l) => l.kind === "malformed" && l.task === null && l.raw));
      const reasons = letters.map((l) => l.reason).join("\n");
      assert.match(reasons, /end_param/);
      assert.match(reasons, /args/);
      assert.match(reasons, /unknown job "someone-else"/);
      assert.match(reasons, /not JSON/);
      assert.ok(letters.some((l) => l.raw === "{not json"));
      assert.equal(
        await broker.deadLetters.replay({ jobId }),
        0,
        "malformed letters are not replayed",
      );
      const stats = await broker.stats(jobId);
      assert.equal(stats.deadLettered, 4);
      assert.equal(stats.inFlight, 1);
    } finally {
      await broker.reset(jobId);
      await broker.close();
      await deleteKeys(client, prefix);
      await client.quit();
    }
  },
});

Deno.test({
  name: "redis: a Redis restart in the middle of a job loses and double-counts no chunk",
  ignore: !hasRedisServer,
  async fn() {
    const server = await PrivateRedis.start((port, dir) => [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--appendonly",
      "yes",
      "--save",
      "",
    ]);
    const url = `redis://127.0.0.1:${server.port}`;
    const jobId = "restart";
    const open = (consumerId: string) => openRedisBroker({ url, consumerId, leaseMs: 2000 });
    const coordinator = await open("coordinator");
    const workers = [await open("w-1"), await open("w-2")];
    const stop = new AbortController();
    try {
      await coordinator.publish(makeTasks(jobId, 3000, { args: {} }));
      await sleep(1100); // appendfsync everysec: the published tasks are on disk
      const loops = workers.map((b) => consume(b, jobId, stop.signal, { max: 20, pauseMs: 2 }));
      await waitFor(
        async () => (await coordinator.stats(jobId)).completed >= 900,
        30_000,
        "30% of the chunks",
      );
      const runId = await serverRunId(url);
      const atKill = (await coordinator.stats(jobId)).completed;
      await server.kill("SIGKILL");
      assert.ok(atKill < 3000, "the job ended before Redis was killed");
      await sleep(300);
      await server.restart();
      await waitFor(
        async () => (await coordinator.stats(jobId).catch(() => EMPTY_STATS)).completed >= 3000,
        60_000,
        "every chunk after the restart",
      );
      stop.abort();
      const done = (await Promise.all(loops)).flat();
      assert.notEqual(await serverRunId(url), runId, "Redis was not restarted");
      assert.ok(done.length >= 2000, `the workers stored only ${done.length} chunks`);
      assertExactSweep(await coordinator.results(jobId), 3000, 10);
      const stats = await coordinator.stats(jobId);
      assert.equal(stats.completed, 3000);
      assert.equal(stats.ready + stats.inFlight + stats.delayed + stats.deadLettered, 0);
    } finally {
      stop.abort();
      for (const b of [coordinator, ...workers]) await b.close();
      await server.stop();
    }
  },
});

Deno.test({
  name:
    "redis: close() while Redis is down ends waiting calls at once, then calls fail with CLOSED",
  ignore: !hasRedisServer,
  async fn() {
    const server = await PrivateRedis.start((port, dir) => plainRedis(port, dir));
    try {
      const broker = await openRedisBroker({ url: `redis://127.0.0.1:${server.port}` });
      const pulling = broker.pull({ jobId: "down", max: 1, waitMs: 5000 });
      await sleep(200);
      await server.kill("SIGKILL");
      const stats = broker.stats("down").then(() => "answered", (e) => e.code);
      await sleep(200);
      const t0 = performance.now();
      await broker.close();
      assert.deepEqual(await pulling, []);
      assert.equal(await stats, "CLOSED");
      assert.ok(performance.now() - t0 < 2000, "close() waited for Redis");
      await assert.rejects(
        () => broker.stats("down"),
        (e: unknown) => e instanceof BrokerError && e.code === "CLOSED",
      );
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "redis: rediss:// with an ACL user and password from the URL (and a wrong password fails)",
  ignore: !hasRedisServer || !hasOpenssl,
  async fn() {
    const certs = await Deno.makeTempDir({ prefix: "ttg-redis-tls-" });
    const ca = await makeCertificates(certs);
    const server = await PrivateRedis.start((port, dir) => [
      "--port",
      "0",
      "--tls-port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--tls-cert-file",
      `${certs}/server.crt`,
      "--tls-key-file",
      `${certs}/server.key`,
      "--tls-ca-cert-file",
      `${certs}/ca.crt`,
      "--tls-auth-clients",
      "no",
      "--user",
      "alice",
      "on",
      ">s3cret",
      "~*",
      "&*",
      "+@all",
      "--user",
      "default",
      "off",
    ]);
    const url = `rediss://alice:s3cret@127.0.0.1:${server.port}`;
    try {
      const broker = await openRedisBroker({ url, tls: { ca } });
      try {
        await broker.publish(makeTasks("tls", 2));
        const got = await broker.pull({ jobId: "tls", max: 2, waitMs: 1000 });
        assert.equal(got.length, 2);
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
      assert.match(k8sReport, /chunks +20\/20 completed, 0 dead-lettered/);
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
// Issue 7 on Redis: the real `ttg` program and worker loop against a private redis-server.

function plainRedis(port: number, dir: string): string[] {
  return ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", ""];
}

Deno.test({
  name: "redis: ttg run --fault-demo counts every chunk once after a worker is SIGKILLed",
  ignore: !hasRedisServer,
  async fn() {
    const server = await PrivateRedis.start(plainRedis);
    try {
      const url = `redis://127.0.0.1:${server.port}`;
      const run = await ttg([
        "run",
        "--backend",
        "redis",
        "--broker-url",
        url,
        "--fault-demo",
        "--json",
        "--workers",
        "3",
        "--work-ms",
        "2",
      ]);
      assert.equal(run.code, 0, run.stderr);
      const report = JSON.parse(run.stdout);
      assert.ok(Math.abs(report.aggregate.sum - 5000355.0) < 1e-6, `sum ${report.aggregate.sum}`);
      assert.equal(report.aggregate.count, 10_000);
      assert.equal(report.chunks.completed, 100);
      assert.equal(report.chunks.dead_lettered, 0);
      assert.equal(report.faults.workers_killed, 1);
      assert.match(run.stderr, /Fault demo: SIGKILLed worker-1/);
    } finally {
      await server.stop();
    }
  },
});

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
  Deno.test({
    name: `redis: ${name}`,
    ignore: !hasRedisServer,
    async fn() {
      const server = await PrivateRedis.start(plainRedis);
      const url = `redis://127.0.0.1:${server.port}`;
      const observer = await openRedisBroker({ url, consumerId: "observer" });
      try {
        await scenario({
          brokerArgs: ["--backend", "redis", "--broker-url", url, "--job-id", "stall"],
          jobId: "stall",
          observer,
          leaseMs: 1000,
        });
      } finally {
        await observer.close();
        await server.stop();
      }
    },
  });
}

Deno.test({
  name: "redis: poison-chunk bisection dead-letters exactly the failing parameters",
  ignore: unreachable !== undefined,
  async fn() {
    const prefix = freshPrefix("poison");
    const client = await rawClient();
    const broker = await openRedisBroker({
      url: REDIS_URL,
      keyPrefix: prefix,
      consumerId: "w1",
      retry: { maxAttempts: 2, baseDelayMs: 1, factor: 1, maxDelayMs: 1 },
    });
    try {
      const { job } = await loadJob("tests/fixtures/poison_job.ts");
      const plan = planSweep({
        jobId: "poison",
        handler: job.name,
        params: 10_000,
        chunkSize: 100,
        args: { poison: [1234, 5678] },
      });
      await broker.publish(plan.tasks);
      const report = await new TtgWorker({
        broker,
        jobId: "poison",
        workerId: "w1",
        job,
        executor: new InlineExecutor(job, silentLogger),
        log: silentLogger,
        concurrency: 4,
        batch: 128,
        heartbeatMs: 200,
        idleTimeoutMs: 500,
        graceMs: 1000,
        chunkTimeoutMs: 10_000,
        pollMs: 100,
      }).run(new AbortController().signal);
      assert.equal(report.exitReason, "idle");
      const results = await broker.results("poison");
      assert.equal(results.reduce((n, r) => n + r.params, 0), 9_998);
      const letters = await broker.deadLetters.list("poison");
      assert.deepEqual(
        letters.map((l) => [l.task?.start, l.task?.end, l.reason]).sort(),
        [[1234, 1235, "parameter 1234 is poison"], [5678, 5679, "parameter 5678 is poison"]],
      );
      const stats = await broker.stats("poison");
      assert.equal(stats.deadLettered, 2);
      assert.equal(stats.duplicates + stats.zombies, 0);
    } finally {
      await broker.reset("poison");
      await broker.close();
      await deleteKeys(client, prefix);
      await client.quit();
    }
  },
});

Deno.test({
  name: "redis: a result holding a lone surrogate is stored and read back as it was",
  ignore: unreachable !== undefined,
  async fn() {
    const prefix = freshPrefix("surrogate");
    const client = await rawClient();
    const broker = await openRedisBroker({ url: REDIS_URL, keyPrefix: prefix, consumerId: "w1" });
    try {
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
      const results = await broker.results("surrogate");
      const odd = results.find((r) => r.chunkId === formatChunkId(3));
      assert.deepEqual(odd?.value, { label });
      assert.equal(await broker.deadLetters.list("surrogate").then((l) => l.length), 0);
    } finally {
      await broker.reset("surrogate");
      await broker.close();
      await deleteKeys(client, prefix);
      await client.quit();
    }
  },
});

Deno.test({
  name: "redis: a live consumer with a non-ASCII id is seen as alive: its chunk is not taken over",
  ignore: unreachable !== undefined,
  async fn() {
    const prefix = freshPrefix("utf8");
    const client = await rawClient();
    const holder = await openRedisBroker({
      url: REDIS_URL,
      keyPrefix: prefix,
      consumerId: "wörker-é-1",
      leaseMs: 60_000,
    });
    const other = await openRedisBroker({ url: REDIS_URL, keyPrefix: prefix, consumerId: "w2" });
    try {
      await holder.publish(makeTasks("job", 1));
      const [held] = await holder.pull({ jobId: "job", max: 1, waitMs: 1000 });
      assert.ok(held);
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(await other.reclaim({ jobId: "job" }), 0, "a live consumer's chunk was taken");
      assert.deepEqual(
        await holder.ack([{
          delivery: held,
          result: { value: 1, params: 10, workerId: "wörker-é-1", durationMs: 1, completedAt: "" },
        }]),
        ["stored"],
      );
    } finally {
      await holder.reset("job");
      await holder.close();
      await other.close();
      await deleteKeys(client, prefix);
      await client.quit();
    }
  },
});

Deno.test({
  name: "redis: a dead-letter id that cannot be a stream id is a TypeError naming it",
  ignore: unreachable !== undefined,
  async fn() {
    const broker = await openRedisBroker({ url: REDIS_URL, keyPrefix: freshPrefix("dlqid") });
    try {
      for (const op of ["replay", "purge"] as const) {
        await assert.rejects(
          () => broker.deadLetters[op]({ jobId: "job", ids: ["1-0", "bogus"] }),
          { name: "TypeError", message: /Invalid dead-letter id "bogus"/ },
        );
      }
      assert.equal(await broker.deadLetters.replay({ jobId: "job", ids: ["1-0"] }), 0);
    } finally {
      await broker.close();
    }
  },
});

Deno.test({
  name: "redis: reclaim trims acknowledged entries off the task stream; counts stay exact",
  ignore: unreachable !== undefined,
  async fn() {
    const prefix = freshPrefix("trim");
    const client = await rawClient();
    const broker = await openRedisBroker({ url: REDIS_URL, keyPrefix: prefix });
    try {
      await broker.publish(makeTasks("job", 1000));
      const stream = `${prefix}:job:tasks`;
      const ackSome = async (n: number) => {
        let done = 0;
        while (done < n) {
          const got = await broker.pull({
            jobId: "job",
            max: Math.min(100, n - done),
            waitMs: 500,
          });
          await broker.ack(got.map((d) => ({
            delivery: d,
            result: { value: 1, params: 10, workerId: "w", durationMs: 1, completedAt: "" },
          })));
          done += got.length;
        }
      };
      await ackSome(500);
      const held = await broker.pull({ jobId: "job", max: 1, waitMs: 500 }); // stays pending
      await ackSome(200);
      await broker.reclaim({ jobId: "job" });
      const stats = await broker.stats("job");
      assert.equal(stats.ready, 299);
      assert.equal(stats.inFlight, 1);
      assert.equal(stats.completed, 700);
      const left = await client.xlen(stream);
      assert.ok(left <= 500 + 100, `${left} entries kept: the acknowledged ones were not trimmed`);
      assert.ok(left >= 300, `${left} entries kept: unacknowledged ones were trimmed`);
      await broker.ack(held.map((d) => ({
        delivery: d,
        result: { value: 1, params: 10, workerId: "w", durationMs: 1, completedAt: "" },
      })));
      await ackSome(299);
      await broker.reclaim({ jobId: "job" });
      assert.ok((await client.xlen(stream)) <= 100, "a drained stream kept its entries");
      const end = await broker.stats("job");
      assert.equal(end.ready + end.inFlight, 0);
      assert.equal(end.completed, 1000);
    } finally {
      await broker.reset("job");
      await broker.close();
      await deleteKeys(client, prefix);
      await client.quit();
    }
  },
});
