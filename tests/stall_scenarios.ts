/**
 * The stall scenarios (issue 7) every broker's tests run through the real CLI:
 * - a CPU-bound handler busy for 3× the lease keeps its chunk: completed once by its worker, no
 *   reclaim, no duplicate, while a second worker waits for work;
 * - a worker process paused (SIGSTOP) past its lease while it holds the one chunk of a job: a
 *   second worker completes the chunk, and the first, resumed, must not commit: its completion is
 *   a counted zombie and the aggregate holds the rescuer's result only.
 *
 * @module
 */
import { allResults } from "../brokers/results.ts";
import assert from "node:assert/strict";
import type { Broker } from "../brokers/broker.ts";
import { spawnTtg, ttg, until } from "./helpers.ts";

/** What a scenario needs from a broker's test. */
export interface StallScenario {
  /** Flags that pick the broker and the job: `--backend …`, `--job-id …`, URL or path. */
  readonly brokerArgs: readonly string[];
  readonly jobId: string;
  /** A broker handle on the same job, to watch its counters. */
  readonly observer: Broker;
  /** The workers' lease; their heartbeat is a quarter of it. */
  readonly leaseMs: number;
}

function lastJsonLine(out: Deno.CommandOutput): Record<string, number> {
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
}

/** `ttg worker` flags: the broker's, then a lease with a heartbeat of a quarter, no idle exit. */
function workerFlags(s: StallScenario, extra: readonly string[] = []): string[] {
  return [
    ...s.brokerArgs,
    ...extra,
    "--lease-ms",
    String(s.leaseMs),
    "--heartbeat-ms",
    String(s.leaseMs / 4),
    "--idle-timeout",
    "0",
    "--report-json",
  ];
}

/** SIGKILLs whichever of the processes still runs and waits for all of them. */
async function killAll(processes: readonly (Deno.ChildProcess | undefined)[]): Promise<void> {
  for (const child of processes) {
    try {
      if (child) Deno.kill(child.pid, "SIGKILL");
    } catch { /* exited */ }
  }
  await Promise.all(processes.map((child) => child?.status));
}

/** Runs the scenario and asserts exactly-once accounting; stops every process it started. */
export async function assertPausedWorkerCannotCommit(s: StallScenario): Promise<void> {
  const { observer, jobId } = s;
  const leased = workerFlags(s);
  // One chunk of 10 parameters × 300 ms: 3 s of work, longer than the lease.
  const submit = await ttg(["submit", ...s.brokerArgs, "--params", "10", "--chunk-size", "10"]
    .concat(["--work-ms", "300"]));
  assert.equal(submit.code, 0, submit.stderr);
  const paused = spawnTtg(["worker", ...leased, "--worker-id", "paused"]);
  let rescuer: Deno.ChildProcess | undefined;
  try {
    await until(
      async () => (await observer.stats(jobId)).inFlight === 1 || undefined,
      15_000,
      "the first worker to take the chunk",
    );
    // Frozen between two heartbeats, not inside one: on SQLite a process frozen inside a write
    // transaction holds the database's one write lock, and no worker could rescue anything.
    const lastSeen = async () =>
      (await observer.fleet.list({ jobId })).find((w) => w.workerId === "paused")?.lastSeen;
    const seen = await lastSeen();
    await until(
      async () => ((await lastSeen()) ?? seen) !== seen || undefined,
      15_000,
      "a heartbeat of the first worker",
    );
    await new Promise((resolve) => setTimeout(resolve, s.leaseMs / 8));
    Deno.kill(paused.pid, "SIGSTOP");
    rescuer = spawnTtg(["worker", ...leased, "--worker-id", "rescuer"]);
    await until(
      async () => (await allResults(observer, jobId)).length === 1 || undefined,
      20_000,
      "the rescuer to complete the chunk the paused worker held",
    );
    Deno.kill(paused.pid, "SIGCONT");
    await until(
      async () => (await observer.stats(jobId)).zombies >= 1 || undefined,
      15_000,
      "the zombie's rejected commit",
    );
    for (const worker of [paused, rescuer]) Deno.kill(worker.pid, "SIGTERM");
    const [pausedOut, rescuerOut] = await Promise.all([paused.output(), rescuer.output()]);
    const pausedReport = lastJsonLine(pausedOut);
    assert.equal(pausedReport.chunks, 0, "the paused worker's result was counted");
    assert.ok(pausedReport.zombies! >= 1, "the paused worker did not see its commit rejected");
    assert.equal(lastJsonLine(rescuerOut).chunks, 1);
    const results = await allResults(observer, jobId);
    assert.deepEqual(results.map((r) => r.workerId), ["rescuer"]);
    const stats = await observer.stats(jobId);
    assert.equal(stats.completed, 1);
    assert.equal(stats.duplicates, 0);
  } finally {
    await killAll([paused, rescuer]);
  }
}

const BUSY_JOB = new URL("./fixtures/busy_job.ts", import.meta.url).pathname;

/**
 * A handler thread spins for 3× the lease on the one chunk of a job while a second worker waits:
 * heartbeats keep the lease, so the chunk is completed once, by the busy worker, with no reclaim.
 */
export async function assertBusyHandlerKeepsItsLease(s: StallScenario): Promise<void> {
  const { observer, jobId } = s;
  const leased = workerFlags(s, ["--job", BUSY_JOB, "--execution", "threads"]);
  // One chunk of 10 parameters: the busy job spins work_ms per parameter, 3 leases in all.
  const workMs = String((3 * s.leaseMs) / 10);
  const submit = await ttg(["submit", ...s.brokerArgs, "--job", BUSY_JOB, "--params", "10"]
    .concat(["--chunk-size", "10", "--work-ms", workMs]));
  assert.equal(submit.code, 0, submit.stderr);
  const busy = spawnTtg(["worker", ...leased, "--worker-id", "busy"]);
  let other: Deno.ChildProcess | undefined;
  try {
    await until(
      async () => (await observer.stats(jobId)).inFlight === 1 || undefined,
      15_000,
      "the busy worker to take the chunk",
    );
    other = spawnTtg(["worker", ...leased, "--worker-id", "other"]);
    await until(
      async () => (await observer.stats(jobId)).completed === 1 || undefined,
      30_000,
      "the busy chunk to complete",
    );
    for (const worker of [busy, other]) Deno.kill(worker.pid, "SIGTERM");
    const [busyOut, otherOut] = await Promise.all([busy.output(), other.output()]);
    assert.equal(lastJsonLine(busyOut).chunks, 1, "the chunk was taken from the busy worker");
    assert.equal(lastJsonLine(otherOut).chunks, 0);
    const [result] = await allResults(observer, jobId);
    assert.ok(result!.durationMs >= 3 * s.leaseMs, `the handler ran ${result!.durationMs} ms only`);
    assert.equal(result!.workerId, "busy");
    const stats = await observer.stats(jobId);
    assert.equal(stats.completed, 1);
    assert.equal(stats.reclaimed, 0, "a live CPU-bound chunk was reclaimed");
    assert.equal(stats.duplicates, 0);
    assert.equal(stats.zombies, 0);
  } finally {
    await killAll([busy, other]);
  }
}
