/**
 * Worker and CLI settings: flags, then environment (TTG names, then the predecessor's), then
 * defaults. This module and the ones it is made of (settings_source.ts, settings_broker.ts,
 * settings_job.ts, settings_dashboard.ts) are the only ones that read the environment. Every value is validated; a bad
 * one is a {@linkcode ConfigError} naming the flag or variable and the value (exit code 2).
 *
 * @module
 */
import { DEFAULT_HEARTBEAT_MS, DEFAULT_LEASE_MS } from "../brokers/broker.ts";
import { DEFAULT_RETRY } from "../brokers/policy.ts";
import { ConfigError } from "../errors.ts";
import { type ReducerName, REDUCERS } from "../jobs/reducers.ts";
import { LOG_LEVELS, type LogFormat, type LogLevel } from "./log.ts";
import {
  type Backend,
  backendOf,
  brokerUrl,
  NO_TLS,
  QUEUE_TYPES,
  type QueueType,
  type TlsFiles,
  type TlsPem,
  tlsSettings,
} from "./settings_broker.ts";
import {
  commandEnvSetting,
  commandSetting,
  jobArgs,
  jobsPattern,
  ttlSetting,
} from "./settings_job.ts";
import { type EnvReader, type FlagValues, processEnv, Resolver } from "./settings_source.ts";

export {
  type Backend,
  BACKENDS,
  isLocalHost,
  QUEUE_TYPES,
  type QueueType,
  type TlsFiles,
  type TlsPem,
} from "./settings_broker.ts";
export { type DashboardSettings, resolveDashboardSettings } from "./settings_dashboard.ts";
export { type EnvReader, type FlagValues, processEnv } from "./settings_source.ts";

/** Where handlers run: Web Worker threads, the main thread, or threads for module jobs only. */
export type ExecutionMode = "auto" | "threads" | "inline";

/** Every resolved setting. */
export interface Settings {
  readonly backend: Backend;
  /** Broker URL (redis://, rediss://, amqp://, amqps://); empty for sqlite. */
  readonly brokerUrl: string;
  readonly sqlitePath: string;
  /** PEM files for TLS to the broker (paths as given; "" when unset). */
  readonly tlsFiles: TlsFiles;
  /** Their contents, read when the settings are resolved; undefined without any file. */
  readonly tls: TlsPem | undefined;
  /** RabbitMQ task queues of namespaced jobs: classic (priorities) or quorum (replicated). */
  readonly queueType: QueueType;
  readonly jobId: string;
  /** Job module path or URL; empty for the built-in sweep. */
  readonly jobModule: string;
  /**
   * The jobs a fleet worker serves: a glob on job ids (`--jobs`, or `*` with `--all-jobs`); ""
   * for a worker of the one job `jobId`.
   */
  readonly jobsPattern: string;
  /** Where a fleet worker resolves the relative module paths of job records. */
  readonly jobsDir: string;
  /** Most chunks of the job in flight at once over the whole fleet; 0 for no cap. */
  readonly maxInFlight: number;
  /** Seconds a finished job's data is kept (`--ttl`); 0: the broker's default. */
  readonly ttlSeconds: number;
  /** Argv of the handler processes of a `--cmd` job; empty for a TypeScript job. */
  readonly command: readonly string[];
  /** How a `--cmd` job's results are reduced (its handler is `ttg.cmd.<reduce>`). */
  readonly reduce: ReducerName;
  /** Names of the worker's environment variables passed on to `--cmd` handlers. */
  readonly commandEnv: readonly string[];
  /** Run `--cmd` handlers in a sandbox. */
  readonly commandSandbox: boolean;
  readonly workerId: string;
  readonly concurrency: number;
  readonly batch: number;
  readonly params: number;
  readonly chunkSize: number;
  readonly workMs: number;
  readonly faultRate: number;
  /** The job's own arguments (`--args`, a JSON object), beside `work_ms` and `fault_rate`. */
  readonly args: Readonly<Record<string, unknown>>;
  readonly priority: number;
  readonly idleTimeoutMs: number;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  readonly graceMs: number;
  readonly chunkTimeoutMs: number;
  /** How long a server broker's connection is waited for (first connect, reconnects). */
  readonly connectTimeoutMs: number;
  readonly maxAttempts: number;
  /** Leases a chunk may lose (its worker died) before it is bisected or dead-lettered. */
  readonly maxCrashes: number;
  readonly retryBaseMs: number;
  /** Smallest chunk (in parameters) poison-chunk bisection splits down to. */
  readonly minSplit: number;
  readonly execution: ExecutionMode;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  readonly workers: number;
  /** Index of this pod in an Indexed Job (static mode). */
  readonly completionIndex: number;
  readonly podName: string;
  readonly nodeName: string;
  /** Port of `/metrics`, `/healthz` and `/readyz`; 0 serves none. */
  readonly metricsPort: number;
}

