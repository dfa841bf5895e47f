/**
 * Scaling figures: the same sweep (`--work-ms 1`, chunks of 10 parameters: 10 ms of simulated
 * work each, 4 handlers per worker) served by 1, 2, 4 and 8 `ttg worker` processes. The job is
 * submitted paused, the workers are started and wait until each has reported itself, then the
 * job is resumed: the figure is chunks over the time from the resume to the last result stored
 * (process start-up is the start-up figure's, not this one's). Each count's limit is linear
 * scaling from the 1-worker figure of the same run, so the ratio is the efficiency.
 *
 * @module
 */
import type { BenchTarget } from "./targets.ts";
import { resetJobs } from "./targets.ts";
import { completed, resultsOf, startWorkers, submitSweep } from "./ttg_process.ts";

/** The worker counts measured. */
export const WORKER_COUNTS = [1, 2, 4, 8] as const;

/** One run of `workers` processes over `chunks` chunks: chunks per second. */
export async function scalingRun(
  target: BenchTarget,
  workers: number,
  chunks: number,
): Promise<number> {
  const jobId = target.jobId(`scale${workers}`);
  const broker = await target.open();
  const fleet = startWorkers({ target, count: workers, serve: ["--job-id", jobId] });
  try {
    await submitSweep(broker, { jobId, params: chunks * 10, chunkSize: 10, workMs: 1 });
    await broker.control(jobId, "pause");
    await fleet.ready(broker);
    const t0 = Date.now();
    await broker.control(jobId, "resume");
    await completed(broker, jobId, chunks * 10);
    const last = Math.max(
      ...(await resultsOf(broker, jobId)).map((r) => Date.parse(r.completedAt)),
    );
    return chunks / ((last - t0) / 1000);
  } finally {
    await fleet.stop();
    await broker.close();
    await resetJobs(target, [jobId]);
  }
}

/** `runs` rounds of every worker count, interleaved (so a noisy minute touches them all). */
export async function measureScaling(
  target: BenchTarget,
  chunks: number,
  runs: number,
): Promise<Map<number, number[]>> {
  const rates = new Map<number, number[]>(WORKER_COUNTS.map((n) => [n, []]));
  for (let run = 0; run < runs; run++) {
    for (const workers of WORKER_COUNTS) {
      const rate = await scalingRun(target, workers, chunks);
      rates.get(workers)!.push(rate);
      console.error(
        `bench: scaling ${target.backend} run ${run + 1}/${runs}, ${workers} workers: ${
          Math.round(rate)
        } chunks/s`,
      );
    }
  }
  return rates;
}
