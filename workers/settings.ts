/**
 * Worker and CLI settings: flags, then environment (TTG names, then the predecessor's), then
 * defaults. This is the one module that reads the environment. Every value is validated; a bad
 * one is a {@linkcode ConfigError} naming the flag or variable and the value (exit code 2).
 *
 * @module
 */
import { DEFAULT_HEARTBEAT_MS, DEFAULT_LEASE_MS } from "../brokers/contract.ts";
import { ConfigError } from "../brokers/errors.ts";
import { LOG_LEVELS, type LogFormat, type LogLevel } from "./log.ts";

/** Backends `ttg` can use. */
export const BACKENDS = ["sqlite", "redis", "rabbitmq"] as const;
/** One of {@linkcode BACKENDS}. */
export type Backend = typeof BACKENDS[number];
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
  readonly workerId: string;
  readonly concurrency: number;
  readonly batch: number;
  readonly params: number;
  readonly chunkSize: number;
  readonly workMs: number;
  readonly faultRate: number;
  readonly priority: number;
  readonly idleTimeoutMs: number;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  readonly graceMs: number;
  readonly chunkTimeoutMs: number;
  readonly maxAttempts: number;
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
}

/** RabbitMQ queue types `--rabbitmq-queue-type` accepts. */
export const QUEUE_TYPES = ["classic", "quorum"] as const;
/** One of {@linkcode QUEUE_TYPES}. */
export type QueueType = typeof QUEUE_TYPES[number];

/** Paths of the PEM files for TLS to the broker; "" when unset. */
export interface TlsFiles {
  /** CA bundle that signed the broker's certificate (`--tls-ca`, env TTG_TLS_CA_FILE). */
  readonly ca: string;
  /** Client certificate (`--tls-cert`, env TTG_TLS_CERT_FILE). */
  readonly cert: string;
  /** Client certificate's key (`--tls-key`, env TTG_TLS_KEY_FILE). */
  readonly key: string;
}

