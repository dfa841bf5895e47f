/**
 * The `ttg` commands that read and manage jobs: `status`, `results`, `dlq list|replay|purge`
 * and `reset`.
 *
 * @module
 */
import { expiresAt } from "../../brokers/retention.ts";
import type { Command } from "commander";
import type { Broker, BrokerStats, JobRecord } from "../../brokers/broker.ts";
import { ConfigError, TtgError } from "../../errors.ts";
import { deadLetterJson, statusJson } from "../json_output.ts";
import { loadJob } from "../../jobs/load.ts";
import { withBroker } from "../broker_for.ts";
import { resolveSettings, type Settings } from "../settings.ts";
import type { ControlAction, ControlOutcome } from "../../brokers/registry.ts";
import { controlJob } from "../job_control.ts";
import { formatDuration } from "../progress.ts";
import { chunksOf, doneOf, type JobView, readSnapshot as readWatch } from "../watch/snapshot.ts";
import { brokerFlags, type Flags, print } from "./flags.ts";

/**
 * Adds `status`, `results`, `dlq`, `reset`, `jobs`, `pause`, `resume` and `cancel` to `program`
 * (`results` imports the report and the export when it runs: no other command needs them).
 */
export function registerJobCommands(program: Command): void {
  brokerFlags(program.command("jobs").description("list the jobs on the broker"))
    .option("--json", "print as JSON")
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags);
      await withBroker(settings, async (broker) => {
        const { expired } = await broker.retention.apply(); // what has expired is not listed
        const [{ jobs }, finished, fallback] = await Promise.all([
          readWatch(broker, { all: true }),
          broker.retention.finished(),
          broker.retention.defaultTtl(),
        ]);
        const expires = (job: JobView) =>
          expiresAt(finished.get(job.jobId) ?? null, job.record?.ttlSeconds ?? fallback);
        if (flags.json) {
          return print(JSON.stringify(jobs.map((job) => ({
            ...jobLineJson(job),
            expires_at: expires(job)?.toISOString() ?? null,
          }))));
        }
        for (const id of expired) console.error(`Job "${id}" expired: its data was deleted`);
        if (jobs.length === 0) return print(`No jobs on ${settings.backend}`);
        print(
          `${"JOB".padEnd(28)} ${"STATE".padEnd(10)} ${"CHUNKS".padStart(15)}  ${
            "PARAMETERS".padStart(12)
          }  ${"AGE".padEnd(8)} EXPIRES`,
        );
        for (const job of jobs) {
          const total = chunksOf(job) ?? 0;
          const age = formatDuration((Date.now() - Date.parse(job.record?.createdAt ?? "")) / 1000);
          const at = expires(job);
          const until = at
            ? `in ${formatDuration(Math.max(0, at.getTime() - Date.now()) / 1000)}`
            : "-";
          print(
            `${job.jobId.padEnd(28)} ${job.state.padEnd(10)} ${
              `${doneOf(job)}/${total}`.padStart(15)
            }  ${String(job.record?.totalParams ?? "?").padStart(12)}  ${age.padEnd(8)} ${until}`,
          );
        }
      });
    });

  const controls = [
    ["pause", "stop handing out a job's chunks (those in flight finish)"],
    ["resume", "hand out a paused job's chunks again"],
    ["cancel", "cancel a job: no more chunks run; queued ones are cancelled (final)"],
  ] as const;
  for (const [action, description] of controls) {
    brokerFlags(program.command(action).description(description))
      .option("--json", "print the outcome as JSON")
      .action(async (flags: Flags) => {
        const settings = resolveSettings(flags);
        await withBroker(settings, async (broker) => {
          const { finished, outcome } = await controlJob(broker, settings.jobId, action);
          if (flags.json) {
            return print(
              JSON.stringify({
                job_id: settings.jobId,
                state: finished ?? outcome.after,
                ...outcome,
              }),
            );
          }
          print(controlMessage(settings.jobId, action, finished, outcome));
        });
      });
  }

  brokerFlags(program.command("status").description("show a job's state, counters and fleet"))
    .option("--json", "print as JSON")
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags);
      await withBroker(settings, async (broker) => {
        const view = (await readWatch(broker, { jobId: settings.jobId })).jobs[0]!;
        const { record, stats, state, workers } = view;
        if (flags.json) {
          return print(JSON.stringify(statusJson(settings.jobId, record, stats, state, workers)));
        }
        const bisected = stats.splits > 0
          ? `, ${stats.splits} bisected into ${2 * stats.splits} parts`
          : "";
        print([
          `Job "${settings.jobId}" on ${settings.backend}${
            record ? ` (${record.handler}, ${record.totalParams} parameters)` : ""
          }`,
          `  state       ${state}`,
          `  chunks      ${record?.totalChunks ?? "?"} planned${bisected}`,
          `  completed   ${stats.completed} (${stats.completedParams} parameters)`,
          `  ready       ${stats.ready}`,
          `  in flight   ${stats.inFlight}`,
          `  retrying    ${stats.delayed}`,
          `  dead        ${stats.deadLettered}`,
          ...(stats.cancelled ? [`  cancelled   ${stats.cancelled}`] : []),
          `  duplicates  ${stats.duplicates} discarded`,
          `  zombies     ${stats.zombies} rejected completions`,
          `  retries     ${stats.retried}`,
          `  reclaimed   ${stats.reclaimed}`,
          `  consumers   ${stats.consumers}`,
          ...fleetTable(settings.jobId, workers),
        ].join("\n"));
      });
    });

  brokerFlags(
    program.command("results").description(
      "show a job's report and aggregate from its counted results, or export every result",
    ),
  )
    .option(
      "--job <module>",
      "job module that reduces the results (default: the module the job was submitted with; env TTG_JOB_MODULE)",
    )
    .option("--format <format>", "table, json or csv; with --export jsonl or csv (default table)")
    .option("--json", "the same as --format json")
    .option(
      "--export <file>",
      "stream every counted result to FILE (- for stdout), one a line (default: none, the report)",
    )
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags);
      const format = flags.json
        ? "json"
        : typeof flags.format === "string"
        ? flags.format
        : undefined;
      await withBroker(settings, async (broker) => {
        const { record } = await findJob(broker, settings);
        if (typeof flags.export === "string") {
          const kind = format ?? "jsonl";
          if (kind !== "jsonl" && kind !== "csv") {
            throw ConfigError.invalid("--format", kind, "jsonl or csv with --export");
          }
          const { exportResults } = await import("../export.ts");
          const n = await exportResults(broker, settings.jobId, record, flags.export, kind);
          if (flags.export !== "-") {
            console.error(`Exported ${n} result(s) of job "${settings.jobId}" to ${flags.export}`);
          }
          return;
        }
        const kind = format ?? "table";
        if (!["table", "json", "csv"].includes(kind)) {
          throw ConfigError.invalid("--format", kind, "table, json or csv");
        }
        // The job's own module reduces its results; a built-in handler goes by name (report.ts).
        const module = settings.jobModule || record?.module;
        const job = module ? (await loadJob(module)).job : undefined;
        const { buildReport, formatReport, reportCsv, reportSource } = await import("../report.ts");
        const report = await buildReport(await reportSource(broker, settings.jobId), {
          jobId: settings.jobId,
          backend: settings.backend,
          job,
        });
        print(
          kind === "json"
            ? JSON.stringify(report)
            : kind === "csv"
            ? reportCsv(report)
            : formatReport(report),
        );
      });
    });

  const dlq = program.command("dlq").description("dead letters: list, replay, purge");
  brokerFlags(dlq.command("list").description("list a job's dead letters"))
    .option("--json", "print as JSON")
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags);
      await withBroker(settings, async (broker) => {
        const letters = await broker.deadLetters.list(settings.jobId);
        if (flags.json) return print(JSON.stringify(letters.map(deadLetterJson)));
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
  for (const [name, verb] of [["replay", "replayed"], ["purge", "purged"]] as const) {
    brokerFlags(
      dlq.command(name).description(`${name} a job's dead letters (all, or those named by --id)`),
    )
      .option("--id <id...>", "dead-letter ids, from ttg dlq list (default: all of the job's)")
      .action(async (flags: Flags) => {
        const settings = resolveSettings(flags);
        await withBroker(settings, async (broker) => {
          const jobId = settings.jobId;
          if (flags.id) await assertDeadLettersExist(broker, jobId, flags.id, name, verb);
          const n = await broker.deadLetters[name]({
            jobId,
            ...(flags.id ? { ids: flags.id } : {}),
          });
          print(`${verb[0]!.toUpperCase()}${verb.slice(1)} ${n} dead letter(s) of job "${jobId}"`);
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
}

/**
 * Fails (exit code 2) when some of `ids` name no dead letter of the job, naming them, before
 * anything is replayed or purged. The broker checks the ids' form first, so a typo keeps its own
 * message; an id of the right form that is not listed matches nothing.
 */
async function assertDeadLettersExist(
  broker: Broker,
  jobId: string,
  ids: readonly string[],
  operation: "replay" | "purge",
  verb: string,
): Promise<void> {
  const listed = new Set((await broker.deadLetters.list(jobId)).map((d) => d.id));
  const missing = [...new Set(ids)].filter((id) => !listed.has(id));
  if (missing.length === 0) return;
  await broker.deadLetters[operation]({ jobId, ids: missing }); // checks their form; matches none
  throw new ConfigError(
    "--id",
    `No dead letter${missing.length === 1 ? "" : "s"} ${
      missing.map((id) => `"${id}"`).join(", ")
    } in job "${jobId}": nothing ${verb} (ttg dlq list --job-id ${jobId} lists them)`,
  );
}

/**
 * The job's record and counters; a job with neither a record nor any trace (a mistyped
 * `--job-id`, another backend) is an error rather than a row of zeros. A job with no record but
 * with chunks or results (enqueued by the predecessor's producer) is found.
 */
export async function findJob(
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

/** One job of `ttg jobs --json`. */
function jobLineJson(job: JobView): Record<string, unknown> {
  return {
    job_id: job.jobId,
    state: job.state,
    handler: job.record?.handler ?? null,
    chunks: chunksOf(job) ?? null,
    done: doneOf(job),
    params: job.record?.totalParams ?? null,
    created_at: job.record?.createdAt ?? null,
  };
}

/** What a control command says it did. */
function controlMessage(
  jobId: string,
  action: ControlAction,
  finished: string | undefined,
  outcome: ControlOutcome,
): string {
  if (finished) return `Job "${jobId}" is already ${finished}; nothing to ${action}`;
  if (outcome.before === "cancelled") {
    return `Job "${jobId}" is cancelled${
      action === "cancel" ? " already" : ""
    }: cancelling is final`;
  }
  if (outcome.before === outcome.after) {
    return `Job "${jobId}" is already ${outcome.after === "paused" ? "paused" : "running"}`;
  }
  if (action === "pause") {
    return `Paused job "${jobId}": its chunks in flight finish, no more start`;
  }
  if (action === "resume") return `Resumed job "${jobId}"`;
  return `Cancelled job "${jobId}": ${outcome.cancelled} queued chunk(s) cancelled; chunks in flight stop at their next heartbeat`;
}

/** The fleet lines of `ttg status`: fleet workers that cannot load the job's handler first. */
function fleetTable(jobId: string, workers: JobView["workers"]): string[] {
  if (workers.length === 0) return ["Workers: none registered"];
  const now = Date.now();
  const unloadable = workers.filter((w) => w.unloadable && Object.hasOwn(w.unloadable, jobId));
  return [
    ...(unloadable.length > 0
      ? [
        `  unloadable  ${unloadable.length} fleet worker(s) cannot load its handler: ${
          unloadable[0]!.unloadable![jobId]
        }`,
      ]
      : []),
    `Workers (${workers.length})`,
    `  ${"ID".padEnd(24)} ${"NODE".padEnd(14)} ${"STATE".padEnd(9)} ${
      "CHUNKS".padStart(8)
    }  LAST SEEN`,
    ...workers.map((w) =>
      `  ${w.workerId.padEnd(24)} ${(w.node || w.host).padEnd(14)} ${w.state.padEnd(9)} ${
        String(w.chunks).padStart(8)
      }  ${formatDuration((now - Date.parse(w.lastSeen)) / 1000)} ago`
    ),
  ];
}
