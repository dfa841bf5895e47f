/**
 * The job report: what `ttg run` prints at the end (as text, or one JSON object with --json),
 * and what `ttg status` and `ttg results` show.
 *
 * @module
 */
import type {
  Broker,
  BrokerStats,
  DeadLetter,
  JobRecord,
  StoredResult,
} from "../brokers/contract.ts";
import { type Job, reduceResults } from "../jobs/define_job.ts";
import { BUILTIN_JOBS } from "../jobs/load.ts";
import { formatDuration } from "./progress.ts";

/** One worker's line in the report. */
export interface WorkerLine {
  readonly id: string;
  readonly chunks: number;
  readonly params: number;
  readonly peak_rss_mb?: number;
  readonly exit?: string;
}

/** The report of a job (field names follow the predecessor's snake_case). */
export interface JobReport {
  readonly job_id: string;
  readonly backend: string;
  readonly handler: string;
  readonly params: number;
  readonly chunks: {
    readonly total: number;
    readonly completed: number;
    readonly dead_lettered: number;
    readonly params_completed: number;
    readonly params_dead_lettered: number;
  };
  readonly aggregate: unknown;
  readonly duplicates_discarded: number;
  readonly zombie_completions: number;
  readonly retries: number;
  readonly faults: { readonly workers_killed: number; readonly chunks_reclaimed: number };
  readonly duration_seconds: number;
  readonly chunks_per_second: number;
  readonly workers: readonly WorkerLine[];
  readonly dead_letters: readonly {
    readonly chunk_id: string | null;
    readonly start: number | null;
    readonly end: number | null;
    readonly kind: string;
    readonly reason: string;
  }[];
}

/** Everything the report is made of, read from the broker. */
export interface JobSnapshot {
  readonly record: JobRecord | null;
  readonly stats: BrokerStats;
  readonly results: readonly StoredResult[];
  readonly deadLetters: readonly DeadLetter[];
}

/** Reads a job's record, counters, results and dead letters. */
export async function readSnapshot(broker: Broker, jobId: string): Promise<JobSnapshot> {
  const [record, stats, results, deadLetters] = await Promise.all([
    broker.getJob(jobId),
    broker.stats(jobId),
    broker.results(jobId),
    broker.deadLetters.list(jobId),
  ]);
  return { record, stats, results, deadLetters };
}

/** Options of {@linkcode buildReport}. */
export interface BuildReportOptions {
  readonly jobId: string;
  readonly backend: string;
  /** The job used to reduce results; defaults to the record's handler if built in, else counts. */
  readonly job?: Job;
  readonly durationMs?: number;
  /** Extra facts about known workers (peak memory, how they exited), by worker id. */
  readonly workerExtras?: ReadonlyMap<string, Omit<WorkerLine, "id" | "chunks" | "params">>;
  readonly workersKilled?: number;
}

/** Builds the report of a job from a snapshot. */
export function buildReport(snapshot: JobSnapshot, options: BuildReportOptions): JobReport {
  const { record, stats, results, deadLetters } = snapshot;
  const handler = record?.handler ?? options.job?.name ?? "ttg.sweep";
  const job = options.job ?? BUILTIN_JOBS.get(handler);
  const aggregate = job
    ? reduceResults(job, results.map((r) => r.value))
    : { chunks: results.length };
  const paramsCompleted = results.reduce((sum, r) => sum + r.params, 0);
  const paramsDead = deadLetters.reduce(
    (sum, d) => sum + (d.task ? d.task.end - d.task.start : 0),
    0,
  );
  const workers = workersFromResults(results, options.workerExtras ?? new Map());
  const seconds = (options.durationMs ?? 0) / 1000;
  return {
    job_id: options.jobId,
    backend: options.backend,
    handler,
    params: record?.totalParams ?? paramsCompleted + paramsDead,
    chunks: {
      total: record?.totalChunks ?? stats.completed + stats.deadLettered,
      completed: stats.completed,
      dead_lettered: stats.deadLettered,
      params_completed: paramsCompleted,
      params_dead_lettered: paramsDead,
    },
    aggregate,
    duplicates_discarded: stats.duplicates,
    zombie_completions: stats.zombies,
    retries: stats.retried,
    faults: { workers_killed: options.workersKilled ?? 0, chunks_reclaimed: stats.reclaimed },
    duration_seconds: round(seconds, 3),
    chunks_per_second: seconds > 0 ? round(stats.completed / seconds, 1) : 0,
    workers,
    dead_letters: deadLetters.slice(0, 20).map((d) => ({
      chunk_id: d.task?.chunkId ?? null,
      start: d.task?.start ?? null,
      end: d.task?.end ?? null,
      kind: d.kind,
      reason: d.reason,
    })),
  };
}

/** Per-worker counts from the counted results (the truth, even for a worker that was killed). */
function workersFromResults(
  results: readonly StoredResult[],
  extras: NonNullable<BuildReportOptions["workerExtras"]>,
): WorkerLine[] {
  const byWorker = new Map<string, { chunks: number; params: number }>();
  for (const id of extras.keys()) byWorker.set(id, { chunks: 0, params: 0 });
  for (const r of results) {
    const line = byWorker.get(r.workerId) ?? { chunks: 0, params: 0 };
    line.chunks += 1;
    line.params += r.params;
    byWorker.set(r.workerId, line);
  }
  return [...byWorker].sort(([a], [b]) => a.localeCompare(b)).map(([id, l]) => ({
    id,
    ...l,
    ...extras.get(id),
  }));
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function formatAggregate(aggregate: unknown): string[] {
  if (typeof aggregate !== "object" || aggregate === null) {
    return [`  ${JSON.stringify(aggregate)}`];
  }
  return Object.entries(aggregate).map(([k, v]) =>
    `  ${k.padEnd(8)} ${
      typeof v === "number" && !Number.isInteger(v) ? v.toFixed(6) : JSON.stringify(v)
    }`
  );
}

/** The report as text for people. */
export function formatReport(report: JobReport): string {
  const c = report.chunks;
  const lines = [
    `Job "${report.job_id}" (${report.handler} on ${report.backend})`,
    `  chunks     ${c.completed}/${c.total} completed, ${c.dead_lettered} dead-lettered` +
    ` (${c.params_completed}/${report.params} parameters counted)`,
    `  duplicates ${report.duplicates_discarded} discarded, zombie completions ${report.zombie_completions} rejected`,
    `  retries    ${report.retries}`,
    `  faults     ${report.faults.workers_killed} worker(s) killed, ${report.faults.chunks_reclaimed} chunk(s) reclaimed`,
  ];
  if (report.duration_seconds > 0) {
    lines.push(
      `  duration   ${
        formatDuration(report.duration_seconds)
      } (${report.chunks_per_second} chunks/s)`,
    );
  }
  lines.push("Aggregate:", ...formatAggregate(report.aggregate));
  if (report.workers.length) {
    lines.push("Workers:");
    for (const w of report.workers) {
      const rss = w.peak_rss_mb !== undefined ? `, peak RSS ${w.peak_rss_mb} MB` : "";
      lines.push(
        `  ${w.id.padEnd(12)} ${w.chunks} chunks, ${w.params} parameters${rss}${
          w.exit ? ` (${w.exit})` : ""
        }`,
      );
    }
  }
  if (report.dead_letters.length) {
    lines.push("Dead letters:");
    for (const d of report.dead_letters) {
      lines.push(
        `  ${d.chunk_id ?? "(unreadable)"} [${d.start ?? "?"}, ${
          d.end ?? "?"
        }) ${d.kind}: ${d.reason}`,
      );
    }
  }
  return lines.join("\n");
}
