/**
 * The `ttg` commands that run sweeps: `run` (submit, workers, progress, report), `worker`,
 * `submit` and `static`.
 *
 * @module
 */
import type { Command } from "commander";
import { Option } from "commander";
import { ConfigError, TtgError } from "../../errors.ts";
import { workerReportJson } from "../json_output.ts";
import { EXIT_DEAD_LETTERS } from "../report_format.ts";
import { resolveSettings } from "../settings.ts";
import {
  brokerFlags,
  commandFlags,
  type Flags,
  logFor,
  policyFlags,
  print,
  runId,
  stopSignal,
  stopWhenStdinCloses,
  sweepFlags,
  workerFlags,
  workMsFlag,
  workMsHelp,
} from "./flags.ts";

/**
 * Adds `run`, `worker`, `submit` and `static` to `program`. Each action imports what it runs
 * when it runs: a worker process is one of these commands, and every module it loads and never
 * uses (the coordinator's, the report's) stays in its memory for its whole life.
 */
export function registerSweepCommands(program: Command): void {
  const run = program.command("run").description(
    "run the main job locally: submit a sweep, start workers, report",
  );
  brokerFlags(policyFlags(commandFlags(workerFlags(sweepFlags(run)))), "a new run-<date>-<time> id")
    .option("--workers <n>", "worker processes to start (default 3; env TOTAL_WORKERS)")
    .option("--fault-demo", "SIGKILL one worker once ~30% of the chunks are done")
    .option("--json", "print the report as one JSON object")
    .option("--allow-dead-letters", "exit 0 even when chunks were dead-lettered (else exit code 3)")
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags, undefined, { jobId: runId() });
      const [{ runJob }, { ProgressReporter }, { formatReport }] = await Promise.all([
        import("../run.ts"),
        import("../progress.ts"),
        import("../report.ts"),
      ]);
      using stop = stopSignal();
      const progress = new ProgressReporter();
      const report = await runJob(settings, {
        faultDemo: flags.faultDemo === true,
        progress,
        signal: stop.signal,
      });
      print(flags.json ? JSON.stringify(report) : formatReport(report));
      const dead = report.chunks.dead_lettered + report.chunks.malformed;
      if (dead > 0 && !flags.allowDeadLetters) {
        throw new TtgError(
          "DEAD_LETTERS",
          `Job "${settings.jobId}" finished with ${dead} dead letter${
            dead === 1 ? "" : "s"
          } (exit code ${EXIT_DEAD_LETTERS}; --allow-dead-letters exits 0): see ttg dlq list --job-id ${settings.jobId}`,
        );
      }
    });

  const worker = program.command("worker").description(
    "serve a job's chunks (or every job's, with --all-jobs) until drained (idle timeout) or SIGTERM",
  );
  brokerFlags(policyFlags(commandFlags(workerFlags(worker))))
    .option("--all-jobs", "serve every job on the broker, also jobs submitted later (a fleet)")
    .option(
      "--jobs <glob>",
      "serve the jobs whose id matches the glob, e.g. 'nightly-*' (default: --job-id's one; env TTG_JOBS)",
    )
    .option(
      "--jobs-dir <dir>",
      "where a fleet worker finds the job modules that job records name (default .; env TTG_JOBS_DIR)",
    )
    .option(
      "--worker-id <id>",
      "this worker's id (default <hostname>-<pid>; env TTG_WORKER_ID, WORKER_ID, POD_NAME)",
    )
    .option(
      "--idle-timeout <seconds>",
      "exit after this long without work once drained; 0 never (default 5; env TTG_IDLE_TIMEOUT_SECONDS)",
    )
    .option("--report-json", "print the worker's report as a JSON line on stdout at exit")
    .option(
      "--metrics-port <port>",
      "serve /metrics, /healthz and /readyz on this port (default 0: none; env TTG_METRICS_PORT)",
    )
    .addOption(
      new Option("--stop-with-stdin", "stop (as on SIGTERM) when stdin closes").hideHelp(),
    )
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags);
      const { serveWorker } = await import("../serve.ts");
      using stop = stopSignal();
      if (flags.stopWithStdin) void stopWhenStdinCloses(stop);
      const report = await serveWorker(settings, logFor(settings), stop.signal);
      if (flags.reportJson) print(JSON.stringify(workerReportJson(report)));
    });

  const submit = program.command("submit").description(
    "enqueue a sweep once (a second submit of the same job id enqueues nothing)",
  );
  brokerFlags(commandFlags(sweepFlags(submit), { worker: false }))
    .option(
      "--job <module>",
      "job module (its name is the tasks' handler) (default: the built-in ttg.sweep; env TTG_JOB_MODULE)",
    )
    .option("--json", "print the outcome as JSON")
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags);
      const [{ loadJobFor }, { planFor, submitPlan }, { withBroker }] = await Promise.all([
        import("../serve.ts"),
        import("../run.ts"),
        import("../broker_for.ts"),
      ]);
      const { job } = await loadJobFor(settings);
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
    .option("--index <n>", "this pod's index (default 0; env JOB_COMPLETION_INDEX)")
    .option("--workers <n>", "pods in all (default 3; env TOTAL_WORKERS)")
    .option(
      "--params <n>",
      "parameters to sweep (default 10000; env TTG_PARAMS, TOTAL_PARAMETERS)",
    )
    .option(workMsFlag, workMsHelp)
    .action(async (flags: Flags) => {
      const s = resolveSettings(flags);
      if (s.completionIndex >= s.workers) {
        throw ConfigError.invalid(
          flags.index !== undefined ? "--index" : "JOB_COMPLETION_INDEX",
          s.completionIndex,
          `0 to ${s.workers - 1} (one index per pod; --workers is ${s.workers})`,
        );
      }
      const { runStatic } = await import("../static_mode.ts");
      using stop = stopSignal();
      const share = await runStatic(s.params, s.workers, s.completionIndex, {
        workMs: s.workMs,
        signal: stop.signal,
      });
      print(JSON.stringify(share));
    });
}
