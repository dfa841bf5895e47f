/**
 * Wires one worker process from its settings: broker, job, handler executor, the loop.
 *
 * @module
 */
import type { Broker, BrokerOptions } from "../brokers/contract.ts";
import { openBroker } from "../brokers/open.ts";
import type { Job, Logger } from "../jobs/define_job.ts";
import { loadJob } from "../jobs/load.ts";
import { type ChunkExecutor, InlineExecutor } from "./executor.ts";
import { peakRssBytes } from "./memory.ts";
import type { Settings } from "./settings.ts";
import { ThreadPoolExecutor } from "./thread_pool.ts";
import { TtgWorker, type WorkerReport } from "./worker.ts";

/** Broker options that follow from the settings. */
export function brokerOptionsOf(settings: Settings, consumerId: string): Partial<BrokerOptions> {
  return {
    consumerId,
    leaseMs: settings.leaseMs,
    retry: {
      maxAttempts: settings.maxAttempts,
      baseDelayMs: settings.retryBaseMs,
      factor: 2,
      maxDelayMs: Math.max(settings.retryBaseMs, 30_000),
    },
  };
}

/** Opens the broker the settings name. */
export function openBrokerFor(settings: Settings, consumerId: string): Promise<Broker> {
  return openBroker({
    backend: settings.backend,
    url: settings.brokerUrl,
    sqlitePath: settings.sqlitePath,
    tls: settings.tls,
    queueType: settings.queueType,
    ...brokerOptionsOf(settings, consumerId),
  });
}

/**
 * Picks where handlers run: `auto` uses threads for jobs loaded from a user module and the main
 * thread for the built-in sweep (its work is an async wait, so it never blocks heartbeats).
 */
export async function createExecutor(
  settings: Settings,
  job: Job,
  moduleUrl: string | null,
  log: Logger,
): Promise<ChunkExecutor> {
  const threads = settings.execution === "threads" ||
    (settings.execution === "auto" && settings.jobModule !== "" && moduleUrl !== null);
  if (threads && moduleUrl) {
    return await ThreadPoolExecutor.create({
      moduleUrl,
      jobName: job.name,
      size: settings.concurrency,
      log,
    });
  }
  return new InlineExecutor(job, log);
}

/** A worker's report with its process's peak memory. */
export interface ServeReport extends WorkerReport {
  readonly peakRssBytes: number;
  readonly execution: string;
}

/** Runs one worker until it is idle or `signal` aborts. */
export async function serveWorker(
  settings: Settings,
  log: Logger,
  signal: AbortSignal,
): Promise<ServeReport> {
  const { job, moduleUrl } = await loadJob(settings.jobModule || undefined);
  const broker = await openBrokerFor(settings, settings.workerId);
  try {
    await using executor = await createExecutor(settings, job, moduleUrl, log);
    log.info("STARTING", {
      backend: settings.backend,
      job_id: settings.jobId,
      handler: job.name,
      execution: executor.mode,
      concurrency: settings.concurrency,
    });
    const worker = new TtgWorker({
      broker,
      jobId: settings.jobId,
      workerId: settings.workerId,
      job,
      executor,
      log,
      concurrency: settings.concurrency,
      batch: settings.batch,
      heartbeatMs: settings.heartbeatMs,
      idleTimeoutMs: settings.idleTimeoutMs,
      graceMs: settings.graceMs,
      chunkTimeoutMs: settings.chunkTimeoutMs,
      minSplit: settings.minSplit,
    });
    const report = await worker.run(signal);
    const { workerId: _, durationMs, ...counts } = report; // the logger adds worker_id
    log.info("COMPLETED", { ...counts, durationMs: Math.round(durationMs) });
    return { ...report, peakRssBytes: peakRssBytes(), execution: executor.mode };
  } finally {
    await broker.close();
  }
}
