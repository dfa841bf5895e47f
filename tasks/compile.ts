/**
 * `deno task compile [--output dist/ttg] [--target TRIPLE] [--dry-run]`: compiles workers/cli.ts
 * into one executable with the permissions of deploy/binary.ts, including the Web Worker
 * modules the worker starts (found in workers/). deno compile embeds a runtime (denort): it
 * uses DENORT_BIN when set, and otherwise downloads it, which needs the internet.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { BINARY_PATH, compileArgv, workerModules } from "../deploy/binary.ts";
import { EnvironmentError, firstLine, main, REPO_ROOT, run, shellQuote } from "./command.ts";

/** Web Worker modules started from workers/*.ts (paths relative to the repository root). */
export async function findWorkerModules(root: string = REPO_ROOT): Promise<string[]> {
  const found = new Set<string>();
  for await (const entry of Deno.readDir(`${root}/workers`)) {
    if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
    const source = await Deno.readTextFile(`${root}/workers/${entry.name}`);
    for (const module of workerModules(source, "workers")) found.add(module);
  }
  return [...found].sort();
}

/**
 * Why a `deno compile` failed, in one line, from its error output: the reasons under its
 * "Caused by:" (where deno says "Could not find denort at …"), the first type error, or its
 * error line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileFailure } from "./compile.ts";
 * const stderr = "error: Writing deno compile executable to temporary file 'dist/ttg.tmp'\n\n" +
 *   "Caused by:\n    0: Could not find denort at '/opt/denort'\n    1: No such file or directory (os error 2)\n";
 * assert.equal(compileFailure(stderr, "/opt/denort"),
 *   "deno compile failed: Could not find denort at '/opt/denort': No such file or directory (os error 2) (DENORT_BIN is /opt/denort: point it to the denort of this deno version)");
 * ```
 */
export function compileFailure(stderr: string, denort: string | undefined): string {
  // deno-lint-ignore no-control-regex
  const plain = stderr.replace(/\x1b\[[0-9;]*m/g, "").split("Stack backtrace:")[0] ?? "";
  if (!denort && plain.includes("dl.deno.land")) {
    return "deno compile could not download its runtime (denort) from dl.deno.land: set DENORT_BIN to a denort binary of this deno version";
  }
  const causes = (plain.split("Caused by:")[1] ?? "").split("\n")
    .map((line) => line.trim().match(/^\d+: (.*)$/)?.[1]).filter((c) => c !== undefined);
  const typeError = plain.match(/^(TS\d+ \[ERROR\]: [^\n]*)(?:\n(?!\s*at )[^\n]*)*\n\s*at (\S+)/m);
  const why = causes.length > 0
    ? causes.join(": ")
    : typeError
    ? `${typeError[1]} (at ${typeError[2]})`
    : firstLine(plain).replace(/^error: /, "");
  const hint = denort && /denort/i.test(why)
    ? ` (DENORT_BIN is ${denort}: point it to the denort of this deno version)`
    : "";
  return `deno compile failed: ${why}${hint}`;
}

/**
 * Runs a `deno compile` command line. On failure it throws one line saying why
 * ({@linkcode compileFailure}) and removes the directories it created for `output` if they were
 * left empty (deno makes the directory before it finds out it cannot write the binary).
 */
export async function compileExecutable(
  argv: readonly string[],
  options: { readonly output: string; readonly denort?: string; readonly cwd?: string },
): Promise<void> {
  const cwd = options.cwd ?? REPO_ROOT;
  const created: string[] = []; // the output's directories that do not exist yet, deepest first
  for (let dir = dirname(resolve(cwd, options.output)); !(await exists(dir)); dir = dirname(dir)) {
    created.push(dir);
  }
  const result = await run(argv, {
    cwd,
    capture: true,
    ...(options.denort ? { env: { DENORT_BIN: options.denort } } : {}),
  });
  if (result.code === 0) return;
  for (const dir of created) {
    try {
      await Deno.remove(dir); // only while empty
    } catch {
      break;
    }
  }
  throw new EnvironmentError(compileFailure(result.stderr, options.denort));
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

const USAGE = `Usage: deno task compile [--output ${BINARY_PATH}] [--target TRIPLE] [--dry-run]

  --output    where the executable goes (default ${BINARY_PATH})
  --target    a deno compile target triple (default: this machine)
  --dry-run   print the deno compile command instead of running it

deno compile embeds a runtime (denort): set DENORT_BIN to one of this Deno version where
dl.deno.land cannot be reached.`;

/** Parses the task's flags; bad input throws. */
export function parseCompileArgs(args: readonly string[]) {
  return parseArgs({
    args: [...args],
    options: {
      output: { type: "string", default: BINARY_PATH },
      target: { type: "string" },
      "dry-run": { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  }).values;
}

if (import.meta.main) {
  await main(async () => {
    const values = parseCompileArgs(Deno.args);
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const argv = compileArgv({
      deno: Deno.execPath(),
      output: values.output,
      include: await findWorkerModules(),
      target: values.target,
    });
    const denort = Deno.env.get("DENORT_BIN");
    if (values["dry-run"]) {
      console.log(`${denort ? `DENORT_BIN=${denort} ` : ""}${shellQuote(argv)}`);
      return 0;
    }
    await compileExecutable(argv, { output: values.output, denort, cwd: REPO_ROOT });
    console.log(`Compiled ${values.output}`);
    return 0;
  });
}
