/**
 * `deno task deploy --backend redis|rabbitmq [--workers N] [--params N] [--dry-run]
 * [--target cluster|local]`: generate the objects and run them. On a cluster (the current
 * kubectl context): apply, wait for the broker, submit, start the workers, wait until they are
 * done and print the job report. Locally: run the generated submit, worker and report
 * containers as processes against the local broker. `--dry-run` prints what would be applied
 * (or run) and touches nothing.
 *
 * @module
 */
import "./node_warnings.ts";
import { parseArgs } from "node:util";
import type { DeploymentProps } from "../deploy/config.ts";
import { synth } from "../deploy/synth.ts";
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

const USAGE =
  `Usage: deno task deploy [--target cluster|local] [--dry-run] [--timeout S] [deployment flags]

  --target cluster   apply to the cluster of the current kubectl context (default)
  --target local     run the generated containers as local processes against the local broker
  --dry-run          print what would be applied (or run); change nothing
  --timeout S        how long to wait for the workers (default ${DEFAULT_TIMEOUTS.workersSeconds})

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

if (import.meta.main) {
  await main(async () => {
    const { values, target, timeouts } = parseDeployArgs(Deno.args);
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const props: DeploymentProps = propsFromFlags(values);
    if (target === "local") {
      const plan = planLocal(synth(props));
      if (values["dry-run"]) {
        console.log(describePlan(plan));
        return 0;
      }
      return await runLocalPlan(plan);
    }
    if (values["dry-run"]) {
      const synthesized = synth(props);
      console.log(
        describeSteps([
          ...startSteps(synthesized, timeouts),
          ...finishSteps(synthesized, timeouts),
        ]),
      );
      return 0;
    }
    await preflight();
    const synthesized = synth(await withClusterState(props));
    await runSteps(synthesized, startSteps(synthesized, timeouts), timeouts);
    await runSteps(synthesized, finishSteps(synthesized, timeouts), timeouts);
    return 0;
  }, FLAG_FOR_FIELD);
}
