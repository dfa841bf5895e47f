/**
 * `ttg run`: the main job on one machine. Submits a sweep, starts worker processes of this same
 * program, shows progress, optionally SIGKILLs one worker at ~30% (fault demo), waits until every
 * chunk is completed or dead-lettered, stops the workers and builds the report.
 *
 * @module
 */
import type { Broker, BrokerStats } from "../brokers/broker.ts";
import { ConfigError, TtgError } from "../errors.ts";
import { BUILTIN_JOBS } from "../jobs/load.ts";
import { planSweep, type SweepPlan } from "./plan.ts";
import type { Job } from "../jobs/define_job.ts";
import { wait } from "./periodic.ts";
import { ProgressReporter } from "./progress.ts";
import { buildReport, type JobReport, reportSource, type WorkerLine } from "./report.ts";

type WorkerExtras = Map<string, Omit<WorkerLine, "id" | "chunks" | "params">>;
import { openBrokerFor } from "./broker_for.ts";
import { loadJobFor } from "./serve.ts";
import type { Settings } from "./settings.ts";
import { WorkerProcess } from "./spawn.ts";

/** Options of {@linkcode runJob} beyond the settings. */
export interface RunOptions {
  /** SIGKILL one worker once ~30% of the chunks are done. */
  readonly faultDemo?: boolean;
  /** Where progress and notes go. */
  readonly progress?: ProgressReporter;
  /** Stop early (Ctrl-C): workers get SIGTERM and release their chunks. */
  readonly signal?: AbortSignal;
  /** Progress poll interval. @default 250 */
  readonly pollMs?: number;
}

/** The `ttg worker` command that finishes an interrupted run's job (no secret in it). */
function resumeCommand(settings: Settings): string {
  const flags = [`--backend ${settings.backend}`];
  if (settings.backend === "sqlite") flags.push(`--sqlite-path ${settings.sqlitePath}`);
  if (settings.tlsFiles.ca) flags.push(`--tls-ca ${settings.tlsFiles.ca}`);
  if (settings.tlsFiles.cert) flags.push(`--tls-cert ${settings.tlsFiles.cert}`);
  if (settings.tlsFiles.key) flags.push(`--tls-key ${settings.tlsFiles.key}`);
  if (settings.queueType !== "classic") flags.push(`--rabbitmq-queue-type ${settings.queueType}`);
  flags.push(`--job-id ${settings.jobId}`);
  const url = settings.backend === "sqlite" ? "" : " with the same --broker-url";
  return `ttg worker ${flags.join(" ")}${url}`;
}

/** Flags passed on to each worker process (the broker URL goes by environment, not argv). */
function workerArgs(settings: Settings, workerId: string): string[] {
  return [
    "worker",
    "--report-json",
    "--backend",
    settings.backend,
    "--sqlite-path",
    settings.sqlitePath,
    "--job-id",
    settings.jobId,
    ...(settings.jobModule ? ["--job", settings.jobModule] : []),
    ...(settings.command.length ? ["--cmd", JSON.stringify(settings.command)] : []),
    ...(settings.commandEnv.length ? ["--cmd-env", settings.commandEnv.join(",")] : []),
    ...(settings.commandSandbox ? ["--cmd-sandbox"] : []),
    "--worker-id",
    workerId,
    "--concurrency",
    String(settings.concurrency),
    "--batch",
    String(settings.batch),
    "--lease-ms",
    String(settings.leaseMs),
    "--heartbeat-ms",
    String(settings.heartbeatMs),
    "--idle-timeout",
    "0",
    "--grace",
    String(settings.graceMs / 1000),
    "--chunk-timeout",
    String(settings.chunkTimeoutMs / 1000),
    "--max-attempts",
    String(settings.maxAttempts),
    "--max-crashes",
    String(settings.maxCrashes),
    "--retry-base-ms",
    String(settings.retryBaseMs),
    "--min-split",
    String(settings.minSplit),
    "--execution",
    settings.execution,
    "--log-level",
    settings.logLevel,
    "--log-format",
    "json",
    "--stop-with-stdin",
  ];
}

function remaining(stats: BrokerStats): number {
  return stats.ready + stats.inFlight + stats.delayed;
}

/** Most chunks one job may have: each is a message, a lease and a stored result. */
export const MAX_CHUNKS = 1_000_000;

