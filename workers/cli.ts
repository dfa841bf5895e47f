/**
 * `ttg`: the one program for the CLI, the worker processes, the compiled binary and the image.
 *
 * ```sh
 * deno run -A workers/cli.ts run --workers 3 --fault-demo
 * ```
 *
 * @module
 */
import { Command, CommanderError, Option } from "commander";
import type { Broker, BrokerStats, JobRecord } from "../brokers/contract.ts";
import { BrokerError, ConfigError, TtgError } from "../brokers/errors.ts";
import { loadJob } from "../jobs/load.ts";
import { createLogger } from "./log.ts";
import { ProgressReporter } from "./progress.ts";
import { buildReport, formatReport, readSnapshot } from "./report.ts";
import { planFor, runJob, submitPlan, withBroker } from "./run.ts";
import { serveWorker } from "./serve.ts";
import { type FlagValues, processEnv, redact, resolveSettings, type Settings } from "./settings.ts";
import { runStatic } from "./static_mode.ts";

const VERSION = "0.1.0";

type Flags = FlagValues & {
  json?: boolean;
  faultDemo?: boolean;
  reportJson?: boolean;
  id?: string[];
};

function print(text: string): void {
  console.log(text);
}

function brokerFlags(cmd: Command): Command {
  return cmd
    .option(
      "--backend <name>",
      "broker: sqlite, redis or rabbitmq (env TTG_BACKEND, QUEUE_BACKEND)",
    )
    .option(
      "--broker-url <url>",
      "redis://, rediss://, amqp:// or amqps:// URL (env TTG_BROKER_URL, REDIS_URL, AMQP_URL)",
    )
    .option("--sqlite-path <path>", "SQLite database file (env TTG_SQLITE_PATH)", undefined)
    .option("--tls-ca <file>", "PEM CA bundle for rediss:// or amqps:// (env TTG_TLS_CA_FILE)")
    .option("--tls-cert <file>", "PEM client certificate for TLS (env TTG_TLS_CERT_FILE)")
    .option("--tls-key <file>", "PEM key of the client certificate (env TTG_TLS_KEY_FILE)")
    .option(
      "--rabbitmq-queue-type <type>",
      "classic (priorities) or quorum (replicated) task queues (env TTG_RABBITMQ_QUEUE_TYPE)",
    )
    .option("--job-id <id>", "job id: the namespace of every broker name (env TTG_JOB_ID)")
    .option("--lease-ms <ms>", "lease of a claimed chunk (env TTG_LEASE_MS, STALE_THRESHOLD_MS)")
    .option(
      "--max-attempts <n>",
      "attempts before a chunk is bisected or dead-lettered (env TTG_MAX_ATTEMPTS)",
    )
    .option(
      "--retry-base-ms <ms>",
      "first retry delay, doubled per attempt (env TTG_RETRY_BASE_MS)",
    )
    .option("--log-level <level>", "DEBUG, INFO, WARNING or ERROR (env LOG_LEVEL)")
    .option("--log-format <format>", "text or json (env LOG_FORMAT)");
}

function workerFlags(cmd: Command): Command {
  return cmd
    .option(
      "--job <module>",
      "job module whose default export is defineJob(...) (env TTG_JOB_MODULE)",
    )
    .option("--concurrency <n>", "handlers running at once per worker (env TTG_CONCURRENCY)")
    .option("--batch <n>", "chunks pulled and acked per broker call (env TTG_BATCH)")
    .option("--heartbeat-ms <ms>", "lease renewal interval (env TTG_HEARTBEAT_MS)")
    .option(
      "--grace <seconds>",
      "on SIGTERM, time for running chunks to finish (env TTG_GRACE_SECONDS)",
    )
    .option("--chunk-timeout <seconds>", "per-chunk timeout (env TTG_CHUNK_TIMEOUT_SECONDS)")
    .option(
      "--min-split <n>",
      "smallest range poison-chunk bisection splits down to (env TTG_MIN_SPLIT)",
    )
    .addOption(
      new Option(
        "--execution <mode>",
        "where handlers run: auto, threads or inline (env TTG_EXECUTION)",
      ),
    );
}

function sweepFlags(cmd: Command): Command {
  return cmd
    .option("--params <n>", "parameters to sweep (env TTG_PARAMS, TOTAL_PARAMETERS)")
    .option("--chunk-size <n>", "parameters per chunk (env TTG_CHUNK_SIZE, CHUNK_SIZE)")
    .option("--work-ms <ms>", "simulated work per parameter (env TTG_WORK_MS, SIMULATE_WORK_MS)")
    .option(
      "--fault-rate <p>",
      "probability that a chunk fails (env TTG_FAULT_RATE, SIMULATE_FAULT_RATE)",
    )
    .option("--priority <n>", "0 (lowest) to 10 (env TTG_PRIORITY)");
}