/** PEM contents of {@linkcode TlsFiles}, only those that were given. */
export interface TlsPem {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/** Flag values as commander hands them over (strings, booleans or absent). */
export type FlagValues = Readonly<Record<string, string | boolean | undefined>>;
/** Reads one environment variable. */
export type EnvReader = (name: string) => string | undefined;

/** The process environment (needs `--allow-env`); the one place TTG reads it. */
export const processEnv: EnvReader = (name) => {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
};

interface Source {
  readonly name: string;
  readonly raw: string;
}

class Resolver {
  readonly #flags: FlagValues;
  readonly #env: EnvReader;
  constructor(flags: FlagValues, env: EnvReader) {
    this.#flags = flags;
    this.#env = env;
  }
  /** First of: the flag, then each env variable in order; undefined when none is set. */
  source(flag: string | null, envNames: readonly string[]): Source | undefined {
    if (flag) {
      const key = flag.replace(/^--/, "").replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
      const value = this.#flags[key];
      if (typeof value === "string") return { name: flag, raw: value };
      if (value === true) return { name: flag, raw: "true" };
    }
    for (const name of envNames) {
      const raw = this.#env(name);
      if (raw !== undefined && raw !== "") return { name, raw };
    }
    return undefined;
  }
  string(flag: string | null, envNames: readonly string[], fallback: string): string {
    return this.source(flag, envNames)?.raw ?? fallback;
  }
  number(
    flag: string | null,
    envNames: readonly string[],
    fallback: number,
    range: { min: number; max: number; integer?: boolean; scale?: number },
  ): number {
    const src = this.source(flag, envNames);
    if (!src) return fallback;
    const value = Number(src.raw.trim());
    const kind = range.integer ? "a whole number" : "a number";
    if (
      src.raw.trim() === "" || !Number.isFinite(value) ||
      (range.integer && !Number.isInteger(value)) || value < range.min || value > range.max
    ) {
      throw ConfigError.invalid(src.name, src.raw, `${kind} from ${range.min} to ${range.max}`);
    }
    return value * (range.scale ?? 1);
  }
  boolean(flag: string | null, envNames: readonly string[], fallback: boolean): boolean {
    const src = this.source(flag, envNames);
    if (!src) return fallback;
    const value = src.raw.trim().toLowerCase();
    if (["true", "1", "yes", "on"].includes(value)) return true;
    if (["false", "0", "no", "off"].includes(value)) return false;
    throw ConfigError.invalid(src.name, src.raw, "true or false");
  }
  choice<T extends string>(
    flag: string | null,
    envNames: readonly string[],
    fallback: T,
    choices: readonly T[],
    normalize: (raw: string) => string = (s) => s.trim().toLowerCase(),
  ): T {
    const src = this.source(flag, envNames);
    if (!src) return fallback;
    const value = normalize(src.raw) as T;
    if (!choices.includes(value)) {
      throw ConfigError.invalid(src.name, src.raw, `one of ${choices.join(", ")}`);
    }
    return value;
  }
}

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

/** True for loopback host names, where default credentials are acceptable. */
export function isLocalHost(host: string): boolean {
  return LOCAL_HOSTS.has(host.toLowerCase());
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

function brokerUrl(r: Resolver, backend: Backend): string {
  const explicit = r.source("--broker-url", ["TTG_BROKER_URL"]);
  if (backend === "sqlite") return "";
  if (backend === "redis") {
    const src = explicit ?? r.source(null, ["REDIS_URL"]);
    if (src) return checkUrl(src, ["redis:", "rediss:"]);
    const tls = r.boolean(null, ["REDIS_TLS"], false);
    const host = r.string(null, ["REDIS_HOST"], "127.0.0.1");
    const port = r.number(null, ["REDIS_PORT"], 6379, { min: 1, max: 65535, integer: true });
    const user = r.string(null, ["REDIS_USERNAME"], "");
    const password = r.string(null, ["REDIS_PASSWORD"], "");
    const auth = password ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}@` : "";
    return `${tls ? "rediss" : "redis"}://${auth}${hostPart(host)}:${port}`;
  }
  const src = explicit ?? r.source(null, ["AMQP_URL", "RABBITMQ_URL"]);
  if (src) return checkUrl(src, ["amqp:", "amqps:"]);
  const tls = r.boolean(null, ["RABBITMQ_TLS"], false);
  const host = r.string(null, ["RABBITMQ_HOST"], "127.0.0.1");
  const port = r.number(null, ["RABBITMQ_PORT"], tls ? 5671 : 5672, {
    min: 1,
    max: 65535,
    integer: true,
  });
  const vhost = r.string(null, ["RABBITMQ_VHOST"], "/");
  let user = r.string(null, ["RABBITMQ_USER", "RABBITMQ_DEFAULT_USER"], "");
  let password = r.string(null, ["RABBITMQ_PASSWORD", "RABBITMQ_DEFAULT_PASS"], "");
  if (!user || !password) {
    if (!isLocalHost(host)) {
      throw new ConfigError(
        "RABBITMQ_USER",
        `Missing RABBITMQ_USER/RABBITMQ_PASSWORD for RabbitMQ host "${host}": default credentials are only used on localhost`,
      );
    }
    user ||= "guest";
    password ||= "guest";
  }
  const vhostPart = vhost === "/" ? "" : `/${encodeURIComponent(vhost)}`;
  return `${tls ? "amqps" : "amqp"}://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${
    hostPart(host)
  }:${port}${vhostPart}`;
}

function hostPart(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

function checkUrl(src: Source, protocols: readonly string[]): string {
  let url: URL;
  try {
    url = new URL(src.raw);
  } catch {
    throw ConfigError.invalid(
      src.name,
      redact(src.raw),
      `a URL starting with ${protocols.join("// or ")}//`,
    );
  }
  if (!protocols.includes(url.protocol)) {
    throw ConfigError.invalid(
      src.name,
      redact(src.raw),
      `a URL starting with ${protocols.join("// or ")}//`,
    );
  }
  return src.raw;
}

const TLS_SOURCES = [
  ["ca", "--tls-ca", "TTG_TLS_CA_FILE"],
  ["cert", "--tls-cert", "TTG_TLS_CERT_FILE"],
  ["key", "--tls-key", "TTG_TLS_KEY_FILE"],
] as const;

const NO_TLS = { tlsFiles: { ca: "", cert: "", key: "" }, tls: undefined } as const;

/**
 * The TLS files' paths and contents. A file that cannot be read, or any file with a URL that is
 * not rediss:// or amqps:// (which would connect in plain text), is a ConfigError naming it.
 */
function tlsSettings(
  r: Resolver,
  readFile: (path: string) => string,
  url: string,
): { tlsFiles: TlsFiles; tls: TlsPem | undefined } {
  const files = { ca: "", cert: "", key: "" };
  const pem: { ca?: string; cert?: string; key?: string } = {};
  for (const [field, flag, envName] of TLS_SOURCES) {
    const src = r.source(flag, [envName]);
    if (!src) continue;
    const scheme = url.slice(0, url.indexOf(":"));
    if (scheme !== "rediss" && scheme !== "amqps") {
      throw new ConfigError(
        src.name,
        `Invalid ${src.name} "${src.raw}": TLS files need a rediss:// or amqps:// broker URL, not ${scheme}://`,
      );
    }
    files[field] = src.raw;
    let text: string;
    try {
      text = readFile(src.raw);
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound
        ? "the file does not exist"
        : (error as Error).message;
      throw new ConfigError(src.name, `Invalid ${src.name} "${src.raw}": ${why}`);
    }
    if (!text.includes("-----BEGIN ")) {
      throw ConfigError.invalid(src.name, src.raw, "a PEM file (-----BEGIN …)");
    }
    pem[field] = text;
  }
  if ((files.cert === "") !== (files.key === "")) {
    const given = files.cert ? "--tls-cert" : "--tls-key";
    const missing = files.cert ? "--tls-key" : "--tls-cert";
    throw new ConfigError(
      missing,
      `Missing ${missing}: ${given} needs it (a client certificate and its key go together)`,
    );
  }
  return { tlsFiles: files, tls: Object.keys(pem).length > 0 ? pem : undefined };
}

/** Hides the password of a URL for messages and logs. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
}

/**
 * Resolves every setting from flags, then environment, then defaults.
 *
 * @example
 * ```ts
 * import { resolveSettings } from "./settings.ts";
 * const env: Record<string, string> = { SIMULATE_WORK_MS: "2", QUEUE_BACKEND: "redis" };
 * const s = resolveSettings({ workers: "5" }, (k) => env[k]);
 * console.assert(s.workMs === 2 && s.backend === "redis" && s.workers === 5);
 * ```
 */
export function resolveSettings(
  flags: FlagValues = {},
  env: EnvReader = processEnv,
  defaults: { readonly jobId?: string } = {},
  readFile: (path: string) => string = (path) => Deno.readTextFileSync(path),
): Settings {
  const r = new Resolver(flags, env);
  const backend = r.choice("--backend", ["TTG_BACKEND", "QUEUE_BACKEND"], "sqlite", BACKENDS);
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
    jobModule: r.string("--job", ["TTG_JOB_MODULE"], ""),
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
    maxAttempts: r.number("--max-attempts", ["TTG_MAX_ATTEMPTS"], 4, {
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
  };
}
