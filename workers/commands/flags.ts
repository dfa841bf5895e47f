/**
 * What every `ttg` command shares: its flags (with defaults and the variables they read), the
 * logger of a worker process, and the stop signal.
 *
 * @module
 */
import { type Command, Option } from "commander";
import type { Logger } from "../../jobs/define_job.ts";
import { createLogger } from "../log.ts";
import type { FlagValues, Settings } from "../settings.ts";

/** Flag values of every command. */
export type Flags = FlagValues & {
  json?: boolean;
  stopWithStdin?: boolean;
  faultDemo?: boolean;
  reportJson?: boolean;
  allowDeadLetters?: boolean;
  id?: string[];
};

/** Prints a line of a command's output. */
export function print(text: string): void {
  console.log(text);
}

/**
 * Where the broker is and which job: every command but `ttg static`. Help texts give each
 * default (tests/cli_help_test.ts checks them against settings.ts) and the variables read.
 */
export function brokerFlags(cmd: Command, jobIdDefault = "ttg"): Command {
  return cmd
    .option(
      "--backend <name>",
      "broker: sqlite, redis or rabbitmq (default: the broker URL's, else sqlite; env TTG_BACKEND, QUEUE_BACKEND)",
    )
    .option(
      "--broker-url <url>",
      "redis://, rediss://, amqp:// or amqps:// URL (default: from REDIS_HOST… or RABBITMQ_HOST…; env TTG_BROKER_URL, REDIS_URL, AMQP_URL)",
    )
    .option(
      "--sqlite-path <path>",
      "SQLite database file (default .ttg/ttg.db; env TTG_SQLITE_PATH)",
    )
    .option(
      "--tls-ca <file>",
      "PEM CA bundle for rediss:// or amqps:// (default: Deno's root store; env TTG_TLS_CA_FILE)",
    )
    .option(
      "--tls-cert <file>",
      "PEM client certificate for TLS (default none; env TTG_TLS_CERT_FILE)",
    )
    .option(
      "--tls-key <file>",
      "PEM key of the client certificate (default none; env TTG_TLS_KEY_FILE)",
    )
    .option(
      "--rabbitmq-queue-type <type>",
      "classic (priorities) or quorum (replicated) task queues (default classic; env TTG_RABBITMQ_QUEUE_TYPE)",
    )
    .option(
      "--connect-timeout <seconds>",
      "how long to wait for the broker's connection (default 10; env TTG_CONNECT_TIMEOUT_SECONDS)",
    )
    .option(
      "--job-id <id>",
      `job id: the namespace of every broker name (default ${jobIdDefault}; env TTG_JOB_ID)`,
    );
}

/** How chunks fail and how a process logs: the commands that run chunks (`run`, `worker`). */
export function policyFlags(cmd: Command): Command {
  return cmd
    .option(
      "--lease-ms <ms>",
      "lease of a claimed chunk (default 3000; env TTG_LEASE_MS, STALE_THRESHOLD_MS)",
    )
    .option(
      "--max-attempts <n>",
      "attempts before a chunk is bisected or dead-lettered (default 4; env TTG_MAX_ATTEMPTS)",
    )
    .option(
      "--max-crashes <n>",
      "leases a chunk may lose to dead workers before it is bisected (default 6; env TTG_MAX_CRASHES)",
    )
    .option(
      "--retry-base-ms <ms>",
      "first retry delay, doubled per attempt (default 1000; env TTG_RETRY_BASE_MS)",
    )
    .option("--log-level <level>", "DEBUG, INFO, WARNING or ERROR (default INFO; env LOG_LEVEL)")
    .option("--log-format <format>", "text or json (default text; env LOG_FORMAT)");
}

/** How a worker runs chunks: the commands that run them. */
export function workerFlags(cmd: Command): Command {
  return cmd
    .option(
      "--job <module>",
      "job module whose default export is defineJob(...) (default: the built-in ttg.sweep; env TTG_JOB_MODULE)",
    )
    .option(
      "--concurrency <n>",
      "handlers running at once per worker (default 4; env TTG_CONCURRENCY)",
    )
    .option("--batch <n>", "chunks pulled and acked per broker call (default 64; env TTG_BATCH)")
    .option(
      "--heartbeat-ms <ms>",
      "lease renewal interval (default 1000, at most a third of the lease; env TTG_HEARTBEAT_MS)",
    )
    .option(
      "--grace <seconds>",
      "on SIGTERM, time for running chunks to finish (default 10; env TTG_GRACE_SECONDS)",
    )
    .option(
      "--chunk-timeout <seconds>",
      "per-chunk timeout (default 300; env TTG_CHUNK_TIMEOUT_SECONDS)",
    )
    .option(
      "--min-split <n>",
      "smallest range poison-chunk bisection splits down to (default 1; env TTG_MIN_SPLIT)",
    )
    .addOption(
      new Option(
        "--execution <mode>",
        "where handlers run: auto (threads for a --job module), threads or inline (default auto; env TTG_EXECUTION)",
      ),
    );
}

