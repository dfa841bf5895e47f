/**
 * `deno task deploy` on a cluster: the steps (pure: command lines and the YAML each applies,
 * printed by `--dry-run`) and running them. Apply the broker, wait until it is ready, clear the
 * previous run's Jobs and Pods, run the submit Job, start the workers, wait until they are done
 * (or, for long-lived workers, until the job's counters say so), then print the report Job.
 *
 * Fleet mode keeps its workers: it applies the broker and the fleet, waits for the fleet's
 * rollout, and ends there (the task then prints how to submit to it); with `--submit` it also
 * replaces the submit Job, runs it, follows the job's counters and prints its report. It never
 * deletes the fleet's pods, which serve other jobs.
 *
 * @module
 */
import type { DeploymentConfig, DeploymentProps } from "../deploy/config.ts";
import { componentSelector, LABEL, MANAGED_BY, names, RUN_COMPONENTS } from "../deploy/labels.ts";
import {
  applyArgv,
  deleteBySelectorArgv,
  deleteJobArgv,
  getNamespaceLabelsArgv,
  getSecretDataArgv,
  logsArgv,
  logsBySelectorArgv,
  readyzArgv,
  rolloutStatusArgv,
  waitJobCompleteArgv,
  waitPodsSucceededArgv,
} from "../deploy/kubectl.ts";
import { type Stage, stageObjects, synth, type Synthesized, toYaml } from "../deploy/synth.ts";
import { EnvironmentError, firstLine, mustRun, run, shellQuote } from "./command.ts";

/** One step of a deploy. */
export type Step =
  | {
    readonly kind: "run";
    readonly title: string;
    readonly argv: readonly string[];
    readonly stdin?: string;
    /** Its output is the deploy's outcome (the job report, each pod's share): returned too. */
    readonly outcome?: true;
  }
  | { readonly kind: "wait-progress"; readonly title: string };

/** Timeouts of the waiting steps, in seconds. */
export interface Timeouts {
  readonly brokerSeconds: number;
  readonly submitSeconds: number;
  readonly workersSeconds: number;
}

/** Default timeouts. */
export const DEFAULT_TIMEOUTS: Timeouts = {
  brokerSeconds: 300,
  submitSeconds: 180,
  workersSeconds: 1800,
};

function apply(synthesized: Synthesized, stage: Stage, title: string): Step {
  return {
    kind: "run",
    title,
    argv: applyArgv(),
    stdin: toYaml(stageObjects(synthesized, [stage])),
  };
}

/** Kinds a run leaves behind (Jobs with their Pods, standalone Pods, a Deployment or ScaledJob). */
export function runKinds(config: DeploymentConfig): string[] {
  return [
    "jobs.batch",
    "pods",
    ...(config.workers.controller === "deployment" ? ["deployments.apps"] : []),
    ...(config.keda.enabled ? ["scaledjobs.keda.sh"] : []),
  ];
}

/** The steps up to and including starting the workers. */
export function startSteps(
  synthesized: Synthesized,
  timeouts: Timeouts = DEFAULT_TIMEOUTS,
): Step[] {
  const { config } = synthesized;
  const n = names(config);
  const ns = config.namespace;
  const steps: Step[] = [apply(synthesized, "infra", "Apply the namespace, broker and policies")];
  if (config.mode === "fleet") return [...steps, ...fleetStartSteps(synthesized, timeouts)];
  if (config.mode === "queue") {
    const broker = config.backend === "redis" ? n.redis : n.rabbitmq;
    steps.push({
      kind: "run",
      title: `Wait until ${config.backend} is ready`,
      argv: rolloutStatusArgv(broker, ns, timeouts.brokerSeconds),
    });
  }
  steps.push({
    kind: "run",
    title: "Delete the previous run's Jobs and Pods",
    argv: deleteBySelectorArgv(
      runKinds(config),
      componentSelector(config.name, ...RUN_COMPONENTS),
      ns,
    ),
  });
  if (config.mode === "queue") {
    steps.push(
      apply(synthesized, "submit", "Submit the sweep (idempotent)"),
      {
        kind: "run",
        title: "Wait for the submit Job",
        argv: waitJobCompleteArgv(n.submit, ns, timeouts.submitSeconds),
      },
      { kind: "run", title: "Submit Job output", argv: logsArgv(n.submit, ns) },
    );
  }
  steps.push(apply(synthesized, "workers", "Start the workers"));
  return steps;
}

/**
 * Fleet mode after the infrastructure: wait for the broker, start (or update) the fleet and wait
 * for its rollout; with `fleet.submit`, replace the submit Job (a Job's pod template cannot be
 * changed in place) and run it.
 */
