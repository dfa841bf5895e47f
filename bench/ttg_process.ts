/**
 * What the load and fleet sections do with TTG itself: `ttg worker` processes started and
 * stopped as a fleet, sweeps submitted in this process through the same calls as `ttg submit`
 * (so a submit is timed without a process start), and waits on the broker's counters.
 *
 * @module
 */
import type { Broker, StoredResult } from "../brokers/broker.ts";
import { eachResult } from "../brokers/results.ts";
import { planSweep } from "../workers/plan.ts";
import { submitPlan } from "../workers/run.ts";
import { WORKER_V8_FLAGS } from "../workers/v8_flags.ts";
import type { BenchTarget } from "./targets.ts";

const CLI = new URL("../workers/cli.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** How a `ttg` process is started: `deno run` of workers/cli.ts, or a compiled binary. */
export interface TtgProgram {
  readonly argv: readonly string[];
  readonly cwd?: string;
}

/** `deno run -A workers/cli.ts` with the heap sizing of every ttg process, as `deno task ttg` does. */
export const DENO_RUN: TtgProgram = {
  argv: [
    Deno.execPath(),
    "run",
    "-A",
    `--v8-flags=${WORKER_V8_FLAGS.join(",")}`,
    "--config",
    CONFIG,
    CLI,
  ],
};

/** Starts `ttg ARGS…` with output discarded. */
export function spawnTtg(args: readonly string[], program: TtgProgram = DENO_RUN) {
  const [exe, ...pre] = program.argv;
  return new Deno.Command(exe!, {
    args: [...pre, ...args],
    ...(program.cwd ? { cwd: program.cwd } : {}),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

/** Options of {@linkcode startWorkers}. */
export interface WorkersOptions {
  readonly target: BenchTarget;
  readonly count: number;
  /** What to serve: `["--job-id", id]`, `["--all-jobs"]` or `["--jobs", glob]`. */
  readonly serve: readonly string[];
  /** Further `ttg worker` flags. */
  readonly extra?: readonly string[];
  readonly program?: TtgProgram;
}

/** Worker processes of the bench. */
export interface Workers {
  readonly ids: readonly string[];
  /** Resolves once every worker has reported itself to the broker's fleet registry. */
  ready(broker: Broker, timeoutMs?: number): Promise<void>;
  /** SIGTERMs every worker (SIGKILL after 20 s) and waits for them. */
  stop(): Promise<void>;
}

/** Starts `count` `ttg worker` processes that never exit on their own (`--idle-timeout 0`). */
export function startWorkers(options: WorkersOptions): Workers {
  const tag = crypto.randomUUID().slice(0, 6);
  const ids = Array.from({ length: options.count }, (_, i) => `bench-${tag}-${i}`);
  const children = ids.map((id) =>
    spawnTtg([
      "worker",
      ...options.target.flags,
      ...options.serve,
      "--worker-id",
      id,
      "--idle-timeout",
      "0",
      "--log-level",
      "ERROR",
      ...(options.extra ?? []),
    ], options.program)
  );
  const exited = children.map((c) => c.output());
  return {
    ids,
    async ready(broker, timeoutMs = 60_000) {
      await until(
        async () => {
          const seen = new Set(
            (await broker.fleet.list()).filter((w) => w.state === "busy" || w.state === "idle")
              .map((w) => w.workerId),
          );
          return ids.every((id) => seen.has(id)) ? true : undefined;
        },
        timeoutMs,
        `${ids.length} workers to report themselves`,
      );
    },
    async stop() {
      for (const child of children) signal(child, "SIGTERM");
      const timer = setTimeout(() => children.forEach((c) => signal(c, "SIGKILL")), 20_000);
      await Promise.all(exited);
      clearTimeout(timer);
    },
  };
}

function signal(child: Deno.ChildProcess, name: Deno.Signal): void {
  try {
    child.kill(name);
  } catch {
    // already exited
  }
}

/** A sweep of the built-in job, as `ttg submit` plans it. */
export interface SweepSpec {
  readonly jobId: string;
  readonly params: number;
  readonly chunkSize: number;
  /** Simulated work per parameter. @default 0 */
  readonly workMs?: number;
  /** @default 0 */
  readonly priority?: number;
}

/** Plans and submits a sweep in this process; returns the milliseconds from plan to published. */
export async function submitSweep(broker: Broker, spec: SweepSpec): Promise<number> {
  const t0 = performance.now();
  const plan = planSweep({
    jobId: spec.jobId,
    handler: "ttg.sweep",
    params: spec.params,
    chunkSize: spec.chunkSize,
    args: { work_ms: spec.workMs ?? 0, fault_rate: 0 },
    priority: spec.priority ?? 0,
  });
  if (!(await submitPlan(broker, plan))) throw new Error(`Job "${spec.jobId}" already exists`);
  return performance.now() - t0;
}

/**
 * Resolves once every one of the job's `params` parameters is in a counted result and nothing is
 * left in flight (counted in parameters, so a chunk bisected into two halves is waited for whole);
 * throws if a chunk is dead-lettered.
 */
export async function completed(
  broker: Broker,
  jobId: string,
  params: number,
  timeoutMs = 600_000,
): Promise<void> {
  await until(
    async () => {
      const stats = await broker.stats(jobId);
      if (stats.deadLettered > 0) {
        throw new Error(`Job "${jobId}" dead-lettered ${stats.deadLettered} chunks`);
      }
      const pending = stats.ready + stats.inFlight + stats.delayed;
      return stats.completedParams >= params && pending === 0 ? true : undefined;
    },
    timeoutMs,
    `job "${jobId}" to complete its ${params} parameters`,
  );
}

/** When a counted chunk's handler started: its completion time less its run time (ms since epoch). */
export function startedAt(result: StoredResult): number {
  return Date.parse(result.completedAt) - result.durationMs;
}

/** Every counted result of a job, in the broker's order. */
export async function resultsOf(broker: Broker, jobId: string): Promise<StoredResult[]> {
  const out: StoredResult[] = [];
  for await (const r of eachResult(broker, jobId)) out.push(r);
  return out;
}

/** Polls `check` every 20 ms until it returns a value, or throws after `timeoutMs`. */
export async function until<T>(
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
