/**
 * How the Kubernetes tasks run external programs (kubectl, kind, docker, deno) and end: a
 * missing program, an unreachable cluster or a failed command is one clear line and exit code
 * 1; bad input is one line per problem and exit code 2; never a stack trace.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { formatProblem, SynthError } from "../deploy/problems.ts";

/** The repository root (where deno.json and workers/cli.ts are). */
export const REPO_ROOT: string = fileURLToPath(new URL("../", import.meta.url));

/** Bad input (flags, config): exit code 2. */
export class UsageError extends Error {
  readonly code = "USAGE";
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Something about this machine or cluster (missing program, failed command): exit code 1. */
export class EnvironmentError extends Error {
  readonly code = "ENVIRONMENT";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "EnvironmentError";
  }
}

/** Where to get each program the tasks use. */
const INSTALL_HINTS: Readonly<Record<string, string>> = {
  kubectl: "install it: https://kubernetes.io/docs/tasks/tools/",
  kind: "install it: https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
  docker: "install Docker: https://docs.docker.com/get-docker/",
};

/** Options of {@linkcode run}. */
export interface RunOptions {
  /** Text written to the program's stdin. */
  readonly stdin?: string;
  /**
   * Capture stdout and stderr instead of passing them through. Without it stdout passes
   * through and stderr is captured (for the error line) and echoed when the program succeeds.
   * @default false
   */
  readonly capture?: boolean;
  readonly cwd?: string;
  readonly env?: Record<string, string>;
  /** Start from an empty environment (plus `env`). @default false */
  readonly clearEnv?: boolean;
  readonly signal?: AbortSignal;
}

/** What a finished program left. */
export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Quotes an argv for display, so a printed command can be pasted into a shell. Glob characters
 * (`*`, `?`, `[`) are quoted too: a job glob such as `nightly-*` must reach the program as given.
 */
export function shellQuote(argv: readonly string[]): string {
  return argv.map((
    a,
  ) => (/^[A-Za-z0-9_@%+=:,./{}-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`))
    .join(" ");
}

/** Runs a program to its end; a program that cannot start is an {@linkcode EnvironmentError}. */
export async function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const [program, ...args] = argv;
  if (!program) throw new TypeError("Cannot run an empty command");
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args,
      cwd: options.cwd,
      env: options.env,
      clearEnv: options.clearEnv,
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: options.capture ? "piped" : "inherit",
      stderr: "piped",
      signal: options.signal,
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      const hint = INSTALL_HINTS[program] ?? "is it installed and on PATH?";
      throw new EnvironmentError(`Cannot run "${program}": not found; ${hint}`, { cause: error });
    }
    throw new EnvironmentError(`Cannot run "${program}": ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const output = await child.output();
  const stdout = options.capture ? new TextDecoder().decode(output.stdout) : "";
  const stderr = new TextDecoder().decode(output.stderr);
  if (!options.capture && output.code === 0 && stderr) await Deno.stderr.write(output.stderr);
  return { code: output.code, stdout, stderr };
}

/** Runs a program and fails with its first error line when it exits non-zero. */
export async function mustRun(
  argv: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const result = await run(argv, options);
  if (result.code !== 0) {
    const detail = firstLine(result.stderr) || firstLine(result.stdout);
    throw new EnvironmentError(
      `Command failed (exit code ${result.code}): ${shellQuote(argv.slice(0, 4))}${
        argv.length > 4 ? " …" : ""
      }${detail ? `: ${detail}` : ""}`,
    );
  }
  return result;
}

/**
 * The line of a program's error output worth showing: the first `error…` line (kubectl, deno),
 * else the last line (docker, kind), without colours or a trailing backtrace.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { firstLine } from "./command.ts";
 * assert.equal(
 *   firstLine("DEPRECATED: legacy builder\nCannot connect to the Docker daemon"),
 *   "Cannot connect to the Docker daemon",
 * );
 * assert.equal(firstLine("error: You must be logged in\n"), "error: You must be logged in");
 * ```
 */
export function firstLine(text: string): string {
  // deno-lint-ignore no-control-regex
  const plain = text.replace(/\x1b\[[0-9;]*m/g, "").split("Stack backtrace:")[0] ?? "";
  const lines = plain.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  return lines.find((l) => /^(error|Error|ERROR)\b/.test(l)) ?? lines.at(-1) ?? "";
}

/** The exit code and the lines to print for an error ending a task. */
export function describeFailure(error: unknown, flagHints: Readonly<Record<string, string>> = {}): {
  readonly code: number;
  readonly lines: string[];
} {
  if (error instanceof SynthError) {
    return {
      code: 2,
      lines: error.problems.map((p) =>
        formatProblem(p) + (flagHints[p.field] ? ` (${flagHints[p.field]})` : "")
      ),
    };
  }
  const parseArgsError = error instanceof TypeError &&
    String((error as { code?: unknown }).code ?? "").startsWith("ERR_PARSE_ARGS");
  if (error instanceof UsageError || error instanceof RangeError || parseArgsError) {
    return { code: 2, lines: [(error as Error).message] };
  }
  if (error instanceof EnvironmentError) return { code: 1, lines: [error.message] };
  const message = error instanceof Error ? error.message.split("\n")[0] ?? "" : String(error);
  return { code: 1, lines: [`Error: ${message}`] };
}

/**
 * Runs a task's main function and exits: 0 on success (or the code it returns), 2 for bad
 * input, 1 for environment problems, printing only one line per problem on stderr.
 */
export async function main(
  task: () => Promise<number | void>,
  flagHints: Readonly<Record<string, string>> = {},
): Promise<never> {
  try {
    Deno.exit((await task()) ?? 0);
  } catch (error) {
    const { code, lines } = describeFailure(error, flagHints);
    for (const line of lines) console.error(line);
    Deno.exit(code);
  }
}
