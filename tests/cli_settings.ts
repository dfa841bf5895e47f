/**
 * The settings a `ttg` command line resolves to: the real program parses the arguments
 * (commander, every subcommand's flags), and workers/settings.ts resolves them with the given
 * environment instead of the process's. For tests of generated containers and printed commands.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Command } from "commander";
import { buildProgram } from "../workers/cli.ts";
import { resolveSettings, type Settings } from "../workers/settings.ts";

/** The settings of `ttg <args…>` run with `env`; a command line that runs no command fails. */
export async function cliSettings(
  args: readonly string[],
  env: Readonly<Record<string, string>>,
): Promise<Settings> {
  const program = buildProgram();
  let settings: Settings | undefined;
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const command of all(program)) {
    command.configureOutput({ writeErr: () => {}, writeOut: () => {} });
    command.action((flags: Record<string, string | boolean | undefined>) => {
      settings = resolveSettings(flags, (k) => env[k]);
    });
  }
  await program.parseAsync([...args], { from: "user" });
  assert.ok(settings, `no command ran for ttg ${args.join(" ")}`);
  return settings;
}
