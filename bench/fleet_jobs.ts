/**
 * Many jobs at once: 100 small jobs submitted together to one fleet of 3 `ttg worker`
 * processes, beside one job of the same total size on the same fleet. Throughput is planned
 * chunks over the time from the first submit to the last result stored. Every job is checked
 * from the broker's truth: each of its parameters is in exactly one counted result (a chunk
 * bisected after lost leases counts as its two halves), none dead-lettered, no duplicate
 * counted; the bisections and reclaimed leases are counted for the table.
 *
 * @module
 */
import type { Broker } from "../brokers/broker.ts";
import { chunkRange } from "../brokers/task.ts";
import { type BenchTarget, resetJobs } from "./targets.ts";
import { completed, resultsOf, submitSweep } from "./ttg_process.ts";

/** Jobs submitted at once, and the chunks of each (10 parameters at `--work-ms 1`). */
export const MANY_JOBS = 100;
/** Chunks of each of the many jobs. */
export const CHUNKS_PER_JOB = 20;

/** One run: chunks per second, and what the check found wrong (empty when all is well). */
export interface ManyJobsRun {
  readonly chunksPerSecond: number;
  readonly problems: readonly string[];
  /** Chunks bisected and leases reclaimed, over every job of the run. */
  readonly splits: number;
  readonly reclaimed: number;
}

/** Submits `jobs` jobs of `chunksEach` chunks at once and waits for all of them. */
export async function jobsRun(
  target: BenchTarget,
  broker: Broker,
  jobs: number,
  chunksEach: number,
): Promise<ManyJobsRun> {
  const ids = Array.from({ length: jobs }, () => target.jobId(jobs > 1 ? "many" : "one"));
  try {
    const t0 = Date.now();
    for (const jobId of ids) {
      await submitSweep(broker, {
        jobId,
        params: chunksEach * 10,
        chunkSize: 10,
        workMs: 1,
      });
    }
    const params = chunksEach * 10;
    for (const jobId of ids) await completed(broker, jobId, params);
    let last = 0;
    let splits = 0;
    let reclaimed = 0;
    const problems: string[] = [];
    for (const jobId of ids) {
      const results = await resultsOf(broker, jobId);
      const stats = await broker.stats(jobId);
      splits += stats.splits;
      reclaimed += stats.reclaimed;
      const times = new Uint8Array(params);
      for (const r of results) {
        last = Math.max(last, Date.parse(r.completedAt));
        const [start, end] = chunkRange(r.chunkId, 10, params);
        for (let p = start; p < end; p++) times[p]! += 1;
      }
      const twice = times.filter((t) => t > 1).length;
      const never = times.filter((t) => t === 0).length;
      if (twice || never || stats.deadLettered !== 0 || stats.duplicates !== 0) {
        problems.push(
          `${jobId}: ${never} parameters in no result, ${twice} in two or more, ${stats.deadLettered} dead-lettered, ${stats.duplicates} duplicates`,
        );
      }
    }
    return {
      chunksPerSecond: (jobs * chunksEach) / ((last - t0) / 1000),
      problems,
      splits,
      reclaimed,
    };
  } finally {
    await resetJobs(target, ids);
  }
}
