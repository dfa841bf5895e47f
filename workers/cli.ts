/**
 * `ttg`: the one program for the CLI, the worker processes, the compiled binary and the image.
 *
 * ```sh
 * deno run -A workers/cli.ts run --workers 3 --fault-demo
 * ```
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import { BrokerError, ConfigError, redactUrl, TtgError } from "../errors.ts";
import { registerJobCommands } from "./commands/jobs.ts";
import { registerRetentionCommand } from "./commands/retention.ts";
import { registerSweepCommands } from "./commands/sweep.ts";
import { registerWatchCommands } from "./commands/watch.ts";
import { EXIT_DEAD_LETTERS } from "./report_format.ts";
import { processEnv } from "./settings.ts";
import { VERSION } from "./version.ts";

/** Builds the `ttg` command tree. */
export function buildProgram(): Command {
  const program = new Command()
    .name("ttg")
    .description("TTG: run a parameter sweep over a fleet of workers, exactly once per chunk.")
    .version(VERSION)
    .exitOverride();

  registerSweepCommands(program);
  registerJobCommands(program);
  registerRetentionCommand(program);
  registerWatchCommands(program);

  for (const command of commandTree(program)) {
    // A usage error is one line and a pointer to the command's help, never the help itself.
    command.showHelpAfterError(false).configureOutput({
      outputError: (text, write) =>
        write(
          `ttg: ${
            text.replace(/^error: /, "").trim().split("\n").join(" ").replace(/\.$/, "")
          }; see ${commandPath(command)} --help\n`,
        ),
    });
  }
  return program;
}

function* commandTree(command: Command): Generator<Command> {
  yield command;
  for (const sub of command.commands) yield* commandTree(sub);
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

/**
 * Maps an error to a one-line message and an exit code: 2 for bad input, 3 for a finished run
 * with dead letters, 130 or 143 for a run interrupted by SIGINT or SIGTERM (the shell's codes,
 * 128 + the signal's number), 1 otherwise (a broker that cannot be reached, workers that died).
 */
export function describeError(error: unknown): { message: string; code: number } {
  if (error instanceof TtgError && error.code === "INTERRUPTED") {
    return { message: error.message, code: error.cause === "SIGTERM" ? 143 : 130 };
  }
  if (error instanceof TtgError && error.code === "DEAD_LETTERS") {
    return { message: error.message, code: EXIT_DEAD_LETTERS };
  }
  if (error instanceof ConfigError) return { message: error.message, code: 2 };
  if (error instanceof TtgError && error.code === "JOB_LOAD") {
    return { message: error.message, code: 2 };
  }
  if (error instanceof TypeError || error instanceof RangeError) {
    return { message: error.message, code: 2 };
  }
  if (error instanceof BrokerError) return { message: redactUrl(error.message), code: 1 };
  if (error instanceof TtgError) return { message: error.message, code: 1 };
  const message = error instanceof Error ? error.message : String(error);
  return { message: redactUrl(message.split("\n")[0] ?? message), code: 1 };
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