function logFor(settings: Settings) {
  return createLogger({
    level: settings.logLevel,
    format: settings.logFormat,
    context: {
      worker_id: settings.workerId,
      ...(settings.podName ? { pod_name: settings.podName } : {}),
      ...(settings.nodeName ? { node_name: settings.nodeName } : {}),
    },
  });
}

/** Aborts on SIGTERM or SIGINT until disposed; the abort reason is the signal's name. */
function stopSignal(): AbortController & Disposable {
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

function runId(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `run-${stamp}-${crypto.randomUUID().slice(0, 4)}`;
}

/** Builds the `ttg` command tree. */
export function buildProgram(): Command {
  const program = new Command()
    .name("ttg")
    .description("TTG: run a parameter sweep over a fleet of workers, exactly once per chunk.")
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride();

  const run = program.command("run").description(
    "run the main job locally: submit a sweep, start workers, report",
  );
  brokerFlags(workerFlags(sweepFlags(run)))
    .option("--workers <n>", "worker processes to start (env TOTAL_WORKERS)", undefined)
    .option("--fault-demo", "SIGKILL one worker once ~30% of the chunks are done")
    .option("--json", "print the report as one JSON object")
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags, undefined, { jobId: runId() });
      using stop = stopSignal();
      const progress = new ProgressReporter();
      const report = await runJob(settings, {
        faultDemo: flags.faultDemo === true,
        progress,
        signal: stop.signal,
      });
      print(flags.json ? JSON.stringify(report) : formatReport(report));
    });

  const worker = program.command("worker").description(
    "serve a job's chunks until it is drained (idle timeout) or SIGTERM",
  );
  brokerFlags(workerFlags(worker))
    .option("--worker-id <id>", "this worker's id (env TTG_WORKER_ID, WORKER_ID, POD_NAME)")
    .option(
      "--idle-timeout <seconds>",
      "exit after this long without work once drained; 0 never (env TTG_IDLE_TIMEOUT_SECONDS)",
    )
    .option("--report-json", "print the worker's report as a JSON line on stdout at exit")
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags);
      using stop = stopSignal();
      const report = await serveWorker(settings, logFor(settings), stop.signal);
      if (flags.reportJson) print(JSON.stringify(report));
    });

  const submit = program.command("submit").description(
    "enqueue a sweep once (a second submit of the same job id enqueues nothing)",
  );
  brokerFlags(sweepFlags(submit))
    .option("--job <module>", "job module (its name is the tasks' handler) (env TTG_JOB_MODULE)")
    .option("--json", "print the outcome as JSON")
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags);
      const { job } = await loadJob(settings.jobModule || undefined);
      const plan = planFor(settings, job);
      await withBroker(settings, async (broker) => {
        const created = await submitPlan(broker, plan);
        const outcome = {
          job_id: settings.jobId,
          created,
          chunks: created ? plan.tasks.length : 0,
        };
        if (flags.json) return print(JSON.stringify(outcome));
        print(
          created
            ? `Submitted job "${settings.jobId}": ${plan.tasks.length} chunks of ${settings.chunkSize} parameters (${settings.params} in all) on ${settings.backend}`
            : `Job "${settings.jobId}" was already submitted; nothing enqueued`,
        );
      });
    });

  program.command("static")
    .description(
      "compute this pod's share of a sweep with no broker (Indexed Job: JOB_COMPLETION_INDEX)",
    )
    .option("--index <n>", "this pod's index (env JOB_COMPLETION_INDEX)")
    .option("--workers <n>", "pods in all (env TOTAL_WORKERS)")
    .option("--params <n>", "parameters to sweep (env TTG_PARAMS, TOTAL_PARAMETERS)")
    .action((flags: Flags) => {
      const s = resolveSettings(flags);
      if (s.completionIndex >= s.workers) {
        throw ConfigError.invalid(
          flags.index !== undefined ? "--index" : "JOB_COMPLETION_INDEX",
          s.completionIndex,
          `0 to ${s.workers - 1} (one index per pod; --workers is ${s.workers})`,
        );
      }
      print(JSON.stringify(runStatic(s.params, s.workers, s.completionIndex)));
    });

  brokerFlags(program.command("status").description("show a job's counters"))
    .option("--json", "print as JSON")
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags);
      await withBroker(settings, async (broker) => {
        const { record, stats } = await findJob(broker, settings);
        if (flags.json) {
          return print(JSON.stringify({ job_id: settings.jobId, job: record, stats }));
        }
        const total = record?.totalChunks ?? "?";
        print([
          `Job "${settings.jobId}" on ${settings.backend}${
            record ? ` (${record.handler}, ${record.totalParams} parameters)` : ""
          }`,
          `  completed   ${stats.completed}/${total}`,
          `  ready       ${stats.ready}`,
          `  in flight   ${stats.inFlight}`,
          `  retrying    ${stats.delayed}`,
          `  dead        ${stats.deadLettered}`,
          `  duplicates  ${stats.duplicates} discarded`,
          `  zombies     ${stats.zombies} rejected completions`,
          `  retries     ${stats.retried}`,
          `  reclaimed   ${stats.reclaimed}`,
          `  consumers   ${stats.consumers}`,
        ].join("\n"));
      });
    });

  brokerFlags(
    program.command("results").description("show a job's aggregate from its counted results"),
  )
    .option("--json", "print the report as JSON")
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags);
      await withBroker(settings, async (broker) => {
        await findJob(broker, settings);
        const report = buildReport(await readSnapshot(broker, settings.jobId), {
          jobId: settings.jobId,
          backend: settings.backend,
        });
        print(flags.json ? JSON.stringify(report) : formatReport(report));
      });
    });

  const dlq = program.command("dlq").description("dead letters: list, replay, purge");
  brokerFlags(dlq.command("list").description("list a job's dead letters"))
    .option("--json", "print as JSON")
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags);
      await withBroker(settings, async (broker) => {
        const letters = await broker.deadLetters.list(settings.jobId);
        if (flags.json) return print(JSON.stringify(letters));
        if (letters.length === 0) return print(`Job "${settings.jobId}" has no dead letters`);
        for (const d of letters) {
          const range = d.task ? `[${d.task.start}, ${d.task.end})` : "(unreadable)";
          print(
            `${d.id}  ${
              d.task?.chunkId ?? "-"
            } ${range} ${d.kind} after ${d.attempts} attempt(s): ${d.reason}`,
          );
        }
      });
    });
  for (const [name, verb] of [["replay", "Replayed"], ["purge", "Purged"]] as const) {
    brokerFlags(
      dlq.command(name).description(`${name} a job's dead letters (all, or those named by --id)`),
    )
      .option("--id <id...>", "dead-letter ids (from ttg dlq list)")
      .action(async (flags: Flags) => {
        const settings = resolveSettings(flags);
        await withBroker(settings, async (broker) => {
          const selector = { jobId: settings.jobId, ...(flags.id ? { ids: flags.id } : {}) };
          const n = await broker.deadLetters[name](selector);
          print(`${verb} ${n} dead letter(s) of job "${settings.jobId}"`);
        });
      });
  }

  brokerFlags(
    program.command("reset").description(
      "delete every trace of a job (tasks, results, dead letters)",
    ),
  )
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags);
      await withBroker(settings, async (broker) => {
        await broker.reset(settings.jobId);
        print(`Reset job "${settings.jobId}" on ${settings.backend}`);
      });
    });

  return program;
}

