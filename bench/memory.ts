/**
 * Memory section: the built-in sweep through `ttg run` and its worker processes, a short run and
 * a long one on each broker, with each worker's peak RSS (VmHWM) and peak V8 heap (committed) as
 * the workers report them. The raw limit beside the RSS is a bare `deno` process (an empty
 * module) measured in the same run: the floor no worker can go below. Runnable alone:
 *
 * ```sh
 * deno run -A bench/memory.ts --chunks 1000000 --brokers sqlite,redis  # 10,000 and 1,000,000
 * ```
 *
 * SQLite uses a temporary file, Redis a private redis-server on a free port (as the Redis
 * section), RabbitMQ the server of `AMQP_URL` (default amqp://guest:guest@127.0.0.1:5672) with
 * a job id of its own, reset after the run.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { JobReport } from "../workers/report.ts";
import { runSweepBench } from "./e2e.ts";
import { type BenchRow, renderTable } from "./table.ts";

const CLI = new URL("../workers/cli.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** The brokers this section can measure, in the order they run. */
export const MEMORY_BROKERS = ["sqlite", "redis", "rabbitmq"] as const;
/** One of {@linkcode MEMORY_BROKERS}. */
export type MemoryBroker = typeof MEMORY_BROKERS[number];

/** Options of {@linkcode benchMemory}. */
export interface MemoryBenchOptions {
  /** Chunks of the short run. @default 10000, or `longChunks` if fewer */
  readonly shortChunks?: number;
  /** Chunks of the long run. @default 1000000 */
  readonly longChunks?: number;
  /** Brokers to measure. @default every one of {@linkcode MEMORY_BROKERS} */
  readonly brokers?: readonly MemoryBroker[];
  /** Worker processes of each run. @default 3 */
  readonly workers?: number;
}

/** What the workers of one run reported: the highest of each figure, in MB. */
export interface RunMemory {
  readonly chunks: number;
  readonly peakRssMb: number;
  readonly peakHeapMb: number | undefined;
}

/** The highest peak RSS and peak heap over a report's workers (heap: undefined if none said). */
export function workerMemory(report: JobReport): Omit<RunMemory, "chunks"> {
  const heaps = report.workers.flatMap((w) => w.peak_heap_mb ?? []);
  return {
    peakRssMb: Math.max(0, ...report.workers.map((w) => w.peak_rss_mb ?? 0)),
    peakHeapMb: heaps.length > 0 ? Math.max(...heaps) : undefined,
  };
}

/** VmHWM of a `deno run` of an empty module, in MB: what any worker costs before its code. */
export async function bareDenoRssMb(): Promise<number> {
  const probe = 'const s = Deno.readTextFileSync("/proc/self/status");' +
    "console.log(s.match(/^VmHWM:\\s+(\\d+)/m)[1]);";
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `data:text/javascript,${probe}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr));
  return Number(new TextDecoder().decode(out.stdout).trim()) / 1024;
}

/** Starts the broker of a run, and says how a run reaches it and how to clean up after it. */
interface BrokerUnderTest {
  readonly args: (jobId: string) => string[];
  readonly cleanup: (jobId: string) => Promise<void>;
  readonly stop: () => Promise<void>;
}

async function startBroker(broker: MemoryBroker): Promise<BrokerUnderTest> {
  switch (broker) {
    case "sqlite": {
      const dir = await Deno.makeTempDir({ prefix: "ttg-bench-memory-" });
      return {
        args: (jobId) => ["--sqlite-path", `${dir}/${jobId}.db`],
        cleanup: async (jobId) => {
          for (const suffix of ["", "-wal", "-shm"]) {
            await Deno.remove(`${dir}/${jobId}.db${suffix}`).catch(() => {});
          }
        },
        stop: () => Deno.remove(dir, { recursive: true }),
      };
    }
    case "redis": {
      const { startRedisServer } = await import("./redis_server.ts");
      const server = await startRedisServer();
      return {
        args: () => ["--broker-url", server.url],
        cleanup: (jobId) => ttgReset(["--backend", "redis", "--broker-url", server.url], jobId),
        stop: () => server.stop(),
      };
    }
    case "rabbitmq": {
      const url = Deno.env.get("AMQP_URL") ?? "amqp://guest:guest@127.0.0.1:5672";
      return {
        args: () => ["--broker-url", url],
        cleanup: (jobId) => ttgReset(["--backend", "rabbitmq", "--broker-url", url], jobId),
        stop: () => Promise.resolve(),
      };
    }
  }
}

/** `ttg reset` of a bench job (a failure is reported, not thrown: the figures stand). */
async function ttgReset(args: readonly string[], jobId: string): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, CLI, "reset", ...args, "--job-id", jobId],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    console.error(
      `bench: could not reset job "${jobId}": ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
}

