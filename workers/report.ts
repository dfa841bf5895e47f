/**
 * The job report: what `ttg run` prints at the end, and `ttg results` and the report Job. It is
 * built from the broker's truth in one pass over the counted results, page by page: the job's
 * aggregate is folded as the results come (held only for a job that gives `reduce` rather than
 * `fold`), so a million-chunk job's coordinator holds one page at a time.
 *
 * @module
 */
import type {
  Broker,
  BrokerStats,
  DeadLetter,
  JobRecord,
  StoredResult,
  WorkerRecord,
} from "../brokers/broker.ts";
import { eachResult } from "../brokers/results.ts";
import { chunkRange } from "../brokers/task.ts";
import { aggregator, type Job } from "../jobs/define_job.ts";
import { BUILTIN_JOBS } from "../jobs/load.ts";
import { compareChunkIds } from "./chunk_order.ts";

export { compareChunkIds } from "./chunk_order.ts";
export {
  deadLettersInReport,
  EXIT_DEAD_LETTERS,
  formatReport,
  reportCsv,
} from "./report_format.ts";

/** One worker's line in the report. */
export interface WorkerLine {
  readonly id: string;
  readonly chunks: number;
  readonly params: number;
  /** Peak resident memory of the worker process (VmHWM), in MB. */
  readonly peak_rss_mb?: number;
  /** Largest V8 heap (committed) of the worker process, in MB. */
  readonly peak_heap_mb?: number;
  readonly exit?: string;
}

/** The report of a job (field names follow the predecessor's snake_case). */
export interface JobReport {
  readonly job_id: string;
  readonly backend: string;
  readonly handler: string;
  readonly params: number;
  /**
   * Parameters, the unit that adds up: each is counted (in a stored result) or dead-lettered
   * (in a dead chunk), whatever bisection did to the chunks; `accounted` is their sum.
   */
  readonly parameters: {
    readonly total: number;
    readonly accounted: number;
    readonly counted: number;
    readonly dead_lettered: number;
  };
  /**
   * Chunks: `planned` (also `total`), of which `bisected` were each replaced by two parts
   * (`parts`), so `planned - bisected + parts = completed + dead_lettered + pending + cancelled`.
   * Unreadable messages dead-lettered (`malformed`) are not chunks of the job.
   */
  readonly chunks: {
    readonly total: number;
    readonly planned: number;
    readonly bisected: number;
    readonly parts: number;
    readonly completed: number;
    readonly dead_lettered: number;
    readonly pending: number;
    readonly cancelled: number;
    readonly malformed: number;
    readonly params_completed: number;
    readonly params_dead_lettered: number;
  };
  /**
   * Planned chunks none of whose parameters were accounted for, once nothing is pending (a lost
   * chunk; always 0 unless something is wrong): how many, and the first ids.
   */
  readonly missing: { readonly chunks: number; readonly chunk_ids: readonly string[] };
  /** Dead letters by how they ended, and handler failures and timeouts as the workers counted them. */
  readonly failures: {
    readonly dead_lettered_by_kind: Readonly<Record<string, number>>;
    readonly handler_failures: number;
    readonly handler_timeouts: number;
  };
  readonly aggregate: unknown;
  readonly duplicates_discarded: number;
  readonly zombie_completions: number;
  readonly retries: number;
  readonly faults: { readonly workers_killed: number; readonly chunks_reclaimed: number };
  readonly duration_seconds: number;
  readonly chunks_per_second: number;
  readonly params_per_second: number;
  /** Sum of the chunks' run times over the wall time: how many handlers ran at once, on average. */
  readonly parallelism: number;
  /** The slowest counted chunks, slowest first. */
  readonly slowest_chunks: readonly {
    readonly chunk_id: string;
    readonly duration_ms: number;
    readonly worker: string;
  }[];
  readonly workers: readonly WorkerLine[];
  readonly dead_letters: readonly {
    readonly chunk_id: string | null;
    readonly start: number | null;
    readonly end: number | null;
    readonly kind: string;
    readonly reason: string;
  }[];
}

/** What the report is made of: the job's record, counters, dead letters, fleet and results. */
export interface ReportSource {
  readonly record: JobRecord | null;
  readonly stats: BrokerStats;
  readonly deadLetters: readonly DeadLetter[];
  /** The fleet's records of the job (handler failures and timeouts). */
  readonly fleet?: readonly WorkerRecord[];
  /** The counted results, read once, in any order. */
  readonly results: AsyncIterable<StoredResult> | Iterable<StoredResult>;
}