/**
 * The job's record and counters; a job with neither a record nor any trace (a mistyped
 * `--job-id`, another backend) is an error rather than a row of zeros. A job with no record but
 * with chunks or results (enqueued by the predecessor's producer) is found.
 */
async function findJob(
  broker: Broker,
  settings: Settings,
): Promise<{ record: JobRecord | null; stats: BrokerStats }> {
  const [record, stats] = await Promise.all([
    broker.getJob(settings.jobId),
    broker.stats(settings.jobId),
  ]);
  const traces = stats.ready + stats.inFlight + stats.delayed + stats.deadLettered +
    stats.completed;
  if (!record && traces === 0) {
    throw new TtgError(
      "NOT_FOUND",
      `Job "${settings.jobId}" was not found on ${settings.backend}: check --job-id and --backend`,
    );
  }
  return { record, stats };
}

/**
 * Maps an error to a one-line message and an exit code: 2 for bad input, 130 or 143 for a run
 * interrupted by SIGINT or SIGTERM (the shell's codes, 128 + the signal's number), 1 otherwise.
 */
export function describeError(error: unknown): { message: string; code: number } {
  if (error instanceof TtgError && error.code === "INTERRUPTED") {
    return { message: error.message, code: error.cause === "SIGTERM" ? 143 : 130 };
  }
  if (error instanceof ConfigError) return { message: error.message, code: 2 };
  if (error instanceof TtgError && error.code === "JOB_LOAD") {
    return { message: error.message, code: 2 };
  }
  if (error instanceof TypeError || error instanceof RangeError) {
    return { message: error.message, code: 2 };
  }
  if (error instanceof BrokerError) return { message: redact(error.message), code: 1 };
  if (error instanceof TtgError) return { message: error.message, code: 1 };
  const message = error instanceof Error ? error.message : String(error);
  return { message: redact(message.split("\n")[0] ?? message), code: 1 };
}

/** Runs `ttg` with `args`; returns the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...args], { from: "user" });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? 0 : 2; // help/version, or a usage error commander already printed
    }
    const { message, code } = describeError(error);
    console.error(`ttg: ${message}`);
    if (processEnv("LOG_LEVEL")?.toUpperCase() === "DEBUG" && error instanceof Error) {
      console.error(error.stack);
    }
    return code;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
