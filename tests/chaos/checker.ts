/**
 * The chaos suite's checker: reads the broker's truth after a scenario (never the workers' logs)
 * and proves that every parameter of the job ended in exactly one of completed or dead-lettered,
 * that exactly the poisoned parameters were dead-lettered, and that the aggregate equals the sum
 * computed here, independently, over the parameters that were not poisoned. It prints one line:
 * `scenario backend chunks completed dead-lettered duplicates zombies lost duration`.
 *
 * @module
 */
import { allResults } from "../../brokers/results.ts";
import assert from "node:assert/strict";
import type { Broker, DeadLetter } from "../../brokers/broker.ts";
import { chunkRange } from "../../brokers/task.ts";
import { combineSweep, type SweepResult, sweepValue } from "../../jobs/sweep.ts";

/** What a scenario expects of its job. */
export interface Expectation {
  /** The parameters that must end dead-lettered (and no other). */
  readonly poisoned: ReadonlySet<number>;
  /** Unreadable messages written into the queue (dead letters that are not chunks). */
  readonly malformed?: number;
  /** For each poisoned parameter, the dead-letter kinds it may end with. */
  readonly kinds?: (param: number) => readonly string[];
  /**
   * Nothing was done to the run: then a zombie can only follow a lease that was taken over (a
   * worker starved of CPU for a lease), so none may be counted while none was reclaimed.
   */
  readonly faultFree?: boolean;
}

/** The checker's line, as numbers. */
export interface ChaosLine {
  readonly scenario: string;
  readonly backend: string;
  readonly chunks: number;
  readonly completed: number;
  readonly deadLettered: number;
  readonly duplicates: number;
  readonly zombies: number;
  readonly lost: number;
  readonly durationSeconds: number;
}

/** Formats the line the issue asks for, and appends it to `TTG_CHAOS_REPORT` when set. */
export async function printLine(line: ChaosLine): Promise<void> {
  const text = [
    line.scenario,
    line.backend,
    `chunks=${line.chunks}`,
    `completed=${line.completed}`,
    `dead-lettered=${line.deadLettered}`,
    `duplicates=${line.duplicates}`,
    `zombies=${line.zombies}`,
    `lost=${line.lost}`,
    `duration=${line.durationSeconds.toFixed(1)}s`,
  ].join(" ");
  console.log(`chaos: ${text}`);
  const file = Deno.env.get("TTG_CHAOS_REPORT");
  if (file) await Deno.writeTextFile(file, text + "\n", { append: true });
}

/**
 * Reads the job from `observer` and checks it against `expect`; returns its line (printed).
 * `totalParams` and `chunkSize` are the job's plan.
 */
export async function checkJob(
  observer: Broker,
  jobId: string,
  plan: { readonly totalParams: number; readonly chunkSize: number },
  expect: Expectation,
  meta: { readonly scenario: string; readonly backend: string; readonly startedAt: number },
): Promise<ChaosLine> {
  const [stats, results, letters] = await Promise.all([
    observer.stats(jobId),
    allResults(observer, jobId),
    observer.deadLetters.list(jobId),
  ]);
  const owner = new Int32Array(plan.totalParams); // 0 none, 1 completed, 2 dead-lettered
  let overlaps = 0;
  const claim = (start: number, end: number, by: number) => {
    for (let p = start; p < end; p++) {
      if (owner[p] !== 0) overlaps += 1;
      owner[p] = by;
    }
  };
  for (const r of results) {
    const [start, end] = chunkRange(r.chunkId, plan.chunkSize, plan.totalParams);
    assert.equal(r.params, end - start, `result ${r.chunkId} covers ${r.params} parameters`);
    claim(start, end, 1);
  }
  const chunkLetters = letters.filter((
    l,
  ): l is DeadLetter & { task: NonNullable<DeadLetter["task"]> } => l.task !== null);
  for (const l of chunkLetters) claim(l.task.start, l.task.end, 2);
  let lost = 0;
  const deadParams: number[] = [];
  for (let p = 0; p < plan.totalParams; p++) {
    if (owner[p] === 0) lost += 1;
    if (owner[p] === 2) deadParams.push(p);
  }
  const line: ChaosLine = {
    scenario: meta.scenario,
    backend: meta.backend,
    chunks: results.length + chunkLetters.length,
    completed: results.length,
    deadLettered: letters.length,
    duplicates: stats.duplicates,
    zombies: stats.zombies,
    lost,
    durationSeconds: (Date.now() - meta.startedAt) / 1000,
  };
  await printLine(line);
  assert.equal(
    overlaps,
    0,
    `${overlaps} parameters are both completed and dead-lettered (or twice)`,
  );
  assert.equal(lost, 0, `${lost} parameters are neither completed nor dead-lettered`);
  assert.equal(stats.ready + stats.inFlight + stats.delayed, 0, "the job is not drained");
  assert.equal(stats.completed, results.length);
  assert.deepEqual(
    deadParams,
    [...expect.poisoned].sort((a, b) => a - b),
    "the dead-lettered parameters are not exactly the poisoned ones",
  );
  for (const l of chunkLetters) {
    assert.ok(l.reason.length > 0, `dead letter ${l.id} has no reason`);
    const allowed = expect.kinds?.(l.task.start);
    if (allowed) {
      assert.ok(allowed.includes(l.kind), `parameter ${l.task.start} ended ${l.kind}: ${l.reason}`);
    }
  }
  const unreadable = letters.filter((l) => l.task === null);
  assert.equal(unreadable.length, expect.malformed ?? 0, "malformed letters");
  for (const l of unreadable) {
    assert.ok(
      l.kind === "malformed" && l.reason.length > 0,
      `letter ${l.id}: ${l.kind} ${l.reason}`,
    );
  }
  if (expect.faultFree && stats.reclaimed === 0) {
    assert.equal(stats.zombies, 0, "zombies counted in a fault-free run with no lease taken over");
  }
  const aggregate = combineSweep(sortByChunk(results).map((r) => r.value as SweepResult));
  const healthy: SweepResult[] = [];
  for (let p = 0; p < plan.totalParams; p++) {
    if (!expect.poisoned.has(p)) healthy.push(single(p));
  }
  const expected = combineSweep(healthy);
  assert.equal(aggregate.count, expected.count, "aggregate count");
  assert.equal(aggregate.sum, expected.sum, "aggregate sum (exact summation)");
  return line;
}

function single(p: number): SweepResult {
  const v = sweepValue(p);
  return { sum: v, count: 1, min: v, max: v, avg: v };
}

function sortByChunk<T extends { chunkId: string }>(results: readonly T[]): T[] {
  return [...results].sort((a, b) => a.chunkId.localeCompare(b.chunkId));
}
