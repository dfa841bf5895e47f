/**
 * What `ttg monitor`, `ttg exporter` and `ttg dashboard` read of a broker, through the contract
 * only: the jobs (one, or all the broker holds), each with its record, counters, state and fleet.
 * One stats read per job per snapshot, whoever asks.
 *
 * @module
 */
import type {
  Broker,
  BrokerStats,
  JobRecord,
  JobState,
  WorkerRecord,
} from "../../brokers/broker.ts";
import { jobState, workerSeesJob } from "../../brokers/registry.ts";
import { TtgError } from "../../errors.ts";

/** One job as watched. */
export interface JobView {
  readonly jobId: string;
  /** Its record; null for a job the predecessor's producer wrote (no record). */
  readonly record: JobRecord | null;
  readonly state: JobState;
  readonly stats: BrokerStats;
  /** Its workers, as the fleet registry shows them. */
  readonly workers: readonly WorkerRecord[];
}

/** Everything watched at one instant. */
export interface Snapshot {
  /** `Date.now()` when it was read. */
  readonly at: number;
  readonly jobs: readonly JobView[];
}

/** Which jobs to watch: one by id, or every job of the broker. */
export type JobSelection = { readonly jobId: string } | { readonly all: true };

/**
 * Reads the selected jobs. A job id that names no job (no record and no trace) is a `NOT_FOUND`
 * error, so a typo is not watched as a row of zeros.
 */
export async function readSnapshot(broker: Broker, selection: JobSelection): Promise<Snapshot> {
  const at = Date.now();
  const [summaries, workers] = await Promise.all([
    "all" in selection ? broker.listJobs() : Promise.resolve(undefined),
    broker.fleet.list(),
  ]);
  const ids = summaries ? summaries.map((s) => s.jobId) : [(selection as { jobId: string }).jobId];
  const records = new Map(summaries?.map((s) => [s.jobId, s.record]));
  const jobs = await Promise.all(ids.map(async (jobId): Promise<JobView> => {
    const [record, stats] = await Promise.all([
      records.has(jobId) ? records.get(jobId)! : broker.getJob(jobId),
      broker.stats(jobId),
    ]);
    if (!record && !hasTraces(stats)) {
      throw new TtgError(
        "NOT_FOUND",
        `Job "${jobId}" was not found on ${broker.backend}: check --job-id and --backend`,
      );
    }
    return {
      jobId,
      record,
      state: jobState(stats.control, stats),
      stats,
      workers: workers.filter((w) => workerSeesJob(w, jobId)),
    };
  }));
  return { at, jobs };
}

function hasTraces(stats: BrokerStats): boolean {
  return stats.ready + stats.inFlight + stats.delayed + stats.completed + stats.deadLettered +
      stats.cancelled > 0;
}

/** Chunks of the job now: planned plus the halves of bisections (unknown without a record). */
export function chunksOf(view: JobView): number | undefined {
  return view.record ? view.record.totalChunks + view.stats.splits : undefined;
}

/** Chunks accounted for (completed, dead-lettered or cancelled). */
export function doneOf(view: JobView): number {
  const s = view.stats;
  return s.completed + s.deadLettered - s.malformed + s.cancelled;
}