/** The sweep that the settings describe, for `job`: what `ttg run` and `ttg submit` publish. */
export function planFor(settings: Settings, job: Job): SweepPlan {
  const chunks = Math.ceil(settings.params / settings.chunkSize);
  if (chunks > MAX_CHUNKS) {
    throw new ConfigError(
      "--chunk-size",
      `Invalid --chunk-size "${settings.chunkSize}": ${settings.params} parameters would make ${chunks} chunks, more than ${MAX_CHUNKS} (use --chunk-size ${
        Math.ceil(settings.params / MAX_CHUNKS)
      } or more)`,
    );
  }
  return planSweep({
    jobId: settings.jobId,
    handler: job.name,
    params: settings.params,
    chunkSize: settings.chunkSize,
    args: { work_ms: settings.workMs, fault_rate: settings.faultRate, ...settings.args },
    priority: settings.priority,
    divisible: !job.indivisible,
    // A user module is kept in the record as given: `ttg results` reduces with it, and a fleet
    // worker loads it (a relative path against its --jobs-dir); built-ins go by name.
    ...(settings.jobModule && !BUILTIN_JOBS.has(settings.jobModule)
      ? { module: settings.jobModule }
      : {}),
    ...(settings.maxInFlight > 0 ? { maxInFlight: settings.maxInFlight } : {}),
    ...(settings.ttlSeconds > 0 ? { ttlSeconds: settings.ttlSeconds } : {}),
  });
}

/**
 * Chunks published per broker call: enough to amortize a round trip, few enough to stay small
 * (a coordinator of 300,000 chunks peaked at 106–112 MB RSS publishing 10,000 at a time, 96–98
 * MB at 2,000, 95 MB at 1,000; measured on 2026-12-02).
 */
const PUBLISH_BATCH = 2_000;

/**
 * Records the job and publishes its chunks, calling `onCreated` in between (so workers can start
 * while the chunks go out). Returns false when the job already exists (nothing is published). A
 * publish that fails midway removes the job again, so a second submit can start over instead of
 * finding a job with only some of its chunks.
 */
export async function submitPlan(
  broker: Broker,
  plan: SweepPlan,
  onCreated: () => void = () => {},
): Promise<boolean> {
  if (!(await broker.createJob(plan.record))) return false;
  onCreated();
  try {
    for (const batch of plan.batches(PUBLISH_BATCH)) await broker.publish(batch);
  } catch (error) {
    await broker.reset(plan.record.jobId).catch(() => {});
    throw error;
  }
  return true;
}

