/**
 * `deno task deploy --backend redis|rabbitmq [--mode queue|static|fleet] [--workers N]
 * [--params N] [--dry-run] [--target cluster|local]`: generate the objects and run them. On a
 * cluster (the current kubectl context): apply, wait for the broker, submit, start the workers,
 * wait until they are done and print the job report. Locally: run the generated submit, worker
 * and report containers as processes against the local broker. `--dry-run` prints what would be
 * applied (or run) and touches nothing.
 *
 * `--mode fleet` deploys standing workers instead and ends by printing how to submit to them
 * (a `kubectl port-forward` and a `ttg submit`); with `--submit` it also submits the sweep with a
 * one-off Job and reports it. Locally the fleet runs until Ctrl-C (or, with `--submit`, until the
 * job is reported).
 *
 * @module
 */
import "./node_warnings.ts";
import { parseArgs } from "node:util";
import type { DeploymentConfig, DeploymentProps } from "../deploy/config.ts";
import { synth } from "../deploy/synth.ts";
import { deadLettersInReport, EXIT_DEAD_LETTERS } from "../workers/report.ts";
import { combineShares, formatStaticTotal } from "../workers/static_mode.ts";
import { main, UsageError } from "./command.ts";
import {
  CONFIG_FLAGS,
  CONFIG_FLAGS_USAGE,
  FLAG_FOR_FIELD,
  propsFromFlags,
} from "./config_flags.ts";
import {
  DEFAULT_TIMEOUTS,
  describeSteps,
  finishSteps,
  preflight,
  runSteps,
  startSteps,
  withClusterState,
} from "./deploy_cluster.ts";
import { describePlan, planLocal, runLocalPlan } from "./deploy_local.ts";
import { runLocalFleet } from "./deploy_local_fleet.ts";
import { fleetGuide } from "./fleet_submit.ts";

const USAGE =
  `Usage: deno task deploy [--target cluster|local] [--dry-run] [--timeout S] [deployment flags]

  --target cluster   apply to the cluster of the current kubectl context (default)
  --target local     run the generated containers as local processes against the local broker
                     (a fleet runs until Ctrl-C, or until its --submit job is reported)
  --dry-run          print what would be applied (or run); change nothing
  --timeout S        how long to wait for the workers (default ${DEFAULT_TIMEOUTS.workersSeconds})
  --allow-dead-letters
                     exit 0 even when the report shows dead letters (default: exit code 3)

${CONFIG_FLAGS_USAGE}`;

/** Parses the deploy flags. */
export function parseDeployArgs(args: readonly string[]) {
  const { values } = parseArgs({
    args: [...args],
    options: {
      ...CONFIG_FLAGS,
      target: { type: "string", default: "cluster" },
      "dry-run": { type: "boolean", default: false },
      timeout: { type: "string" },
      "allow-dead-letters": { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.target !== "cluster" && values.target !== "local") {
    throw new UsageError(`Invalid "--target": expected cluster or local, got "${values.target}"`);
  }
  if (values.target === "local" && values.keda) {
    throw new UsageError(
      `Invalid "--keda": KEDA scales workers on a cluster; --target local runs them directly`,
    );
  }
  if (values.target === "local" && values["tls-secret"] !== undefined) {
    throw new UsageError(
      `Invalid "--tls-secret": the certificate lives in a cluster Secret; --target local runs against the local brokers, which speak plain TCP`,
    );
  }
  const timeout = values.timeout === undefined
    ? DEFAULT_TIMEOUTS.workersSeconds
    : Number(values.timeout);
  if (!Number.isInteger(timeout) || timeout < 1) {
    throw new UsageError(
      `Invalid "--timeout": expected a whole number of seconds, got "${values.timeout}"`,
    );
  }
  return {
    values,
    target: values.target,
    timeouts: { ...DEFAULT_TIMEOUTS, workersSeconds: timeout },
  };
}

/** An AbortController aborted by the task's SIGINT or SIGTERM (a local fleet stops on it). */
function stopOnSignals(): AbortController & Disposable {
  const controller = new AbortController();
  const stop = () => controller.abort();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, stop);
  return Object.assign(controller, {
    [Symbol.dispose]: () => signals.forEach((s) => Deno.removeSignalListener(s, stop)),
  });
}

/**
 * What a finished deploy ends with, from the output of its outcome (the report Job's, or each
 * static pod's share): for static mode one line with the combined total of the shares; for a
 * queue the exit code, 3 when the report shows dead letters unless `allowDeadLetters`.
 */
export function finishDeploy(
  config: DeploymentConfig,
  outcome: string,
  allowDeadLetters: boolean,
): number {
  if (config.mode === "static") {
    const total = combineShares(outcome);
    if (total) console.log(formatStaticTotal(total));
    return 0;
  }
  const dead = deadLettersInReport(outcome) ?? 0;
  if (dead === 0 || allowDeadLetters) return 0;
  console.error(
    `Job "${config.job.id}" finished with ${dead} dead letter${
      dead === 1 ? "" : "s"
    } (exit code ${EXIT_DEAD_LETTERS}; --allow-dead-letters exits 0): see ttg dlq list --job-id ${config.job.id}`,
  );
  return EXIT_DEAD_LETTERS;
}

if (import.meta.main) {
  await main(async () => {
    const { values, target, timeouts } = parseDeployArgs(Deno.args);
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const props: DeploymentProps = propsFromFlags(values);
    const allowDeadLetters = values["allow-dead-letters"];
    if (target === "local") {
      const synthesized = synth(props);
      const plan = planLocal(synthesized);
      if (values["dry-run"]) {
        console.log(describePlan(plan));
        return 0;
      }
      using stop = stopOnSignals();
      const { code, outcome } = synthesized.config.mode === "fleet"
        ? await runLocalFleet(plan, synthesized.config, {
          signal: stop.signal,
          timeoutSeconds: timeouts.workersSeconds,
        })
        : await runLocalPlan(plan);
      return code !== 0 ? code : finishDeploy(synthesized.config, outcome, allowDeadLetters);
    }
    if (values["dry-run"]) {
      const synthesized = synth(props);
      console.log(
        describeSteps([
          ...startSteps(synthesized, timeouts),
          ...finishSteps(synthesized, timeouts),
        ]),
      );
      if (synthesized.config.mode === "fleet") {
        console.log(`\n${fleetGuide(synthesized.config).replace(/^/gm, "# ")}`);
      }
      return 0;
    }
    await preflight();
    const synthesized = synth(await withClusterState(props));
    await runSteps(synthesized, startSteps(synthesized, timeouts), timeouts);
    const outcome = await runSteps(synthesized, finishSteps(synthesized, timeouts), timeouts);
    if (synthesized.config.mode === "fleet") console.log(fleetGuide(synthesized.config));
    return finishDeploy(synthesized.config, outcome, allowDeadLetters);
  }, FLAG_FOR_FIELD);
}
