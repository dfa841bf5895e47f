/**
 * Redis section of `deno task bench` (issue 4 "Performance"), also runnable alone:
 *
 * ```sh
 * deno run -A bench/redis.ts --chunks 100000 --rounds 3  # a private redis-server on a free port
 * deno run -A bench/redis.ts --url redis://127.0.0.1:6379  # an existing Redis (own job ids, reset after)
 * ```
 *
 * Figures, measured in one run against one Redis:
 * - raw cycle: one ioredis client pipelines XADD of N entries (the fields of a real chunk) in
 *   batches of 100, then XREADGROUP COUNT 100 + XACK until drained; entries/s over both phases
 *   (the same cycle with 1-field entries is shown too, for scale: the chunk's fields cost about
 *   half the raw speed);
 * - end to end: `ttg run --backend redis` no-op sweep of N chunks × 10 parameters with 3 worker
 *   processes (enqueue → result stored → ack), chunks/s, beside the raw cycle;
 * - recovery: seconds from SIGKILL of one of 3 `ttg worker` processes (default lease and
 *   heartbeat) to the last of the chunks it held completing elsewhere, in a no-op sweep of at most
 *   50,000 chunks killed at ~30%;
 * - worker peak RSS (VmHWM, reported by each worker);
 * - server time per call of the hot-path scripts (claim, extend, ack) over batches of 256, from
 *   INFO commandstats (EVALSHA µs before and after each phase, one consumer, nothing else running
 *   on a private server).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { formatChunkId } from "../brokers/task.ts";
import { openRedisBroker } from "../brokers/redis/redis.ts";
import { encodeTask, jobKeyBase } from "../brokers/redis/codec.ts";
import { peakRssMb, runSweepBench } from "./e2e.ts";
import { type KillTarget, recoveryAfterKill } from "./recovery.ts";
import { startRedisServer } from "./redis_server.ts";
import { COST_BATCH, type ScriptCosts, scriptCosts } from "./redis_scripts.ts";
import { spread } from "./stats.ts";
import { type BenchRow, renderTable } from "./table.ts";

/** Options of {@linkcode benchRedis}. */
export interface RedisBenchOptions {
  /** Chunks of the sweep (and entries of the raw cycle). @default 100000 */
  readonly chunks?: number;
  /** Redis to use; without it a private redis-server is started on a free port. */
  readonly url?: string;
  /** Skip the SIGKILL recovery figure. @default false */
  readonly skipRecovery?: boolean;
  /**
   * Rounds of (raw cycle, end to end), alternating; each figure is the median of its rounds, so
   * a noisy neighbour on a shared machine skews both alike. @default 1
   */
  readonly rounds?: number;
}

/** Runs the Redis section and returns its rows. */
export async function benchRedis(options: RedisBenchOptions = {}): Promise<BenchRow[]> {
  const chunks = options.chunks ?? 100_000;
  const server = options.url ? undefined : await startRedisServer();
  const url = options.url ?? server!.url;
  try {
    const rounds = Math.max(1, options.rounds ?? 1);
    const raws: number[] = [];
    const tiny: number[] = [];
    const sweeps: number[] = [];
    let peakRss = 0;
    for (let round = 0; round < rounds; round++) {
      raws.push(await rawRedisCycle(url, chunks));
      tiny.push(await rawRedisCycle(url, chunks, ["chunk_id", formatChunkId(42)]));
      const jobId = `bench-${crypto.randomUUID().slice(0, 8)}`;
      try {
        const report = await runSweepBench({
          backend: "redis",
          chunks,
          extraArgs: ["--broker-url", url, "--job-id", jobId, "--batch", "256"],
        });
        sweeps.push(report.chunks_per_second);
        peakRss = Math.max(peakRss, peakRssMb(report));
      } finally {
        await resetJob(url, jobId);
      }
    }
    const where = server ? "private redis-server" : url.replace(/\/\/[^@/]*@/, "//***@");
    const of = rounds > 1 ? `, median of ${rounds}` : "";
    const raw = spread(raws).median;
    const rows: BenchRow[] = [
      {
        section: "redis",
        figure: `raw cycle, ${chunks} entries, one client (${where}${of})`,
        value: raw,
        unit: "entries/s",
      },
      {
        section: "redis",
        figure: `raw cycle with 1-field entries instead (for scale)${of}`,
        value: spread(tiny).median,
        unit: "entries/s",
      },
      {
        section: "redis",
        figure: `no-op sweep, ${chunks} chunks × 10, 3 workers${of}`,
        value: spread(sweeps).median,
        unit: "chunks/s",
        rawLimit: raw,
      },
    ];
    if (!options.skipRecovery) {
      const client = new Redis(url, { lazyConnect: true, protocol: 2 });
      await client.connect();
      const recovery = await recoveryAfterKill(
        redisKillTarget(url, client),
        Math.min(Math.max(chunks, 20_000), 50_000),
      ).finally(() => client.quit());
      rows.push({
        section: "redis",
        figure: `SIGKILL → last of its ${recovery.held} chunks done elsewhere (defaults)`,
        value: recovery.seconds,
        unit: "s",
      });
    }
    const costs: ScriptCosts[] = [];
    for (let round = 0; round < rounds; round++) costs.push(await scriptCosts(url, chunks));
    for (const name of ["claim", "extend", "ack"] as const) {
      rows.push({
        section: "redis",
        figure: `${name} script, batches of ${COST_BATCH}, server time (INFO commandstats)${of}`,
        value: spread(costs.map((c) => c[name])).median,
        unit: "µs/call",
      });
    }
    rows.push({
      section: "redis",
      figure: "worker peak RSS",
      value: peakRss,
      unit: "MB",
    });
    return rows;
  } finally {
    await server?.stop();
  }
}

