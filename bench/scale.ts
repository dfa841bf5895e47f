/**
 * The scale section (`deno task bench --only scale`, not in the default run: it takes minutes):
 * one `ttg run --json` of 10,000,000 parameters in 1,000,000 chunks (`--work-ms 0`, 3 workers,
 * `--batch 256`) per broker, with
 * - the enqueue rate while the workers already consume: chunks from the job record's appearance
 *   to the last chunk queued, read from the broker's counters every 100 ms, beside the raw bulk
 *   append of the same broker (enqueue.ts);
 * - chunks/s of the whole run (its report) beside the raw claim cycle of the same broker;
 * - the coordinator's peak RSS (VmHWM of the `ttg run` process, read every 100 ms until it
 *   exits: growth in its last 100 ms would be missed) and the workers' (their reports);
 * - broker memory: Redis INFO `used_memory` before and after (results included), SQLite's
 *   database files after, per chunk;
 * - the aggregate's sum beside the exact sum of the same parameters (5000355000 for 10^7).
 *
 * @module
 */
import { Redis } from "ioredis";
import { computeRange } from "../jobs/sweep.ts";
import type { JobReport } from "../workers/report.ts";
import { rawAppend } from "./enqueue.ts";
import { type BenchRow, measured, skipped } from "./table.ts";
import { type Backend, type BenchTarget, firstLine, resetJobs, withTarget } from "./targets.ts";
import { DENO_RUN } from "./ttg_process.ts";

/** Options of {@linkcode benchScale}. */
export interface ScaleOptions {
  /** Chunks of the job (× 10 parameters). @default 1000000 */
  readonly chunks?: number;
  /** Runs. @default 1 */
  readonly runs?: number;
  /** @default sqlite and redis */
  readonly backends: readonly Backend[];
}

/** What one scale run measured. */
interface ScaleRun {
  readonly enqueue: number;
  readonly rawAppend: number;
  readonly chunksPerSecond: number;
  readonly rawCycle: number;
  readonly coordinatorMb: number;
  readonly workerMb: number;
  readonly brokerBytesPerChunk: number;
  readonly sum: number;
}

/** Runs the scale section. */
export async function benchScale(options: ScaleOptions): Promise<BenchRow[]> {
  const chunks = options.chunks ?? 1_000_000;
  const runs = options.runs ?? 1;
  const expected = computeRange(0, chunks * 10).sum;
  const rows: BenchRow[] = [];
  for (const backend of options.backends) {
    const what = figures(backend, chunks);
    try {
      const measuredRuns = await withTarget(backend, async (target) => {
        const out: ScaleRun[] = [];
        for (let run = 0; run < runs; run++) out.push(await scaleRun(target, chunks));
        return out;
      });
      const all = (key: keyof ScaleRun) => measuredRuns.map((r) => r[key]);
      const sums = all("sum");
      const exact = sums.every((s) => s === expected);
      rows.push(
        measured(what.enqueue, all("enqueue"), all("rawAppend")),
        measured(what.rate, all("chunksPerSecond"), all("rawCycle")),
        measured(what.coordinator, all("coordinatorMb")),
        measured(what.worker, all("workerMb")),
        measured(what.broker, all("brokerBytesPerChunk")),
        measured({
          ...what.sum,
          note: exact
            ? `exact: equals ${expected} in every run`
            : `NOT EXACT: expected ${expected}, got ${sums.join(", ")}`,
        }, sums),
      );
    } catch (error) {
      rows.push(...Object.values(what).map((w) => skipped(w, firstLine(error))));
    }
  }
  return rows;
}

function figures(backend: Backend, chunks: number) {
  const job = `${(chunks * 10).toLocaleString("en-US")} parameters in ${
    chunks.toLocaleString("en-US")
  } chunks, 3 workers`;
  const row = (figure: string, unit: string, note?: string) => ({
    section: backend,
    figure,
    unit,
    ...(note ? { note } : {}),
  });
  return {
    enqueue: row(`${job}: enqueue while workers consume`, "chunks/s"),
    rate: row(`${job}: end to end`, "chunks/s"),
    coordinator: row(`${job}: coordinator (ttg run) peak RSS`, "MB", "VmHWM read every 100 ms"),
    worker: row(`${job}: worker peak RSS, highest of 3`, "MB"),
    broker: row(
      `${job}: broker memory per chunk, results included`,
      "bytes",
      backend === "redis" ? "INFO used_memory after − before" : "database files after the run",
    ),
    sum: row(`${job}: aggregate sum`, ""),
  };
}