function fleetStartSteps(synthesized: Synthesized, timeouts: Timeouts): Step[] {
  const { config } = synthesized;
  const n = names(config);
  const ns = config.namespace;
  const broker = config.backend === "redis" ? n.redis : n.rabbitmq;
  const steps: Step[] = [
    {
      kind: "run",
      title: `Wait until ${config.backend} is ready`,
      argv: rolloutStatusArgv(broker, ns, timeouts.brokerSeconds),
    },
    apply(synthesized, "workers", "Start or update the fleet"),
    {
      kind: "run",
      title: "Wait for the fleet's rollout",
      argv: rolloutStatusArgv(n.fleet, ns, timeouts.brokerSeconds, "deployment"),
    },
  ];
  if (!config.fleet.submit) return steps;
  return [
    ...steps,
    { kind: "run", title: "Replace the submit Job", argv: deleteJobArgv(n.submit, ns) },
    apply(synthesized, "submit", "Submit the sweep to the fleet (idempotent)"),
    {
      kind: "run",
      title: "Wait for the submit Job",
      argv: waitJobCompleteArgv(n.submit, ns, timeouts.submitSeconds),
    },
    { kind: "run", title: "Submit Job output", argv: logsArgv(n.submit, ns) },
  ];
}

/**
 * The steps that wait for the workers and print the report; none for a fleet without
 * `fleet.submit` (it has no job of its own to wait for).
 */
export function finishSteps(
  synthesized: Synthesized,
  timeouts: Timeouts = DEFAULT_TIMEOUTS,
): Step[] {
  const { config } = synthesized;
  const n = names(config);
  const ns = config.namespace;
  if (config.mode === "fleet" && !config.fleet.submit) return [];
  if (config.mode === "static") {
    return [
      {
        kind: "run",
        title: "Wait for the static Job",
        argv: waitJobCompleteArgv(n.static, ns, timeouts.workersSeconds),
      },
      {
        kind: "run",
        title: "Each pod's share",
        argv: logsBySelectorArgv(componentSelector(config.name, "static"), ns),
        outcome: true,
      },
    ];
  }
  const wait: Step = config.mode === "fleet" || config.keda.enabled ||
      config.workers.controller === "deployment"
    ? { kind: "wait-progress", title: "Follow the job's counters until every chunk is done" }
    : config.workers.controller === "pods"
    ? {
      kind: "run",
      title: "Wait until every worker pod has exited",
      argv: waitPodsSucceededArgv(
        componentSelector(config.name, "worker"),
        ns,
        timeouts.workersSeconds,
      ),
    }
    : {
      kind: "run",
      title: "Wait until the workers have drained the queue",
      argv: waitJobCompleteArgv(n.worker, ns, timeouts.workersSeconds),
    };
  return [
    wait,
    { kind: "run", title: "Replace the report Job", argv: deleteJobArgv(n.report, ns) },
    apply(synthesized, "report", "Run the report Job"),
    {
      kind: "run",
      title: "Wait for the report",
      argv: waitJobCompleteArgv(n.report, ns, timeouts.submitSeconds),
    },
    { kind: "run", title: "Job report", argv: logsArgv(n.report, ns), outcome: true },
  ];
}

/** Steps as text: what `--dry-run` prints. */
export function describeSteps(steps: readonly Step[]): string {
  return steps.map((step, i) => {
    const head = `# ${i + 1}. ${step.title}`;
    if (step.kind === "wait-progress") {
      return `${head}\n# (runs the progress Job, ttg status --json, until done)`;
    }
    const command = shellQuote(step.argv);
    return step.stdin === undefined
      ? `${head}\n${command}`
      : `${head}\n${command} <<'YAML'\n${step.stdin.trimEnd()}\nYAML`;
  }).join("\n\n");
}

/** The counters the progress Job prints. */
export interface Progress {
  readonly completed: number;
  readonly total: number;
  readonly deadLettered: number;
  readonly duplicates: number;
}

/**
 * Reads `ttg status --json` output (the last JSON line); undefined when there is none. Its keys
 * are snake_case; the camelCase keys that older images printed are read too.
 */
export function parseProgress(text: string): Progress | undefined {
  for (const line of text.trim().split("\n").reverse()) {
    try {
      const data = JSON.parse(line) as {
        job?: { total_chunks?: number; totalChunks?: number } | null;
        stats?: {
          completed?: number;
          dead_lettered?: number;
          deadLettered?: number;
          duplicates?: number;
        };
      };
      if (data.stats && typeof data.stats.completed === "number") {
        return {
          completed: data.stats.completed,
          total: data.job?.total_chunks ?? data.job?.totalChunks ?? 0,
          deadLettered: data.stats.dead_lettered ?? data.stats.deadLettered ?? 0,
          duplicates: data.stats.duplicates ?? 0,
        };
      }
    } catch {
      // not JSON: a log line
    }
  }
  return undefined;
}

