/**
 * Priority under backlog: a fleet of 3 `ttg worker` processes busy on a long low-priority sweep;
 * an urgent job of 100 chunks is submitted (in this process, through the calls `ttg submit`
 * makes) at priority 10, or at the backlog's own priority 0 ("priorities off": the fleet then
 * shares itself fairly between the two jobs). Each urgent chunk's latency is its handler's start
 * (its result's completion time less its run time, written by the worker on the same clock)
 * less the moment the submit began. The backlog's chunks are 10 parameters at `--work-ms 1`
 * (10 ms each); the urgent job's are the same, or 1 parameter (1 ms) to measure the scheduling
 * apart from the urgent job's own compute time (12 slots take about 83 ms to start 100 chunks
 * of 10 ms, however they are ordered).
 *
 * @module
 */
import type { Broker } from "../brokers/broker.ts";
import { percentile } from "./stats.ts";
import { type BenchTarget, resetJobs } from "./targets.ts";
import { completed, resultsOf, startedAt, submitSweep, until } from "./ttg_process.ts";

/** Chunks of the urgent job. */
export const URGENT_CHUNKS = 100;
/** Backlog chunks the fleet completes before the urgent job is submitted. */
const WARM_CHUNKS = 300;

/** The latencies of one urgent job's chunks, in milliseconds: p50 and p99. */
export interface UrgentLatency {
  readonly p50: number;
  readonly p99: number;
  /** The first of its chunks to start: the submit and the fleet finding the job. */
  readonly first: number;
  /** Of that, the submit itself: createJob and the publish of its chunks. */
  readonly submitMs: number;
}

/** The urgent job of one run. */
export interface UrgentJob {
  /** Its priority: 10, or the backlog's own 0 ("priorities off"). */
  readonly priority: number;
  /** Parameters in each of its chunks, each 1 ms of work. @default 10 */
  readonly chunkSize?: number;
}

/**
 * One run on a fleet already serving the target's jobs: queues `backlog` chunks at priority 0,
 * waits until the fleet is busy on them, submits the urgent job, and measures.
 */
export async function urgentRun(
  target: BenchTarget,
  broker: Broker,
  backlog: number,
  job: UrgentJob,
): Promise<UrgentLatency> {
  const { priority, chunkSize = 10 } = job;
  const low = target.jobId("backlog");
  const urgent = target.jobId(`urgent${priority}x${chunkSize}`);
  try {
    await submitSweep(broker, { jobId: low, params: backlog * 10, chunkSize: 10, workMs: 1 });
    await until(
      async () => {
        const stats = await broker.stats(low);
        return stats.completed >= WARM_CHUNKS ? true : undefined;
      },
      120_000,
      `the fleet to be busy on "${low}"`,
    );
    const t0 = Date.now();
    const submitMs = await submitSweep(broker, {
      jobId: urgent,
      params: URGENT_CHUNKS * chunkSize,
      chunkSize,
      workMs: 1,
      priority,
    });
    await completed(broker, urgent, URGENT_CHUNKS * chunkSize, 120_000);
    const stillQueued = await broker.stats(low);
    if (stillQueued.ready === 0) {
      throw new Error(`The backlog "${low}" ran dry before the urgent job was done`);
    }
    const latencies = (await resultsOf(broker, urgent)).map((r) => startedAt(r) - t0);
    return {
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      first: Math.min(...latencies),
      submitMs,
    };
  } finally {
    await broker.control(low, "cancel").catch(() => {});
    await until(
      async () => {
        const stats = await broker.stats(low);
        return stats.inFlight === 0 ? true : undefined;
      },
      60_000,
      `the backlog's chunks in flight to be given back`,
    ).catch(() => {});
    await resetJobs(target, [low, urgent]);
  }
}