/** One `ttg run` of the sweep on `broker`, and what its workers reported. */
async function measureRun(
  broker: MemoryBroker,
  under: BrokerUnderTest,
  chunks: number,
  workers: number,
): Promise<RunMemory> {
  const jobId = `bench-memory-${crypto.randomUUID().slice(0, 8)}`;
  try {
    console.error(`bench: memory, ${broker}, ${chunks} chunks…`);
    const report = await runSweepBench({
      backend: broker,
      chunks,
      workers,
      extraArgs: [...under.args(jobId), "--job-id", jobId, "--batch", "256"],
    });
    return { chunks, ...workerMemory(report) };
  } finally {
    await under.cleanup(jobId);
  }
}

/** The rows of one broker: RSS and heap of both runs, and how much the peak RSS grew. */
export function memoryRows(
  broker: string,
  runs: readonly [RunMemory, RunMemory],
  bareRssMb: number,
  workers: number,
): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const run of runs) {
    rows.push({
      section: broker,
      figure: `worker peak RSS (VmHWM), ${run.chunks} chunks, highest of ${workers}`,
      value: run.peakRssMb,
      unit: "MB",
      rawLimit: bareRssMb,
    });
    if (run.peakHeapMb !== undefined) {
      rows.push({
        section: broker,
        figure: `worker peak V8 heap (committed), ${run.chunks} chunks`,
        value: run.peakHeapMb,
        unit: "MB",
      });
    }
  }
  const [short, long] = runs;
  rows.push({
    section: broker,
    figure: `peak RSS growth, ${short.chunks} → ${long.chunks} chunks`,
    value: (long.peakRssMb / short.peakRssMb - 1) * 100,
    unit: "%",
  });
  return rows;
}

/** Runs the memory section: per broker a short and a long sweep. */
export async function benchMemory(options: MemoryBenchOptions = {}): Promise<BenchRow[]> {
  const longChunks = options.longChunks ?? 1_000_000;
  const shortChunks = options.shortChunks ?? Math.min(10_000, longChunks);
  const workers = options.workers ?? 3;
  const bare = await bareDenoRssMb();
  const rows: BenchRow[] = [];
  for (const broker of options.brokers ?? MEMORY_BROKERS) {
    const under = await startBroker(broker);
    try {
      const short = await measureRun(broker, under, shortChunks, workers);
      const long = await measureRun(broker, under, longChunks, workers);
      rows.push(...memoryRows(broker, [short, long], bare, workers));
    } catch (error) {
      console.error(
        `bench: memory on ${broker} failed: ${error instanceof Error ? error.message : error}`,
      );
    } finally {
      await under.stop();
    }
  }
  return rows;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      chunks: { type: "string", default: "1000000" },
      brokers: { type: "string", default: MEMORY_BROKERS.join(",") },
    },
  });
  const longChunks = Number(values.chunks);
  const brokers = values.brokers.split(",").map((b) => b.trim());
  const unknown = brokers.filter((b) => !(MEMORY_BROKERS as readonly string[]).includes(b));
  if (!(Number.isInteger(longChunks) && longChunks > 0) || unknown.length > 0) {
    console.error(
      `bench: Invalid --chunks "${values.chunks}" or --brokers "${values.brokers}": expected a whole number above 0 and some of ${
        MEMORY_BROKERS.join(", ")
      }`,
    );
    Deno.exit(2);
  }
  console.log(renderTable(await benchMemory({ longChunks, brokers: brokers as MemoryBroker[] })));
}