/** Reads what a job's report needs from `broker`; its results are streamed when the report is built. */
export async function reportSource(broker: Broker, jobId: string): Promise<ReportSource> {
  const [record, stats, deadLetters, fleet] = await Promise.all([
    broker.getJob(jobId),
    broker.stats(jobId),
    broker.deadLetters.list(jobId),
    broker.fleet.list({ jobId }),
  ]);
  return { record, stats, deadLetters, fleet, results: eachResult(broker, jobId) };
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

/** Slowest chunks kept for the report. */
const SLOWEST = 5;
/** Missing chunks are looked for in jobs of at most this many parameters (a bit each). */
const COVERAGE_LIMIT = 100_000_000;

/** Builds the report of a job in one pass over its results. */
export async function buildReport(
  source: ReportSource,
  options: BuildReportOptions,
): Promise<JobReport> {
  const { record, stats, deadLetters } = source;
  const handler = record?.handler ?? options.job?.name ?? "ttg.sweep";
  const job = options.job ?? BUILTIN_JOBS.get(handler);
  const aggregate = aggregator(job, compareChunkIds);
  const pending = stats.ready + stats.inFlight + stats.delayed;
  const coverage = record && pending === 0 && record.totalParams <= COVERAGE_LIMIT
    ? new Uint8Array(Math.ceil(record.totalParams / 8))
    : undefined;
  const mark = (start: number, end: number) => {
    for (let p = start; p < end; p++) coverage![p >> 3]! |= 1 << (p & 7);
  };
  const byWorker = new Map<string, { chunks: number; params: number }>();
  for (const id of options.workerExtras?.keys() ?? []) byWorker.set(id, { chunks: 0, params: 0 });
  const slowest: StoredResult[] = [];
  let paramsCompleted = 0;
  let busyMs = 0;
  for await (const r of source.results) {
    aggregate.add(r.chunkId, r.value);
    paramsCompleted += r.params;
    busyMs += r.durationMs;
    const line = byWorker.get(r.workerId) ?? { chunks: 0, params: 0 };
    line.chunks += 1;
    line.params += r.params;
    byWorker.set(r.workerId, line);
    keepSlowest(slowest, r);
    if (coverage) mark(...chunkRange(r.chunkId, record!.chunkSize, record!.totalParams));
  }
  let paramsDead = 0;
  const byKind: Record<string, number> = {};
  for (const d of deadLetters) {
    byKind[d.kind] = (byKind[d.kind] ?? 0) + 1;
    if (!d.task) continue;
    paramsDead += d.task.end - d.task.start;
    if (coverage) mark(d.task.start, d.task.end);
  }
  const seconds = (options.durationMs ?? 0) / 1000;
  const deadChunks = stats.deadLettered - stats.malformed;
  const planned = record?.totalChunks ??
    Math.max(0, stats.completed + deadChunks + pending + stats.cancelled - stats.splits);
  const params = record?.totalParams ?? paramsCompleted + paramsDead;
  const fleet = source.fleet ?? [];
  return {
    job_id: options.jobId,
    backend: options.backend,
    handler,
    params,
    parameters: {
      total: params,
      accounted: paramsCompleted + paramsDead,
      counted: paramsCompleted,
      dead_lettered: paramsDead,
    },
    chunks: {
      total: planned,
      planned,
      bisected: stats.splits,
      parts: 2 * stats.splits,
      completed: stats.completed,
      dead_lettered: deadChunks,
      pending,
      cancelled: stats.cancelled,
      malformed: stats.malformed,
      params_completed: paramsCompleted,
      params_dead_lettered: paramsDead,
    },
    missing: coverage && stats.cancelled === 0 ? missingChunks(coverage, record!) : {
      chunks: 0,
      chunk_ids: [],
    },
    failures: {
      dead_lettered_by_kind: byKind,
      handler_failures: fleet.reduce((n, w) => n + w.failures, 0),
      handler_timeouts: fleet.reduce((n, w) => n + w.timeouts, 0),
    },
    aggregate: aggregate.finish(),
    duplicates_discarded: stats.duplicates,
    zombie_completions: stats.zombies,
    retries: stats.retried,
    faults: { workers_killed: options.workersKilled ?? 0, chunks_reclaimed: stats.reclaimed },
    duration_seconds: round(seconds, 3),
    chunks_per_second: seconds > 0 ? round(stats.completed / seconds, 1) : 0,
    params_per_second: seconds > 0 ? round(paramsCompleted / seconds, 1) : 0,
    parallelism: seconds > 0 ? round(busyMs / 1000 / seconds, 2) : 0,
    slowest_chunks: slowest.map((r) => ({
      chunk_id: r.chunkId,
      duration_ms: r.durationMs,
      worker: r.workerId,
    })),
    workers: [...byWorker].sort(([a], [b]) => a.localeCompare(b)).map(([id, l]) => ({
      id,
      ...l,
      ...options.workerExtras?.get(id),
    })),
    dead_letters: deadLetters.slice(0, 20).map((d) => ({
      chunk_id: d.task?.chunkId ?? null,
      start: d.task?.start ?? null,
      end: d.task?.end ?? null,
      kind: d.kind,
      reason: d.reason,
    })),
  };
}

/** Keeps the {@linkcode SLOWEST} slowest results, slowest first. */
function keepSlowest(slowest: StoredResult[], r: StoredResult): void {
  if (slowest.length === SLOWEST && r.durationMs <= slowest[SLOWEST - 1]!.durationMs) return;
  slowest.push(r);
  slowest.sort((a, b) => b.durationMs - a.durationMs);
  if (slowest.length > SLOWEST) slowest.pop();
}

/** Planned chunks with a parameter neither counted nor dead-lettered. */
function missingChunks(
  coverage: Uint8Array,
  record: JobRecord,
): { chunks: number; chunk_ids: string[] } {
  const ids: string[] = [];
  let chunks = 0;
  const width = String(Math.max(0, record.totalChunks - 1)).length;
  for (let i = 0; i < record.totalChunks; i++) {
    const end = Math.min(record.totalParams, (i + 1) * record.chunkSize);
    for (let p = i * record.chunkSize; p < end; p++) {
      if ((coverage[p >> 3]! & (1 << (p & 7))) === 0) {
        chunks += 1;
        if (ids.length < 20) ids.push(String(i).padStart(Math.max(5, width), "0"));
        break;
      }
    }
  }
  return { chunks, chunk_ids: ids };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
