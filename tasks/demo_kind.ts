/**
 * `deno task demo:kind --backend redis|rabbitmq [--fault-demo] [deployment flags]`: deploys to
 * the Kind cluster with standalone worker Pods (each independent: the predecessor found that a
 * Job with backoffLimit 0 fails every pod on one failure), and with `--fault-demo` kills one
 * worker pod once about 30% of the chunks are done. The job must still complete with every
 * chunk counted once; the demo checks the broker's counters and exits non-zero otherwise.
 *
 * @module
 */
import "./node_warnings.ts";
import { parseArgs } from "node:util";
import { DEFAULT_CLUSTER, kindGetClustersArgv } from "../deploy/kind.ts";
import { currentContextArgv, killPodArgv, podNamesArgv } from "../deploy/kubectl.ts";
import { componentSelector } from "../deploy/labels.ts";
import { synth } from "../deploy/synth.ts";
import { EnvironmentError, main, mustRun, UsageError } from "./command.ts";
import {
  CONFIG_FLAGS,
  CONFIG_FLAGS_USAGE,
  FLAG_FOR_FIELD,
  propsFromFlags,
} from "./config_flags.ts";
import {
  DEFAULT_TIMEOUTS,
  finishSteps,
  followProgress,
  isDone,
  type Progress,
  readProgress,
  runSteps,
  startSteps,
  withClusterState,
} from "./deploy_cluster.ts";

const USAGE =
  `Usage: deno task demo:kind [--fault-demo] [--fault-at 0.3] [--cluster ${DEFAULT_CLUSTER}] [deployment flags]

  --fault-demo     kill one worker pod once --fault-at of the chunks are done (default 0.3)

${CONFIG_FLAGS_USAGE}`;

/**
 * The demo's defaults: standalone pods and enough work for the fault to land mid-job (100 chunks
 * of 5 s on 3 workers × 4 slots: about 40 s, while each progress reading takes a few seconds).
 */
export const DEMO_DEFAULTS = {
  workers: "3",
  params: "10000",
  "chunk-size": "100",
  "work-ms": "50",
} as const;

/** Fails the demo when the job was over before a worker could be killed: no fault was shown. */
export function assertFaultLands(progress: Progress): void {
  if (isDone(progress)) {
    throw new EnvironmentError(
      `The job finished (${progress.completed}/${progress.total} chunks) before a worker pod could be killed: give it more work (--work-ms or --params) to see the fault`,
    );
  }
}

/** The verdict line of a finished demo. */
export function verdict(progress: Progress): { readonly ok: boolean; readonly line: string } {
  const ok = progress.total > 0 && progress.completed === progress.total &&
    progress.deadLettered === 0;
  return {
    ok,
    line: ok
      ? `Every chunk counted once: ${progress.completed}/${progress.total} completed, ${progress.duplicates} duplicate result(s) discarded`
      : `Job incomplete: ${progress.completed}/${progress.total} completed, ${progress.deadLettered} dead-lettered`,
  };
}

/** Parses the task's flags (and checks --fault-at); bad input throws. */
export function parseDemoArgs(args: readonly string[]) {
  const { values } = parseArgs({
    args: [...args],
    options: {
      ...CONFIG_FLAGS,
      "fault-demo": { type: "boolean", default: false },
      "fault-at": { type: "string", default: "0.3" },
      cluster: { type: "string", default: DEFAULT_CLUSTER },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.mode === "fleet") {
    throw new UsageError(
      `Invalid "--mode": the demo runs one sweep on worker pods of its own, got "fleet" (deploy a fleet with \`deno task deploy --mode fleet\`)`,
    );
  }
  const faultAt = Number(values["fault-at"]);
  if (!values.help && !(faultAt > 0 && faultAt < 1)) {
    throw new UsageError(
      `Invalid "--fault-at": expected a fraction between 0 and 1, got "${values["fault-at"]}"`,
    );
  }
  return { values, faultAt };
}

if (import.meta.main) {
  await main(async () => {
    const { values, faultAt } = parseDemoArgs(Deno.args);
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const clusters = (await mustRun(kindGetClustersArgv(), { capture: true })).stdout.split("\n");
    if (!clusters.includes(values.cluster)) {
      throw new EnvironmentError(
        `No Kind cluster "${values.cluster}": create it with \`deno task cluster up\``,
      );
    }
    const context = (await mustRun(currentContextArgv(), { capture: true })).stdout.trim();
    if (context !== `kind-${values.cluster}`) {
      throw new EnvironmentError(
        `The current kubectl context is "${context}", not "kind-${values.cluster}": run \`kubectl config use-context kind-${values.cluster}\``,
      );
    }
    const props = propsFromFlags({ ...DEMO_DEFAULTS, controller: "pods", ...values });
    const synthesized = synth(await withClusterState(props));
    const { config } = synthesized;
    await runSteps(synthesized, startSteps(synthesized));
    if (values["fault-demo"]) {
      console.log(`==> Wait until ${Math.round(faultAt * 100)}% of the chunks are done`);
      const reached = await followProgress(
        synthesized,
        (p) => p.total > 0 && p.completed >= p.total * faultAt,
        { timeoutSeconds: DEFAULT_TIMEOUTS.workersSeconds, intervalMs: 500 },
      );
      assertFaultLands(reached);
      const pods = (await mustRun(
        podNamesArgv(componentSelector(config.name, "worker"), config.namespace),
        { capture: true },
      )).stdout.split(/\s+/).filter(Boolean).sort();
      const victim = pods[0];
      if (!victim) {
        throw new EnvironmentError(
          "No running worker pod to kill: the workers have already exited (give the job more work: --work-ms or --params)",
        );
      }
      console.log(`==> Kill worker pod "${victim}" (no grace period)`);
      await mustRun(killPodArgv(victim, config.namespace));
    }
    await runSteps(synthesized, finishSteps(synthesized));
    const result = verdict(await readProgress(synthesized));
    console.log(result.line);
    return result.ok ? 0 : 1;
  }, FLAG_FOR_FIELD);
}