function defaultWorkerId(): string {
  let host = "local";
  try {
    host = Deno.hostname();
  } catch {
    // keep "local"
  }
  return `${host}-${Deno.pid}`;
}

/**
 * Resolves every setting from flags, then environment, then defaults.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveSettings } from "./settings.ts";
 * const env: Record<string, string> = { SIMULATE_WORK_MS: "2", QUEUE_BACKEND: "redis" };
 * const s = resolveSettings({ workers: "5" }, (k) => env[k]);
 * assert.ok(s.workMs === 2 && s.backend === "redis" && s.workers === 5);
 * ```
 */
export function resolveSettings(
  flags: FlagValues = {},
  env: EnvReader = processEnv,
  defaults: { readonly jobId?: string } = {},
  readFile: (path: string) => string = (path) => Deno.readTextFileSync(path),
): Settings {
  const r = new Resolver(flags, env);
  const backend = backendOf(r);
  const leaseMs = r.number("--lease-ms", ["TTG_LEASE_MS", "STALE_THRESHOLD_MS"], DEFAULT_LEASE_MS, {
    min: 100,
    max: 3_600_000,
    integer: true,
  });
  const heartbeatMs = r.number(
    "--heartbeat-ms",
    ["TTG_HEARTBEAT_MS"],
    Math.min(DEFAULT_HEARTBEAT_MS, Math.floor(leaseMs / 3)),
    {
      min: 10,
      max: 600_000,
      integer: true,
    },
  );
  if (heartbeatMs * 2 > leaseMs) {
    throw new ConfigError(
      "--heartbeat-ms",
      `Invalid --heartbeat-ms "${heartbeatMs}": expected at most half the lease (${leaseMs} ms)`,
    );
  }
  const jobId = r.string("--job-id", ["TTG_JOB_ID"], defaults.jobId ?? "ttg");
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(jobId)) {
    const src = r.source("--job-id", ["TTG_JOB_ID"]);
    throw ConfigError.invalid(
      src?.name ?? "--job-id",
      jobId,
      'letters, digits, ".", "_" or "-" (at most 63)',
    );
  }
  const upper = (s: string) => {
    const v = s.trim().toUpperCase();
    return v === "WARN" ? "WARNING" : v;
  };
  const url = brokerUrl(r, backend);
  const jobModule = r.string("--job", ["TTG_JOB_MODULE"], "");
  const command = commandSetting(r);
  if (command.length > 0 && jobModule !== "") {
    const src = r.source("--cmd", ["TTG_CMD"])!;
    throw new ConfigError(
      src.name,
      `Invalid ${src.name} "${src.raw}": a job is a module (--job) or a command (--cmd), not both`,
    );
  }
  return {
    backend,
    brokerUrl: url,
    sqlitePath: r.string("--sqlite-path", ["TTG_SQLITE_PATH"], ".ttg/ttg.db"),
    // Broker-only settings are read for the backend that uses them (ttg static uses none).
    ...(backend === "sqlite" ? NO_TLS : tlsSettings(r, readFile, url)),
    queueType: backend === "rabbitmq"
      ? r.choice("--rabbitmq-queue-type", ["TTG_RABBITMQ_QUEUE_TYPE"], "classic", QUEUE_TYPES)
      : "classic",
    jobId,
    jobModule,
    jobsPattern: jobsPattern(r),
    ttlSeconds: ttlSetting(r),
    jobsDir: r.string("--jobs-dir", ["TTG_JOBS_DIR"], "."),
    maxInFlight: r.number("--max-in-flight", ["TTG_MAX_IN_FLIGHT"], 0, {
      min: 0,
      max: 1_000_000,
      integer: true,
    }),
    command,
    reduce: r.choice("--reduce", ["TTG_REDUCE"], "sum", REDUCERS),
    commandEnv: commandEnvSetting(r),
    commandSandbox: r.boolean("--cmd-sandbox", ["TTG_CMD_SANDBOX"], false),
    workerId: r.string("--worker-id", ["TTG_WORKER_ID", "WORKER_ID", "POD_NAME"], "") ||
      defaultWorkerId(),
    concurrency: r.number("--concurrency", ["TTG_CONCURRENCY"], 4, {
      min: 1,
      max: 1024,
      integer: true,
    }),
    batch: r.number("--batch", ["TTG_BATCH"], 64, { min: 1, max: 10_000, integer: true }),
    params: r.number("--params", ["TTG_PARAMS", "TOTAL_PARAMETERS"], 10_000, {
      min: 1,
      max: 1e12,
      integer: true,
    }),
    chunkSize: r.number("--chunk-size", ["TTG_CHUNK_SIZE", "CHUNK_SIZE"], 100, {
      min: 1,
      max: 1e9,
      integer: true,
    }),
    workMs: r.number("--work-ms", ["TTG_WORK_MS", "SIMULATE_WORK_MS"], 1, { min: 0, max: 60_000 }),
    faultRate: r.number("--fault-rate", ["TTG_FAULT_RATE", "SIMULATE_FAULT_RATE"], 0, {
      min: 0,
      max: 1,
    }),
    args: jobArgs(r),
    priority: r.number("--priority", ["TTG_PRIORITY"], 0, { min: 0, max: 10, integer: true }),
    idleTimeoutMs: r.number(
      "--idle-timeout",
      ["TTG_IDLE_TIMEOUT_SECONDS", "IDLE_TIMEOUT_SECONDS"],
      5000,
      {
        min: 0,
        max: 86_400,
        scale: 1000,
      },
    ),
    leaseMs,
    heartbeatMs,
    graceMs: r.number("--grace", ["TTG_GRACE_SECONDS"], 10_000, { min: 0, max: 3600, scale: 1000 }),
    chunkTimeoutMs: r.number("--chunk-timeout", ["TTG_CHUNK_TIMEOUT_SECONDS"], 300_000, {
      min: 0.01,
      max: 86_400,
      scale: 1000,
    }),
    connectTimeoutMs: r.number("--connect-timeout", ["TTG_CONNECT_TIMEOUT_SECONDS"], 10_000, {
      min: 0.1,
      max: 3600,
      scale: 1000,
    }),
    maxAttempts: r.number("--max-attempts", ["TTG_MAX_ATTEMPTS"], 4, {
      min: 1,
      max: 100,
      integer: true,
    }),
    maxCrashes: r.number("--max-crashes", ["TTG_MAX_CRASHES"], DEFAULT_RETRY.maxCrashes, {
      min: 1,
      max: 100,
      integer: true,
    }),
    retryBaseMs: r.number("--retry-base-ms", ["TTG_RETRY_BASE_MS"], 1000, {
      min: 0,
      max: 3_600_000,
      integer: true,
    }),
    minSplit: r.number("--min-split", ["TTG_MIN_SPLIT"], 1, { min: 1, max: 1e9, integer: true }),
    execution: r.choice(
      "--execution",
      ["TTG_EXECUTION"],
      "auto",
      ["auto", "threads", "inline"] as const,
    ),
    logLevel: r.choice("--log-level", ["LOG_LEVEL"], "INFO", LOG_LEVELS, upper),
    logFormat: r.choice("--log-format", ["LOG_FORMAT"], "text", ["text", "json"] as const),
    workers: r.number("--workers", ["TOTAL_WORKERS"], 3, { min: 1, max: 256, integer: true }),
    completionIndex: r.number("--index", ["JOB_COMPLETION_INDEX"], 0, {
      min: 0,
      max: 100_000,
      integer: true,
    }),
    podName: r.string(null, ["POD_NAME"], ""),
    nodeName: r.string(null, ["NODE_NAME"], ""),
    metricsPort: r.number("--metrics-port", ["TTG_METRICS_PORT"], 0, {
      min: 0,
      max: 65535,
      integer: true,
    }),
  };
}
