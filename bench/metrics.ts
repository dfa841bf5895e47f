/**
 * Metrics section: what serving `/metrics` costs the hot path. The same no-op sweep is run by
 * three `ttg worker` processes with `--metrics-port` and without it, alternately, and the median
 * throughput of each is compared (the figure is "metrics on", its reference "metrics off"): in the
 * steady state (from 10% to 90% of the chunks completed, the hot path alone) and from the workers'
 * spawn to the last chunk (start-up included: a worker with metrics imports prom-client).
 *
 * @module
 */
import { openSqliteBroker } from "../brokers/sqlite/sqlite.ts";
import { freePort } from "../tasks/deploy_local.ts";
import { type Spread, spread } from "./stats.ts";
import type { BenchRow } from "./table.ts";

const CLI = new URL("../workers/cli.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

function ttg(args: readonly string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, CLI, ...args],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

/** Chunks per second of one run: steady (10% → 90% completed) and whole (spawn → last chunk). */
interface RunRate {
  readonly steady: number;
  readonly whole: number;
  /** Spawn → the first chunk completed, in milliseconds. */
  readonly firstMs: number;
}

async function oneRun(
  dir: string,
  chunks: number,
  metrics: boolean,
  run: number,
): Promise<RunRate> {
  const db = `${dir}/metrics-${run}.db`;
  const jobId = `bench-metrics-${run}`;
  const base = ["--sqlite-path", db, "--job-id", jobId];
  const submit = await ttg([
    "submit",
    ...base,
    "--params",
    String(chunks * 10),
    "--chunk-size",
    "10",
    "--work-ms",
    "0",
  ]).output();
  if (submit.code !== 0) throw new Error(new TextDecoder().decode(submit.stderr));
  const broker = await openSqliteBroker({ path: db });
  try {
    const t0 = performance.now();
    const workers = [0, 1, 2].map((i) =>
      ttg([
        "worker",
        ...base,
        "--worker-id",
        `m${i}`,
        "--batch",
        "256",
        "--idle-timeout",
        "0.5",
        ...(metrics ? ["--metrics-port", String(freePort())] : []),
      ])
    );
    const marks: { at: number; completed: number }[] = [];
    for (;;) {
      const completed = (await broker.stats(jobId)).completed;
      marks.push({ at: performance.now(), completed });
      if (completed >= chunks) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const last = marks.at(-1)!;
    const first = marks.find((m) => m.completed > 0)!;
    const from = marks.find((m) => m.completed >= chunks * 0.1)!;
    const to = marks.find((m) => m.completed >= chunks * 0.9)!;
    const codes = await Promise.all(workers.map(async (w) => (await w.output()).code));
    if (codes.some((c) => c !== 0)) throw new Error(`a worker exited with ${codes.join(", ")}`);
    return {
      steady: (to.completed - from.completed) / ((to.at - from.at) / 1000),
      whole: last.completed / ((last.at - t0) / 1000),
      firstMs: first.at - t0,
    };
  } finally {
    await broker.close();
  }
}

/** Runs the metrics section: `rounds` alternating runs with and without `--metrics-port`. */
export async function benchMetrics(
  options: { chunks: number; rounds?: number },
): Promise<BenchRow[]> {
  const dir = await Deno.makeTempDir({ prefix: "ttg-bench-metrics-" });
  const on: RunRate[] = [];
  const off: RunRate[] = [];
  try {
    for (let round = 0; round < (options.rounds ?? 5); round++) {
      off.push(await oneRun(dir, options.chunks, false, 2 * round));
      on.push(await oneRun(dir, options.chunks, true, 2 * round + 1));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const row = (what: string, pick: (r: RunRate) => number, unit = "chunks/s"): BenchRow => {
    const [withMetrics, without] = [spread(on.map(pick)), spread(off.map(pick))];
    const range = (x: Spread) => `${Math.round(x.min)}–${Math.round(x.max)}`;
    return {
      section: "metrics",
      figure: `sqlite sweep, 3 workers with --metrics-port, ${what} (median of ${on.length}: on ${
        range(withMetrics)
      }, off ${range(without)}; reference: metrics off)`,
      value: withMetrics.median,
      unit,
      rawLimit: without.median,
    };
  };
  return [
    row("steady state (10% → 90% of the chunks)", (r) => r.steady),
    row("spawn → last chunk", (r) => r.whole),
    row("spawn → first chunk completed", (r) => r.firstMs, "ms"),
  ];
}