/** A job whose handler is a program (docs/PROTOCOL.md); `--cmd-*` only where workers run. */
export function commandFlags(cmd: Command, { worker = true } = {}): Command {
  cmd
    .option(
      "--cmd <command>",
      'handler program speaking docs/PROTOCOL.md: a shell command line, or a JSON argv such as ["python3","sim.py"] (default: none; env TTG_CMD)',
    )
    .option(
      "--reduce <name>",
      "how --cmd results combine: sum, concat or count (default sum; env TTG_REDUCE)",
    );
  if (!worker) return cmd;
  return cmd
    .option(
      "--cmd-env <names>",
      "worker variables passed on to --cmd handlers, comma-separated (default: none; env TTG_CMD_ENV)",
    )
    .option(
      "--cmd-sandbox",
      "run --cmd handlers without network, with unshare (env TTG_CMD_SANDBOX)",
    );
}

/** What to sweep: the commands that submit. */
export function sweepFlags(cmd: Command): Command {
  return cmd
    .option(
      "--params <n>",
      "parameters to sweep (default 10000; env TTG_PARAMS, TOTAL_PARAMETERS)",
    )
    .option(
      "--chunk-size <n>",
      "parameters per chunk (default 100; env TTG_CHUNK_SIZE, CHUNK_SIZE)",
    )
    .option(workMsFlag, workMsHelp)
    .option(
      "--fault-rate <p>",
      "probability that a chunk fails (default 0; env TTG_FAULT_RATE, SIMULATE_FAULT_RATE)",
    )
    .option("--priority <n>", "0 (lowest) to 10 (default 0; env TTG_PRIORITY)")
    .option(
      "--ttl <duration>",
      "keep the job's data this long once it finished, e.g. 7d or 12h (default: the broker's retention default, else kept; env TTG_JOB_TTL)",
    )
    .option(
      "--max-in-flight <n>",
      "most of the job's chunks running at once, over the whole fleet (default 0: no cap; env TTG_MAX_IN_FLIGHT)",
    )
    .option(
      "--args <json>",
      "the job's arguments, a JSON object: chunk.args (default {}; env TTG_ARGS)",
    );
}

/** The simulated-work flag (also ttg static's). */
export const workMsFlag = "--work-ms <ms>";
/** Help of {@linkcode workMsFlag}. */
export const workMsHelp =
  "simulated work per parameter (default 1; env TTG_WORK_MS, SIMULATE_WORK_MS)";

/** The logger of a worker process. */
export function logFor(settings: Settings): Logger {
  return createLogger({
    level: settings.logLevel,
    format: settings.logFormat,
    context: {
      worker_id: settings.workerId,
      hostname: hostname(),
      ...(settings.podName ? { pod_name: settings.podName } : {}),
      ...(settings.nodeName ? { node_name: settings.nodeName } : {}),
      // A fleet worker's lines name the jobs it serves; its chunks' lines name their own job.
      ...(settings.jobsPattern ? { jobs: settings.jobsPattern } : { job_id: settings.jobId }),
    },
  });
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown"; // no sys permission
  }
}

/** Aborts on SIGTERM or SIGINT until disposed; the abort reason is the signal's name. */
export function stopSignal(): AbortController & Disposable {
  const controller = new AbortController();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGTERM", "SIGINT"];
  const listeners = signals.map((s) => [s, () => controller.abort(s)] as const);
  for (const [s, stop] of listeners) Deno.addSignalListener(s, stop);
  return Object.assign(controller, {
    [Symbol.dispose]() {
      for (const [s, stop] of listeners) Deno.removeSignalListener(s, stop);
    },
  });
}

/** Aborts `stop` once stdin reaches its end (the process that started this one is gone). */
export async function stopWhenStdinCloses(stop: AbortController): Promise<void> {
  try {
    for await (const _ of Deno.stdin.readable) {
      /* ttg run writes nothing; only the end matters */
    }
  } catch { /* closed */ }
  stop.abort("SIGTERM");
}

/** A fresh job id for `ttg run`: `run-<date>-<time>-<random>`. */
export function runId(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `run-${stamp}-${crypto.randomUUID().slice(0, 4)}`;
}