/** Runs a whole sweep locally and returns its report. */
export async function runJob(settings: Settings, options: RunOptions = {}): Promise<JobReport> {
  if (options.faultDemo && settings.workers < 2) {
    throw new ConfigError(
      "--workers",
      `Invalid --workers "${settings.workers}": the fault demo needs at least 2 workers`,
    );
  }
  const progress = options.progress ?? new ProgressReporter();
  const { job } = await loadJobFor(settings); // fail fast on a bad module
  const broker = await openBrokerFor(settings, `coordinator-${Deno.pid}`);
  const workers: WorkerProcess[] = [];
  let extras: WorkerExtras | undefined;
  try {
    if (!broker.capabilities.multiProcess) {
      throw new ConfigError(
        "--sqlite-path",
        `Invalid --sqlite-path "${settings.sqlitePath}": ttg run starts worker processes, which cannot share an in-memory database (give a file path)`,
      );
    }
    const plan = planFor(settings, job);
    const t0 = performance.now();
    // Workers start while the chunks are published: their startup overlaps the publishing.
    const env: Record<string, string> = {
      ...(settings.brokerUrl ? { TTG_BROKER_URL: settings.brokerUrl } : {}),
      ...(settings.tlsFiles.ca ? { TTG_TLS_CA_FILE: settings.tlsFiles.ca } : {}),
      ...(settings.tlsFiles.cert ? { TTG_TLS_CERT_FILE: settings.tlsFiles.cert } : {}),
      ...(settings.tlsFiles.key ? { TTG_TLS_KEY_FILE: settings.tlsFiles.key } : {}),
      TTG_RABBITMQ_QUEUE_TYPE: settings.queueType,
    };
    const startWorkers = () => {
      for (let i = 0; i < settings.workers; i++) {
        workers.push(new WorkerProcess(`worker-${i}`, workerArgs(settings, `worker-${i}`), env));
      }
    };
    if (!(await submitPlan(broker, plan, startWorkers))) {
      // The job exists: an earlier run of the same sweep (killed, say) is resumed, never re-enqueued.
      await assertSamePlan(broker, plan, settings.jobId);
      progress.note(`Job "${settings.jobId}" exists: resuming it, nothing enqueued`);
      startWorkers();
    }
    const exited = new Set<WorkerProcess>();
    for (const w of workers) void w.status.then(() => exited.add(w));
    let killed = 0;
    let drainedPolls = 0;
    for (;;) {
      if (options.signal?.aborted) {
        throw new TtgError(
          "INTERRUPTED",
          `The run was interrupted and its workers released their chunks; to finish job "${settings.jobId}", run ${
            resumeCommand(settings)
          }`,
          { cause: options.signal.reason },
        );
      }
      const stats = await broker.stats(settings.jobId);
      const done = stats.completed + stats.deadLettered;
      progress.update({
        done: Math.min(done, plan.record.totalChunks),
        total: plan.record.totalChunks,
        retries: stats.retried,
        deadLettered: stats.deadLettered,
        elapsedMs: performance.now() - t0,
      });
      if (options.faultDemo && killed === 0 && done >= plan.record.totalChunks * 0.3) {
        const victim = workers[1]!;
        victim.kill("SIGKILL");
        victim.killed = true;
        killed = 1;
        progress.note(
          `Fault demo: SIGKILLed ${victim.id} (pid ${victim.pid}) at ${done}/${plan.record.totalChunks} chunks`,
        );
      }
      // Drained: nothing left, and either every planned chunk is accounted for or (bisection
      // changes the count) the queue stayed empty for two polls.
      drainedPolls = remaining(stats) === 0 && done > 0 ? drainedPolls + 1 : 0;
      if (drainedPolls >= 2 || (drainedPolls === 1 && done >= plan.record.totalChunks)) break;
      // Workers in the terminal's process group get its Ctrl-C too: that is an interruption.
      if (exited.size === workers.length && !options.signal?.aborted) {
        const tail = workers.flatMap((w) => w.stderrTail.slice(-3)).join("\n");
        throw new TtgError("UNAVAILABLE", `All workers exited before the job was done:\n${tail}`);
      }
      const pendingKill = options.faultDemo && killed === 0;
      await wait(pendingKill ? 50 : options.pollMs ?? 250, options.signal);
    }
    const durationMs = performance.now() - t0;
    progress.finish();
    extras = await stopWorkers(workers);
    return await buildReport(await reportSource(broker, settings.jobId), {
      jobId: settings.jobId,
      backend: settings.backend,
      job,
      durationMs,
      workerExtras: extras,
      workersKilled: killed,
    });
  } finally {
    progress.finish();
    if (!extras) await stopWorkers(workers);
    await broker.close();
  }
}

/** Throws a ConfigError unless the job's record is the one `plan` would make (same sweep). */
async function assertSamePlan(broker: Broker, plan: SweepPlan, jobId: string): Promise<void> {
  const record = await broker.getJob(jobId);
  const wanted = plan.record;
  const differs = !record
    ? "it has no job record"
    : record.handler !== wanted.handler
    ? `its handler is "${record.handler}", not "${wanted.handler}"`
    : record.totalParams !== wanted.totalParams
    ? `it has ${record.totalParams} parameters, not ${wanted.totalParams}`
    : record.chunkSize !== wanted.chunkSize
    ? `its chunks have ${record.chunkSize} parameters, not ${wanted.chunkSize}`
    : JSON.stringify(record.args) !== JSON.stringify(wanted.args)
    ? `its arguments are ${JSON.stringify(record.args)}`
    : undefined;
  if (differs) {
    throw new ConfigError(
      "--job-id",
      `Invalid --job-id "${jobId}": that job exists with another sweep (${differs}); use a new id, or ttg reset --job-id ${jobId}`,
    );
  }
}

/** SIGTERMs the workers (they finish or release their chunks), SIGKILLs any that hang. */
async function stopWorkers(workers: readonly WorkerProcess[]): Promise<WorkerExtras> {
  for (const w of workers) if (!w.killed) w.kill("SIGTERM");
  const extras: WorkerExtras = new Map();
  await Promise.all(workers.map(async (w) => {
    const timer = setTimeout(() => w.kill("SIGKILL"), 30_000);
    const report = await w.report();
    clearTimeout(timer);
    if (w.killed) extras.set(w.id, { exit: "killed" });
    else if (!report) extras.set(w.id, { exit: "no report" });
    else {
      extras.set(w.id, {
        peak_rss_mb: megabytes(report.peak_rss_bytes),
        ...(report.peak_heap_bytes ? { peak_heap_mb: megabytes(report.peak_heap_bytes) } : {}),
      });
    }
  }));
  return extras;
}

/** Bytes in MB (2^20), to one decimal. */
function megabytes(bytes: number): number {
  return Math.round(bytes / 1048576 * 10) / 10;
}