/** Checks that kubectl exists and the current context's cluster answers. */
export async function preflight(): Promise<void> {
  const result = await run(readyzArgv(), { capture: true });
  if (result.code !== 0) {
    throw new EnvironmentError(
      `Cannot reach a Kubernetes cluster with the current kubectl context: ${
        firstLine(result.stderr) || "no answer"
      } (create one with \`deno task cluster up\`)`,
    );
  }
}

/**
 * Props adjusted to what the cluster already has: the broker passwords stored in its Secrets (a
 * broker keeps the password it started with, so a re-deploy must not generate a new one), and
 * no Namespace object for a namespace that exists but is not ours (labelling it would let
 * cleanup delete it).
 */
export async function withClusterState(props: DeploymentProps): Promise<DeploymentProps> {
  const config = synth(props).config;
  const n = names(config);
  const read = async (argv: string[]) => {
    const { stdout } = await mustRun(argv, { capture: true });
    return stdout.trim() ? JSON.parse(stdout) as Record<string, string> : undefined;
  };
  const password = async (secret: string) => {
    const data = await read(getSecretDataArgv(secret, config.namespace));
    return data?.password ? atob(data.password) : undefined;
  };
  const redis = await password(n.redisSecret);
  const rabbitmq = await password(n.rabbitmqSecret);
  const namespaceLabels = config.createNamespace
    ? await read(getNamespaceLabelsArgv(config.namespace))
    : undefined;
  const foreignNamespace = namespaceLabels !== undefined &&
    namespaceLabels[LABEL.managedBy] !== MANAGED_BY;
  return {
    ...props,
    ...(foreignNamespace ? { createNamespace: false } : {}),
    redis: { ...props.redis, ...(redis ? { password: redis } : {}) },
    rabbitmq: { ...props.rabbitmq, ...(rabbitmq ? { password: rabbitmq } : {}) },
  };
}

/** Runs the progress Job once and reads its counters. */
export async function readProgress(
  synthesized: Synthesized,
  timeouts: Timeouts = DEFAULT_TIMEOUTS,
): Promise<Progress> {
  const { config } = synthesized;
  const job = `${names(config).report}-progress`;
  await mustRun(deleteJobArgv(job, config.namespace), { capture: true });
  await mustRun(applyArgv(), {
    stdin: toYaml(stageObjects(synthesized, ["progress"])),
    capture: true,
  });
  await mustRun(waitJobCompleteArgv(job, config.namespace, timeouts.submitSeconds), {
    capture: true,
  });
  const { stdout } = await mustRun(logsArgv(job, config.namespace), { capture: true });
  const progress = parseProgress(stdout);
  if (!progress) {
    throw new EnvironmentError(
      `Cannot read the job's counters from "${job}": ${firstLine(stdout)}`,
    );
  }
  return progress;
}

/** Polls the progress Job until `done` says so (or the timeout passes). */
export async function followProgress(
  synthesized: Synthesized,
  done: (p: Progress) => boolean,
  options: { readonly timeoutSeconds: number; readonly intervalMs?: number },
): Promise<Progress> {
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  for (;;) {
    const progress = await readProgress(synthesized);
    console.log(
      `  ${progress.completed}/${progress.total} chunks done, ${progress.deadLettered} dead-lettered`,
    );
    if (done(progress)) return progress;
    if (Date.now() > deadline) {
      throw new EnvironmentError(
        `Timed out after ${options.timeoutSeconds} s: ${progress.completed}/${progress.total} chunks done`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 2000));
  }
}

/** True when every chunk has an outcome (counted or dead-lettered). */
export function isDone(p: Progress): boolean {
  return p.total > 0 && p.completed + p.deadLettered >= p.total;
}

/**
 * Runs steps in order, printing each title; a failing step ends the deploy. Returns the output
 * of the outcome steps (the job report, or each static pod's share), which it prints too.
 */
export async function runSteps(
  synthesized: Synthesized,
  steps: readonly Step[],
  timeouts = DEFAULT_TIMEOUTS,
): Promise<string> {
  let outcome = "";
  for (const step of steps) {
    console.log(`==> ${step.title}`);
    if (step.kind === "wait-progress") {
      await followProgress(synthesized, isDone, { timeoutSeconds: timeouts.workersSeconds });
    } else if (step.outcome) {
      const { stdout } = await mustRun(step.argv, { capture: true });
      if (stdout.trim()) console.log(stdout.trimEnd());
      outcome += stdout;
    } else {
      await mustRun(step.argv, step.stdin === undefined ? {} : { stdin: step.stdin });
    }
  }
  return outcome;
}
