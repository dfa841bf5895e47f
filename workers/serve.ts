/**
 * Wires one worker process from its settings: broker, job, handler executor, the loop.
 *
 * @module
 */
import type { Broker } from "../brokers/broker.ts";
import { openBrokerFor } from "./broker_for.ts";
import { ConfigError } from "../errors.ts";
import { CMD_HANDLER_PREFIX, cmdJob, type CommandJob, isCommandJob } from "../jobs/command_job.ts";
import type { Job, Logger } from "../jobs/define_job.ts";
import { type LoadedJob, loadJob, SWEEP_MODULE_URL } from "../jobs/load.ts";
import { FleetCatalog, type HandlerSpec, type JobHandler } from "./job_catalog.ts";
import { type ChunkExecutor, InlineExecutor } from "./executor.ts";
import { HeapPeak, peakRssBytes } from "./memory.ts";
import { snakeKeys } from "./json_output.ts";
import { PeriodicService } from "./periodic.ts";
import type { ProcessPoolExecutor } from "./process_pool.ts";
import { processEnv, type Settings } from "./settings.ts";
import { systemClock } from "./clock.ts";
import type { WorkerIdentity } from "./fleet_report.ts";
import { WorkerHealth } from "./health.ts";
import { VERSION } from "./version.ts";
import { TtgWorker, type WorkerReport } from "./worker.ts";

/** The job the settings name: a `--cmd` command, a `--job` module, or the built-in sweep. */
export async function loadJobFor(settings: Settings): Promise<LoadedJob> {
  if (settings.command.length === 0) return await loadJob(settings.jobModule || undefined);
  const job = cmdJob(settings.command, {
    reduce: settings.reduce,
    passEnv: settings.commandEnv,
    sandbox: settings.commandSandbox,
  });
  return { job, moduleUrl: null };
}

/**
 * Picks where handlers run: a command job in a pool of handler processes; otherwise `auto` uses
 * threads for jobs loaded from a user module and the main thread for the built-in sweep (its
 * work is an async wait, so it never blocks heartbeats). A pool's module is imported only when
 * one is made: a worker of the built-in sweep never loads either.
 */
export async function createExecutor(
  settings: Settings,
  job: Job,
  moduleUrl: string | null,
  log: Logger,
): Promise<ChunkExecutor> {
  if (isCommandJob(job)) return await createProcessPool(settings, job, log);
  const threads = settings.execution === "threads" ||
    (settings.execution === "auto" && settings.jobModule !== "" && moduleUrl !== null);
  if (threads && moduleUrl) {
    const { ThreadPoolExecutor } = await import("./thread_pool.ts");
    return await ThreadPoolExecutor.create({
      moduleUrl,
      jobName: job.name,
      size: settings.concurrency,
      log,
      permissions: job.permissions,
    });
  }
  return new InlineExecutor(job, log);
}

async function createProcessPool(
  settings: Settings,
  job: CommandJob,
  log: Logger,
): Promise<ProcessPoolExecutor> {
  if (settings.execution !== "auto") {
    throw ConfigError.invalid(
      "--execution",
      settings.execution,
      `auto: job "${job.name}" runs in handler processes`,
    );
  }
  const [{ handlerEnv, SANDBOX_PREFIX, sandboxProblem }, { ProcessPoolExecutor }] = await Promise
    .all([import("./process_command.ts"), import("./process_pool.ts")]);
  const { command } = job;
  const sandbox = command.sandbox || settings.commandSandbox;
  if (sandbox) {
    const problem = await sandboxProblem();
    if (problem) {
      throw new ConfigError(
        "--cmd-sandbox",
        `Invalid --cmd-sandbox: this machine offers no sandbox for handler processes (${problem})`,
      );
    }
  }
  return await ProcessPoolExecutor.create({
    argv: sandbox ? [...SANDBOX_PREFIX, ...command.argv] : command.argv,
    env: handlerEnv(command, processEnv),
    cwd: command.cwd,
    jobName: job.name,
    // A --cmd worker serves every --cmd job: the reducer in the handler's name is not its concern.
    accepts: job.name.startsWith(CMD_HANDLER_PREFIX)
      ? (handler) => handler.startsWith(CMD_HANDLER_PREFIX)
      : undefined,
    size: settings.concurrency,
    log,
    startTimeoutMs: command.startTimeoutMs,
  });
}

