/**
 * `deno task compile [--output dist/ttg] [--target TRIPLE] [--dry-run]`: compiles workers/cli.ts
 * into one executable with the permissions of deploy/binary.ts, including the Web Worker
 * modules the worker starts (found in workers/). deno compile embeds a runtime (denort): it
 * uses DENORT_BIN when set, and otherwise downloads it, which needs the internet.
 *
 * @module
 */
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

const USAGE = `Usage: deno task compile [--output ${BINARY_PATH}] [--target TRIPLE] [--dry-run]

  --output    where the executable goes (default ${BINARY_PATH})
  --target    a deno compile target triple (default: this machine)
  --dry-run   print the deno compile command instead of running it

deno compile embeds a runtime (denort): set DENORT_BIN to one of this Deno version where
dl.deno.land cannot be reached.`;

if (import.meta.main) {
  await main(async () => {
    const { values } = parseArgs({
      args: Deno.args,
      options: {
        output: { type: "string", default: BINARY_PATH },
        target: { type: "string" },
        "dry-run": { type: "boolean", default: false },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    });
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
    const result = await run(argv, { cwd: REPO_ROOT, capture: true });
    if (result.code !== 0) {
      if (!denort && result.stderr.includes("dl.deno.land")) {
        throw new EnvironmentError(
          "deno compile could not download its runtime (denort) from dl.deno.land: set DENORT_BIN to a denort binary of this deno version",
        );
      }
      throw new EnvironmentError(`deno compile failed: ${firstLine(result.stderr)}`);
    }
    console.log(`Compiled ${values.output}`);
    return 0;
  });
}
