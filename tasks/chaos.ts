/**
 * `deno task chaos [--size small|large] [--only NAME[,NAME]]`: the chaos suite (tests/chaos/) on
 * every broker, then its checker lines as one table. `small` is what CI runs inside `deno task
 * test`; `large` runs every scenario at 10×.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { main, REPO_ROOT, UsageError } from "./command.ts";

const USAGE = `Usage: deno task chaos [--size small|large] [--only NAME[,NAME]]

  --size   small (as CI runs it, the default) or large (every scenario at 10×)
  --only   scenarios whose names start with these words, e.g. "kill storm,burst"

Runs tests/chaos/chaos_test.ts (real worker processes, real brokers; a private redis-server and
RabbitMQ node for the broker crash) and prints one line per scenario and broker:
scenario backend chunks completed dead-lettered duplicates zombies lost duration`;

/** Reads the task's flags; bad input is a {@linkcode UsageError} naming the flag and the value. */
export function parseChaosArgs(
  args: readonly string[],
): { size: "small" | "large"; only?: string; help: boolean } {
  const { values } = parseArgs({
    args: [...args],
    options: {
      size: { type: "string", default: "small" },
      only: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.size !== "small" && values.size !== "large") {
    throw new UsageError(`Invalid --size "${values.size}": expected small or large`);
  }
  if (values.only !== undefined && values.only.trim() === "") {
    throw new UsageError(`Invalid --only "": expected scenario names, e.g. "kill storm"`);
  }
  return {
    size: values.size,
    help: values.help ?? false,
    ...(values.only ? { only: values.only } : {}),
  };
}

if (import.meta.main) {
  await main(async () => {
    const values = parseChaosArgs(Deno.args);
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const report = await Deno.makeTempFile({ prefix: "ttg-chaos-", suffix: ".txt" });
    try {
      const test = new Deno.Command(Deno.execPath(), {
        args: ["test", "-A", "--sanitize-ops", "--sanitize-resources", "tests/chaos/chaos_test.ts"],
        cwd: REPO_ROOT,
        env: {
          TTG_CHAOS_SIZE: values.size,
          TTG_CHAOS_REPORT: report,
          ...(values.only ? { TTG_CHAOS_ONLY: values.only } : {}),
        },
        stdout: "inherit",
        stderr: "inherit",
      });
      const { code } = await test.output();
      const lines = (await Deno.readTextFile(report)).trim();
      console.log(`\nChaos suite (${values.size}):\n${lines || "(no scenario ran)"}`);
      return code === 0 ? 0 : 1;
    } finally {
      await Deno.remove(report).catch(() => {});
    }
  });
}
