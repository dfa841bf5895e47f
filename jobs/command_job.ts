/**
 * Jobs whose handler is a program in any language: `commandJob({ name, command, args })` in a
 * job module, or `ttg run --cmd "python3 sim.py"`. The worker runs a pool of long-lived
 * processes of the command speaking protocol v1 (docs/PROTOCOL.md); TTG still decides every
 * chunk's fate and reduces the results.
 *
 * @module
 */
import { defineJob, type Job } from "./define_job.ts";
import { type ReducerName, reducerOf, REDUCERS } from "./reducers.ts";

/** How a job's handler processes are started. */
export interface CommandSpec {
  /** Program and arguments (a program name is looked up on the handler's PATH). */
  readonly argv: readonly string[];
  /** Variables set in the handler's environment. @default {} */
  readonly env: Readonly<Record<string, string>>;
  /** Names of the worker's variables passed on to the handler (PATH always is). @default [] */
  readonly passEnv: readonly string[];
  /** Working directory. @default the worker's */
  readonly cwd?: string;
  /** Longest wait for a process's hello line, in milliseconds. @default 30000 */
  readonly startTimeoutMs?: number;
  /** Run the processes in a sandbox (no network; see the README). @default false */
  readonly sandbox: boolean;
}

/** A job whose chunks run in handler processes. */
export type CommandJob<R = unknown, A = unknown> = Job<R, A> & {
  /** The handler processes' command. */
  readonly command: CommandSpec;
};

/** What {@linkcode commandJob} takes. */
export interface CommandJobDefinition<R = unknown, A = unknown> {
  /** Name the tasks carry (`handler`), e.g. `"acme.pricing"`. */
  readonly name: string;
  /** The program, e.g. `"python3"` or `"/opt/sim/bin/sim"`. */
  readonly command: string;
  /** Its arguments. @default [] */
  readonly args?: readonly string[];
  /** Variables set in the handler's otherwise clean environment (PATH is passed on). @default {} */
  readonly env?: Readonly<Record<string, string>>;
  /** Names of the worker's environment variables passed on to the handler. @default [] */
  readonly passEnv?: readonly string[];
  /** Working directory of the processes. @default the worker's */
  readonly cwd?: string;
  /** Combines the counted results: a function, or a built-in reducer's name. @default "sum" */
  readonly reduce?: ((results: readonly R[]) => A) | ReducerName;
  /** Per-chunk timeout override in milliseconds. */
  readonly timeoutMs?: number;
  /** Chunks must not be bisected when they exhaust their attempts. @default false */
  readonly indivisible?: boolean;
  /** Longest wait for a process's hello line, in milliseconds. @default 30000 */
  readonly startTimeoutMs?: number;
  /** Run the processes in a sandbox (no network); fails to start where none exists. @default false */
  readonly sandbox?: boolean;
}

/** Handler-name prefix of `--cmd` jobs; the rest names their reducer (`ttg.cmd.sum`). */
export const CMD_HANDLER_PREFIX = "ttg.cmd.";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function processesOnly(name: string): never {
  throw new Error(
    `Job "${name}" runs in handler processes: it cannot run in a thread or inline`,
  );
}

/**
 * Declares a job whose handler is a program speaking TTG's process protocol.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { commandJob } from "./command_job.ts";
 * const job = commandJob({
 *   name: "acme.sim",
 *   command: "python3",
 *   args: [new URL("./python/sweep.py", import.meta.url).pathname],
 *   passEnv: ["OMP_NUM_THREADS"],
 * });
 * assert.equal(job.command.argv[0], "python3");
 * assert.deepEqual(job.reduce!([1, 2]), 3); // the default reducer: sum
 * ```
 */
export function commandJob<R = unknown, A = unknown>(
  definition: CommandJobDefinition<R, A>,
): CommandJob<R, A> {
  const { name, command, reduce = "sum" } = definition;
  if (typeof command !== "string" || command === "") {
    throw new TypeError(`Invalid command of job "${name}": expected a program to run`);
  }
  const args = definition.args ?? [];
  if (!args.every((a) => typeof a === "string")) {
    throw new TypeError(`Invalid args of job "${name}": expected a list of strings`);
  }
  const env = definition.env ?? {};
  const passEnv = definition.passEnv ?? [];
  const badName = [...Object.keys(env), ...passEnv].find((n) => !ENV_NAME.test(n));
  if (badName !== undefined) {
    throw new TypeError(`Invalid environment variable name "${badName}" in job "${name}"`);
  }
  if (typeof reduce === "string" && !(REDUCERS as readonly string[]).includes(reduce)) {
    throw new TypeError(
      `Invalid reduce "${reduce}" of job "${name}": expected a function or one of ${
        REDUCERS.join(", ")
      }`,
    );
  }
  const job = defineJob<R, A>({
    name,
    run: () => processesOnly(name),
    reduce: typeof reduce === "string" ? reducerOf(reduce) as (r: readonly R[]) => A : reduce,
    indivisible: definition.indivisible,
    timeoutMs: definition.timeoutMs,
  });
  const spec: CommandSpec = Object.freeze({
    argv: Object.freeze([command, ...args]),
    env: Object.freeze({ ...env }),
    passEnv: Object.freeze([...passEnv]),
    cwd: definition.cwd,
    startTimeoutMs: definition.startTimeoutMs,
    sandbox: definition.sandbox ?? false,
  });
  return Object.freeze({ ...job, command: spec });
}

/** True for jobs made by {@linkcode commandJob} (duck-typed, like `isJob`). */
export function isCommandJob(job: Job): job is CommandJob {
  const command = (job as { command?: { argv?: unknown } }).command;
  return typeof command === "object" && command !== null && Array.isArray(command.argv);
}

/**
 * The job of `ttg run --cmd …`: named `ttg.cmd.<reducer>`, so the job record says how its
 * results are reduced and `ttg results` reduces them the same way.
 */
export function cmdJob(
  argv: readonly string[],
  options:
    & { readonly reduce: ReducerName; readonly passEnv?: readonly string[] }
    & Pick<
      CommandJobDefinition,
      "sandbox"
    >,
): CommandJob {
  const [command, ...args] = argv;
  return commandJob({
    name: `${CMD_HANDLER_PREFIX}${options.reduce}`,
    command: command ?? "",
    args,
    passEnv: options.passEnv,
    reduce: options.reduce,
    sandbox: options.sandbox,
  });
}

/**
 * The `--cmd` jobs by handler name, for reducing their results (`ttg results`); their handler
 * needs the command, so they cannot run chunks themselves.
 */
export const CMD_REDUCE_JOBS: ReadonlyMap<string, Job> = new Map(
  REDUCERS.map((r) => {
    const name = `${CMD_HANDLER_PREFIX}${r}`;
    return [
      name,
      defineJob({
        name,
        run: () => {
          throw new Error(`Job "${name}" needs its command: run its workers with --cmd`);
        },
        reduce: reducerOf(r),
      }),
    ];
  }),
);