/** The worker's metrics and endpoints, when a metrics port is set; else the broker as it is. */
async function observe(settings: Settings, broker: Broker, log: Logger) {
  const sources: { worker?: { inFlight: number; busy: number } } = {};
  if (settings.metricsPort === 0) {
    return {
      broker,
      sources,
      events: undefined,
      health: undefined,
      close: () => Promise.resolve(),
    };
  }
  const { createWorkerMetrics, instrumentBroker } = await import("./metrics.ts");
  const { serveEndpoints } = await import("./metrics_server.ts");
  const health = new WorkerHealth(systemClock, 5 * settings.heartbeatMs + 5000);
  const metrics = createWorkerMetrics(
    // A fleet worker's counters carry its glob: per-job figures come from `ttg exporter`.
    {
      jobId: settings.jobsPattern || settings.jobId,
      backend: settings.backend,
      workerId: settings.workerId,
    },
    { inFlight: () => sources.worker?.inFlight ?? 0, busy: () => sources.worker?.busy ?? 0 },
  );
  const server = serveEndpoints({
    metrics: async () => ({
      text: await metrics.registry.metrics(),
      contentType: metrics.registry.contentType,
    }),
    notAlive: () => health.notAlive(),
    notReady: () => health.notReady(),
  }, { port: settings.metricsPort, log });
  return {
    broker: instrumentBroker(broker, metrics.observeBroker, health),
    sources,
    events: metrics.events,
    health,
    close: () => server.close(),
  };
}

/** Who this worker is, for the fleet registry. */
function identityOf(settings: Settings): WorkerIdentity {
  let host = "unknown";
  try {
    host = Deno.hostname();
  } catch { /* no sys permission */ }
  return {
    workerId: settings.workerId,
    host,
    pod: settings.podName,
    node: settings.nodeName,
    pid: Deno.pid,
    version: VERSION,
    startedAt: new Date().toISOString(),
  };
}

/** A worker's report with its process's peak memory. */
export interface ServeReport extends WorkerReport {
  /** Peak resident memory of the process (VmHWM). */
  readonly peakRssBytes: number;
  /** Largest V8 heap (committed) sampled on the heartbeat's interval and at exit. */
  readonly peakHeapBytes: number;
  readonly execution: string;
}

/**
 * The jobs of a fleet worker (`--all-jobs`, `--jobs`): each job's handler loaded from its record,
 * in threads for a module and in the main thread for a built-in (as `--execution` says).
 */
function fleetCatalog(settings: Settings, broker: Broker, log: Logger): FleetCatalog {
  return new FleetCatalog({
    broker,
    pattern: settings.jobsPattern,
    jobsDir: settings.jobsDir,
    log,
    createHandler: async (spec: HandlerSpec): Promise<JobHandler> => {
      if (spec.kind === "builtin") {
        const executor = await createExecutor(settings, spec.job, SWEEP_MODULE_URL, log);
        return { job: spec.job, executor };
      }
      const { job, moduleUrl } = await loadJob(spec.path);
      const executor = await createExecutor(
        { ...settings, jobModule: spec.path },
        job,
        moduleUrl,
        log,
      );
      return { job, executor };
    },
  });
}

/** Runs one worker until it is idle or `signal` aborts. */
export async function serveWorker(
  settings: Settings,
  log: Logger,
  signal: AbortSignal,
): Promise<ServeReport> {
  const fleet = settings.jobsPattern !== "";
  const single = fleet ? undefined : await loadJobFor(settings);
  log.info("STARTING", {
    backend: settings.backend,
    ...(single ? { handler: single.job.name } : { jobs: settings.jobsPattern }),
  });
  const broker = await openBrokerFor(settings, settings.workerId);
  try {
    await using executor = single
      ? await createExecutor(settings, single.job, single.moduleUrl, log)
      : undefined;
    const observed = await observe(settings, broker, log);
    log.info("INITIALIZED", {
      execution: executor?.mode ?? settings.execution,
      concurrency: settings.concurrency,
      ...(settings.metricsPort ? { metrics_port: settings.metricsPort } : {}),
    });
    const worker: TtgWorker = new TtgWorker({
      broker: observed.broker,
      identity: identityOf(settings),
      events: observed.events,
      health: observed.health,
      ...(single && executor
        ? { jobId: settings.jobId, job: single.job, executor }
        : { jobs: fleetCatalog(settings, observed.broker, log) }),
      workerId: settings.workerId,
      log,
      concurrency: settings.concurrency,
      batch: settings.batch,
      heartbeatMs: settings.heartbeatMs,
      idleTimeoutMs: settings.idleTimeoutMs,
      graceMs: settings.graceMs,
      chunkTimeoutMs: settings.chunkTimeoutMs,
    });
    observed.sources.worker = worker;
    const heap = new HeapPeak();
    const sampler = new PeriodicService({
      name: "heap sampler",
      intervalMs: settings.heartbeatMs,
      tick: () => Promise.resolve(heap.sample()),
    });
    sampler.start();
    const report = await worker.run(signal).finally(async () => {
      await sampler.stop();
      heap.sample();
      await observed.close();
    });
    const { workerId: _, durationMs, ...counts } = report; // the logger adds worker_id
    // COMPLETED: the job was drained; STOPPED: a signal ended the worker (after DRAINING).
    log.info(report.exitReason === "idle" ? "COMPLETED" : "STOPPED", {
      ...snakeKeys(counts),
      duration_ms: Math.round(durationMs),
    });
    return {
      ...report,
      peakRssBytes: peakRssBytes(),
      peakHeapBytes: heap.bytes,
      execution: executor?.mode ?? settings.execution,
    };
  } finally {
    await broker.close();
  }
}
