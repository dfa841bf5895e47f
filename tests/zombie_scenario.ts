/**
 * The SIGSTOP scenario every broker's tests run through the real CLI: a worker process is paused
 * past its lease while it holds the one chunk of a job, a second worker completes the chunk, and
 * the first, resumed, must not commit: its completion is a counted zombie and the aggregate holds
 * the rescuer's result only.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Broker } from "../brokers/contract.ts";
import { spawnTtg, ttg, until } from "./helpers.ts";

/** What the scenario needs from a broker's test. */
export interface PausedWorkerScenario {
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

/** Runs the scenario and asserts exactly-once accounting; stops every process it started. */
export async function assertPausedWorkerCannotCommit(s: PausedWorkerScenario): Promise<void> {
  const { observer, jobId } = s;
  const leased = [
    ...s.brokerArgs,
    "--lease-ms",
    String(s.leaseMs),
    "--heartbeat-ms",
    String(s.leaseMs / 4),
    "--idle-timeout",
    "0",
    "--report-json",
  ];
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
    Deno.kill(paused.pid, "SIGSTOP");
    rescuer = spawnTtg(["worker", ...leased, "--worker-id", "rescuer"]);
    await until(
      async () => (await observer.results(jobId)).length === 1 || undefined,
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
    const results = await observer.results(jobId);
    assert.deepEqual(results.map((r) => r.workerId), ["rescuer"]);
    const stats = await observer.stats(jobId);
    assert.equal(stats.completed, 1);
    assert.equal(stats.duplicates, 0);
  } finally {
    for (const worker of [paused, rescuer]) {
      try {
        if (worker) Deno.kill(worker.pid, "SIGKILL");
      } catch { /* exited */ }
    }
    await Promise.all([paused.status, rescuer?.status]);
  }
}