/**
 * The raw cycle of one client: entries per second over the XADD and XREADGROUP+XACK phases. The
 * entries carry the fields of a real chunk (13 pairs) unless `fields` says otherwise.
 */
export async function rawRedisCycle(
  url: string,
  entries: number,
  fields?: readonly string[],
): Promise<number> {
  const client = new Redis(url, { lazyConnect: true, protocol: 2 });
  await client.connect();
  const key = `ttgbench-raw-${crypto.randomUUID().slice(0, 8)}`;
  const entry = fields ?? encodeTask({
    jobId: "bench",
    chunkId: formatChunkId(42),
    handler: "ttg.sweep",
    start: 420,
    end: 430,
    totalParams: entries * 10,
    totalChunks: entries,
    priority: 0,
    createdAt: new Date().toISOString(),
    args: { work_ms: 0 },
    divisible: true,
  });
  try {
    await client.xgroup("CREATE", key, "raw", "0", "MKSTREAM");
    const t0 = performance.now();
    for (let i = 0; i < entries; i += 100) {
      const pipeline = client.pipeline();
      for (let j = i; j < Math.min(entries, i + 100); j++) pipeline.xadd(key, "*", ...entry);
      await pipeline.exec();
    }
    let drained = 0;
    for (;;) {
      const reply = await client.xreadgroup(
        "GROUP",
        "raw",
        "raw-1",
        "COUNT",
        100,
        "STREAMS",
        key,
        ">",
      ) as [string, [string, string[]][]][] | null;
      const batch = reply?.[0]?.[1] ?? [];
      if (batch.length === 0) break;
      await client.xack(key, "raw", ...batch.map(([id]) => id));
      drained += batch.length;
    }
    const seconds = (performance.now() - t0) / 1000;
    if (drained !== entries) throw new Error(`Raw cycle drained ${drained} of ${entries} entries`);
    return entries / seconds;
  } finally {
    await client.del(key);
    await client.quit();
  }
}

/** The Redis at `url` as the recovery figure needs it (held chunks: the job's XPENDING). */
function redisKillTarget(url: string, client: Redis): KillTarget {
  return {
    flags: ["--backend", "redis", "--broker-url", url],
    open: (consumerId) => openRedisBroker({ url, consumerId }),
    held: (jobId, consumer) => heldChunks(client, jobKeyBase("ttg", jobId), consumer),
  };
}

/** Chunk ids of the entries `consumer` holds (XPENDING) on every task stream of a job. */
async function heldChunks(client: Redis, base: string, consumer: string): Promise<Set<string>> {
  const keys = [`${base}:tasks`, `${base}:redo`];
  const held = new Set<string>();
  for (const key of keys) {
    if (!(await client.exists(key))) continue;
    const pending = await client.xpending(key, "ttg-workers", "-", "+", 100_000, consumer) as [
      string,
      ...unknown[],
    ][];
    for (const [id] of pending) {
      const [entry] = await client.xrange(key, id, id);
      const fields = entry?.[1] ?? [];
      const at = fields.indexOf("chunk_id");
      if (at >= 0) held.add(fields[at + 1]!);
    }
  }
  return held;
}

async function resetJob(url: string, jobId: string): Promise<void> {
  const broker = await openRedisBroker({ url, consumerId: `bench-${Deno.pid}` });
  try {
    await broker.reset(jobId);
  } finally {
    await broker.close();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      chunks: { type: "string", default: "100000" },
      url: { type: "string" },
      "skip-recovery": { type: "boolean", default: false },
      rounds: { type: "string", default: "1" },
    },
  });
  const chunks = Number(values.chunks);
  if (!(Number.isInteger(chunks) && chunks > 0)) {
    console.error(`bench: Invalid --chunks "${values.chunks}": expected a whole number above 0`);
    Deno.exit(2);
  }
  const rows = await benchRedis({
    chunks,
    url: values.url,
    skipRecovery: values["skip-recovery"],
    rounds: Number(values.rounds),
  });
  console.log(renderTable(rows));
}