/** The raw claim cycle of the target's broker, entries per second. */
async function rawCycle(target: BenchTarget, entries: number): Promise<number> {
  if (target.backend === "sqlite") {
    const { rawSqliteCycle } = await import("./sqlite.ts");
    const path = `${target.sqlitePath}.cycle`;
    try {
      return rawSqliteCycle(path, entries);
    } finally {
      for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(path + suffix).catch(() => {});
    }
  }
  if (target.backend === "redis") {
    const { rawRedisCycle } = await import("./redis.ts");
    return await rawRedisCycle(target.url!, entries);
  }
  const { rawCycle } = await import("./rabbitmq.ts");
  return await rawCycle(target.url!, entries);
}

async function redisUsedMemory(url: string): Promise<number> {
  const client = new Redis(url, { lazyConnect: true, protocol: 2 });
  await client.connect();
  try {
    const info = await client.info("memory");
    return Number(info.match(/^used_memory:(\d+)/m)?.[1] ?? NaN);
  } finally {
    await client.quit();
  }
}

async function sqliteBytes(path: string): Promise<number> {
  let bytes = 0;
  for (const suffix of ["", "-wal", "-shm"]) {
    bytes += await Deno.stat(path + suffix).then((s) => s.size, () => 0);
  }
  return bytes;
}

function vmHwmMb(pid: number): number | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = status.match(/^VmHWM:\s+(\d+)\s+kB/m)?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined; // exited
  }
}

/** One `ttg run` of `chunks` chunks, watched from outside. */
async function scaleRun(target: BenchTarget, chunks: number): Promise<ScaleRun> {
  const jobId = target.jobId("scale");
  const before = target.backend === "redis" ? await redisUsedMemory(target.url!) : 0;
  const [exe, ...pre] = DENO_RUN.argv;
  const child = new Deno.Command(exe!, {
    args: [
      ...pre,
      "run",
      "--json",
      ...target.flags,
      "--job-id",
      jobId,
      "--params",
      String(chunks * 10),
      "--chunk-size",
      "10",
      "--work-ms",
      "0",
      "--workers",
      "3",
      "--batch",
      "256",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  let exited = false;
  void output.finally(() => exited = true);
  const broker = await target.open(`bench-watch-${Deno.pid}`);
  let coordinatorMb = 0;
  let recordAt: number | undefined;
  let queuedAt: number | undefined;
  try {
    while (!exited) {
      coordinatorMb = Math.max(coordinatorMb, vmHwmMb(child.pid) ?? 0);
      if (queuedAt === undefined) {
        const stats = await broker.stats(jobId).catch(() => undefined);
        const queued = stats
          ? stats.ready + stats.inFlight + stats.delayed + stats.completed + stats.deadLettered
          : 0;
        if (recordAt === undefined && (await broker.getJob(jobId).catch(() => null))) {
          recordAt = performance.now();
        }
        if (recordAt !== undefined && queued >= chunks) queuedAt = performance.now();
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await broker.close();
  }
  const out = await output;
  try {
    if (out.code !== 0) {
      throw new Error(
        `ttg run failed (${out.code}): ${new TextDecoder().decode(out.stderr).slice(-500)}`,
      );
    }
    const report = JSON.parse(new TextDecoder().decode(out.stdout)) as JobReport;
    if (recordAt === undefined || queuedAt === undefined) {
      throw new Error("The job's chunks were never all seen queued");
    }
    const after = target.backend === "redis"
      ? await redisUsedMemory(target.url!)
      : await sqliteBytes(target.sqlitePath!);
    const run = {
      enqueue: chunks / ((queuedAt - recordAt) / 1000),
      chunksPerSecond: report.chunks_per_second,
      coordinatorMb,
      workerMb: Math.max(0, ...report.workers.map((w) => w.peak_rss_mb ?? 0)),
      brokerBytesPerChunk: (after - before) / chunks,
      sum: (report.aggregate as { sum: number }).sum,
    };
    await resetJobs(target, [jobId]);
    // The raw limits after TTG's run: a broker TTG cannot use is reported at once, and the run's
    // broker memory is read before the raw cycles touch the broker.
    const measuredRun = {
      ...run,
      rawAppend: await rawAppend(target, chunks),
      rawCycle: await rawCycle(target, chunks),
    };
    console.error(`bench: scale ${target.backend}: ${JSON.stringify(measuredRun)}`);
    return measuredRun;
  } finally {
    await resetJobs(target, [jobId]);
  }
}
