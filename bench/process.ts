/**
 * Process section: a no-op Python handler through the process protocol beside the same no-op in
 * a TypeScript handler thread, measured in the same run — straight through each executor (one
 * chunk at a time, then two at once), and end to end through `ttg run` on SQLite. The raw limit
 * of the pipe is a Python loop that answers every line without reading it as JSON.
 *
 * @module
 */
import type { ChunkExecutor } from "../workers/executor.ts";
import { silentLogger } from "../workers/log.ts";
import { planSweep } from "../workers/plan.ts";
import { ProcessPoolExecutor } from "../workers/process_pool.ts";
import { ThreadPoolExecutor } from "../workers/thread_pool.ts";
import { runSweepBench } from "./e2e.ts";
import type { BenchRow } from "./table.ts";

const NOOP_JOB = new URL("./noop_job.ts", import.meta.url).pathname;
const NOOP_PY = new URL("./noop.py", import.meta.url).pathname;
const RAW_PY = [
  "import sys",
  'print(\'{"ttg": 1, "ready": true}\', flush=True)',
  "for line in sys.stdin:",
  "    sys.stdout.write('{\"result\": 0}\\n')",
  "    sys.stdout.flush()",
].join("\n");

/** Chunks per second of `executor` running `chunks` no-op chunks, `parallel` at a time. */
async function rate(executor: ChunkExecutor, chunks: number, parallel: number): Promise<number> {
  const tasks = planSweep({ jobId: "bench", handler: "bench.noop", params: chunks, chunkSize: 1 })
    .tasks;
  const signal = new AbortController().signal;
  let next = 0;
  const lane = async () => {
    while (next < tasks.length) {
      const task = tasks[next++]!;
      const outcome = await executor.execute({
        task,
        attempt: 1,
        workerId: "bench",
        timeoutMs: 10_000,
        signal,
      });
      if (!outcome.ok) throw new Error(`chunk ${task.chunkId} failed: ${outcome.reason}`);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: parallel }, lane));
  return chunks / ((performance.now() - t0) / 1000);
}

function threads(size: number) {
  return ThreadPoolExecutor.create({
    moduleUrl: new URL("./noop_job.ts", import.meta.url).href,
    jobName: "bench.noop",
    size,
    log: silentLogger,
  });
}

function processes(size: number, argv: string[]) {
  return ProcessPoolExecutor.create({
    argv,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    jobName: "bench.noop",
    size,
    log: silentLogger,
  });
}

/** Measures each executor after a warm-up of `chunks / 10`. */
async function measure(make: () => Promise<ChunkExecutor>, chunks: number, parallel: number) {
  await using executor = await make();
  await rate(executor, Math.max(100, Math.floor(chunks / 10)), parallel);
  return await rate(executor, chunks, parallel);
}

/** Runs the process section. */
export async function benchProcess(options: { chunks: number }): Promise<BenchRow[]> {
  const { chunks } = options;
  const python = "python3";
  const rows: BenchRow[] = [];
  for (const parallel of [1, 2]) {
    const ts = await measure(() => threads(parallel), chunks, parallel);
    const py = await measure(() => processes(parallel, [python, NOOP_PY]), chunks, parallel);
    const raw = await measure(() => processes(parallel, [python, "-c", RAW_PY]), chunks, parallel);
    const what = parallel === 1 ? "one at a time" : "2 at once";
    rows.push(
      {
        section: "process",
        figure: `no-op TypeScript handler in ${parallel} thread(s), ${what}`,
        value: ts,
        unit: "chunks/s",
      },
      {
        section: "process",
        figure: `no-op Python handler, protocol v1, ${parallel} process(es), ${what}`,
        value: py,
        unit: "chunks/s",
        rawLimit: ts,
      },
      {
        section: "process",
        figure: `raw pipe: Python answering each line unread, ${parallel} process(es)`,
        value: raw,
        unit: "chunks/s",
      },
    );
    if (parallel === 1) {
      rows.push({
        section: "process",
        figure: "protocol overhead per chunk (Python process − TypeScript thread)",
        value: 1e6 / py - 1e6 / ts,
        unit: "µs",
      });
    }
  }
  const e2e = Math.max(2000, Math.floor(chunks / 2));
  const base = { backend: "sqlite", chunks: e2e, workers: 2 };
  const dir = await Deno.makeTempDir({ prefix: "ttg-bench-process-" });
  try {
    const sqlite = (name: string) => ["--sqlite-path", `${dir}/${name}.db`, "--batch", "256"];
    const ts = await runSweepBench({
      ...base,
      extraArgs: [...sqlite("ts"), "--job", NOOP_JOB, "--concurrency", "2"],
    });
    const py = await runSweepBench({
      ...base,
      extraArgs: [
        ...sqlite("py"),
        "--cmd",
        JSON.stringify([python, NOOP_PY]),
        "--concurrency",
        "2",
      ],
    });
    rows.push(
      {
        section: "process",
        figure: `ttg run on SQLite, ${e2e} chunks, 2 workers × 2: TypeScript job (threads)`,
        value: ts.chunks_per_second,
        unit: "chunks/s",
      },
      {
        section: "process",
        figure: `ttg run on SQLite, ${e2e} chunks, 2 workers × 2: Python --cmd`,
        value: py.chunks_per_second,
        unit: "chunks/s",
        rawLimit: ts.chunks_per_second,
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return rows;
}
