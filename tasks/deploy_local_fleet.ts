/**
 * `deno task deploy --target local --mode fleet`: the fleet Deployment's pods as local processes
 * (`ttg worker --all-jobs --idle-timeout 0`, or `--jobs GLOB`) against the local broker, which,
 * like the Deployment, run until they are stopped. Without `--submit` the task prints how to
 * submit to them (the command a laptop runs through a port-forward, here straight to the local
 * broker) and keeps the fleet up until it gets SIGINT or SIGTERM, which it passes on as SIGTERM
 * so that every worker drains. With `--submit` it runs the submit Job's process, follows the
 * job's counters with the progress Job's, prints the report and stops the fleet.
 *
 * @module
 */
import type { DeploymentConfig } from "../deploy/config.ts";
import type { LocalPlan, LocalProcess } from "../deploy/local.ts";
import { EnvironmentError } from "./command.ts";
import { isDone, parseProgress, type Progress } from "./deploy_cluster.ts";
import { type LocalOutcome, localSecretOverrides, startLocal } from "./deploy_local.ts";
import { jobIdHint, renderSubmitCommand, submitCommand } from "./fleet_submit.ts";

/** Options of {@linkcode runLocalFleet}. */
export interface LocalFleetOptions {
  /** Stops a fleet run without `--submit` (the task's SIGINT or SIGTERM). */
  readonly signal: AbortSignal;
  /** How long to follow a submitted job. */
  readonly timeoutSeconds: number;
  /** Between two progress readings. @default 500 */
  readonly intervalMs?: number;
}

/**
 * The submit command for the local broker, as the fleet deploy prints it for a cluster: the same
 * `deno task ttg submit`, without the port-forward, with the local brokers' credentials.
 */
export function localSubmitText(config: DeploymentConfig): string {
  const overrides = localSecretOverrides(config);
  return renderSubmitCommand(
    submitCommand(config, "local"),
    config.namespace,
    (secret, key) => overrides[`${secret}/${key}`] ?? null,
  );
}

/** Runs a process to its end and returns its stdout lines; a failure ends the deploy. */
async function runToEnd(process: LocalProcess, prefix = true): Promise<string[]> {
  const lines: string[] = [];
  const code = await startLocal(process, { prefix, stdoutLines: lines });
  if (code !== 0) {
    throw new EnvironmentError(
      `"${process.name}" exited with code ${code}; is the local broker running?`,
    );
  }
  return lines;
}

/** Reads the progress Job's counters until every chunk has an outcome. */
async function followLocally(
  progressJob: LocalProcess,
  fleetExited: () => string | undefined,
  options: LocalFleetOptions,
): Promise<Progress> {
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  for (;;) {
    const lines: string[] = [];
    const code = await startLocal(progressJob, { prefix: false, stdoutLines: lines, quiet: true });
    const progress = code === 0 ? parseProgress(lines.join("\n")) : undefined;
    if (progress) {
      console.log(
        `  ${progress.completed}/${progress.total} chunks done, ${progress.deadLettered} dead-lettered`,
      );
      if (isDone(progress)) return progress;
    }
    const exited = fleetExited();
    if (exited) throw new EnvironmentError(`The fleet stopped before the job was done: ${exited}`);
    if (Date.now() > deadline) {
      throw new EnvironmentError(
        `Timed out after ${options.timeoutSeconds} s: ${progress?.completed ?? 0}/${
          progress?.total ?? "?"
        } chunks done`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 500));
  }
}

/**
 * Runs the fleet locally; with a submit process, submits, follows and reports, else serves until
 * `options.signal` aborts. Returns 0 when every fleet process stopped cleanly, and the report.
 */
export async function runLocalFleet(
  plan: LocalPlan,
  config: DeploymentConfig,
  options: LocalFleetOptions,
): Promise<LocalOutcome> {
  const stop = new AbortController();
  const exits: string[] = [];
  const fleet = plan.workers.map((p) =>
    startLocal(p, { signal: stop.signal }).then((code) => {
      if (!stop.signal.aborted) exits.push(`${p.name} exited with code ${code}`);
      return code;
    })
  );
  let outcome = "";
  let codes: number[] = [];
  try {
    if (plan.submit.length === 0) {
      console.log(
        `The fleet (${plan.workers.length} local workers) serves ${
          config.fleet.jobs === undefined
            ? "every job on the local broker"
            : `the jobs whose id matches "${config.fleet.jobs}"`
        }. Submit to it (${jobIdHint(config)}):\n  ${
          localSubmitText(config).replace(/\n/g, "\n  ")
        }\nCtrl-C stops it (each worker drains first).`,
      );
      await new Promise<void>((resolve) => {
        if (options.signal.aborted) return resolve();
        options.signal.addEventListener("abort", () => resolve(), { once: true });
        void Promise.all(fleet).then(() => resolve());
      });
    } else {
      for (const p of plan.submit) await runToEnd(p);
      const progressJob = plan.progress[0];
      if (!progressJob) throw new TypeError("A fleet with --submit has no progress Job");
      await followLocally(progressJob, () => exits[0], options);
      for (const p of plan.report) outcome += (await runToEnd(p, false)).join("\n") + "\n";
    }
  } finally {
    // Also when submitting or reporting failed: the workers drain before the task ends.
    stop.abort();
    codes = await Promise.all(fleet);
  }
  const failed = plan.workers.flatMap((p, i) =>
    codes[i] === 0 ? [] : [`${p.name} (exit code ${codes[i]})`]
  );
  if (failed.length > 0) {
    console.error(`Failed: ${failed.join(", ")}`);
    return { code: 1, outcome };
  }
  return { code: 0, outcome };
}
