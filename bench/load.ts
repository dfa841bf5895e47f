/**
 * The load section (`deno task bench --only load`): enqueue rate beside each broker's raw bulk
 * append, scaling over 1–8 worker processes beside linear scaling, and process start-up beside
 * the runtime's own; each the median of several runs with min–max. A broker that cannot run a
 * figure (not installed, or TTG's driver for it not working) gets rows saying why. Recovery after
 * SIGKILL stays in the redis and rabbitmq sections.
 *
 * @module
 */
import { measureEnqueue } from "./enqueue.ts";
import { measureScaling, WORKER_COUNTS } from "./scaling.ts";
import { spread } from "./stats.ts";
import { measureStartup } from "./startup.ts";
import { type BenchRow, measured, skipped } from "./table.ts";
import { type Backend, firstLine, withTarget } from "./targets.ts";

/** Options of {@linkcode benchLoad}. */
export interface LoadOptions {
  /** Chunks enqueued (× 10 parameters). @default 1000000 */
  readonly chunks?: number;
  /** Runs of every figure. @default 3 */
  readonly runs?: number;
  /** Brokers to measure. @default all three */
  readonly backends: readonly Backend[];
}

/** Chunks of the scaling sweep for `chunks` enqueued: 4,000 at the default size. */
export function scalingChunks(chunks: number): number {
  return Math.max(400, Math.round(chunks / 250));
}

/** Runs the load section. */
export async function benchLoad(options: LoadOptions): Promise<BenchRow[]> {
  const chunks = options.chunks ?? 1_000_000;
  const runs = options.runs ?? 3;
  const rows: BenchRow[] = [];
  for (const backend of options.backends) {
    rows.push(...await enqueueRows(backend, chunks, runs));
    rows.push(...await scalingRows(backend, scalingChunks(chunks), runs));
  }
  rows.push(...await startupRows(runs));
  return rows;
}

async function enqueueRows(backend: Backend, chunks: number, runs: number): Promise<BenchRow[]> {
  const what = {
    section: backend,
    figure: `enqueue ${chunks.toLocaleString("en-US")} chunks (plan + createJob + publish)`,
    unit: "chunks/s",
  };
  try {
    return await withTarget(backend, async (target) => {
      const { ttg, raw } = await measureEnqueue(target, chunks, runs);
      return [measured(what, ttg, raw)];
    });
  } catch (error) {
    return [skipped(what, firstLine(error))];
  }
}

async function scalingRows(backend: Backend, chunks: number, runs: number): Promise<BenchRow[]> {
  const what = (n: number) => ({
    section: backend,
    figure: `${n} worker process${n > 1 ? "es" : ""}, ${chunks} chunks × 10 at --work-ms 1`,
    unit: "chunks/s",
  });
  try {
    return await withTarget(backend, async (target) => {
      const rates = await measureScaling(target, chunks, runs);
      const one = rates.get(1)!;
      return WORKER_COUNTS.map((n) => {
        const own = rates.get(n)!;
        const speedups = own.map((r, i) => r / one[i]!);
        const s = spread(speedups);
        return measured(
          {
            ...what(n),
            note: n === 1
              ? "limit: none; the others' limit is n × this"
              : `speedup ${s.median.toFixed(2)}× (${s.min.toFixed(2)}–${
                s.max.toFixed(2)
              }); ratio = efficiency`,
          },
          own,
          n === 1 ? undefined : one.map((r) => r * n),
        );
      });
    });
  } catch (error) {
    return WORKER_COUNTS.map((n) => skipped(what(n), firstLine(error)));
  }
}

async function startupRows(runs: number): Promise<BenchRow[]> {
  const denoRun = {
    section: "sqlite",
    figure: "start-up: `deno run` worker start → first chunk pulled",
    unit: "ms",
  };
  const binary = {
    section: "sqlite",
    figure: "start-up: compiled binary start → first chunk pulled",
    unit: "ms",
  };
  try {
    const figures = await measureStartup(runs);
    return [
      measured(
        { ...denoRun, note: "limit: `deno run` of a script printing the time" },
        figures.denoRun,
        figures.runtimeFloor,
      ),
      Array.isArray(figures.binary)
        ? measured(
          { ...binary, note: "limit: `deno run` of a script printing the time" },
          figures.binary,
          figures.runtimeFloor,
        )
        : skipped(binary, figures.binary.skipped),
    ];
  } catch (error) {
    return [skipped(denoRun, firstLine(error)), skipped(binary, firstLine(error))];
  }
}
