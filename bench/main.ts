/**
 * `deno task bench`: every broker's end-to-end figures beside its raw limit measured in the same
 * run, as one table. `--only sqlite,redis,rabbitmq` picks sections; `--chunks N` scales them.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { BenchRow } from "./table.ts";
import { renderTable } from "./table.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    only: { type: "string", default: "sqlite,redis,rabbitmq" },
    chunks: { type: "string" },
  },
});
const only = new Set(values.only!.split(",").map((s) => s.trim()));
const scale = values.chunks ? Number(values.chunks) : undefined;
if (scale !== undefined && !(Number.isInteger(scale) && scale > 0)) {
  console.error(`bench: Invalid --chunks "${values.chunks}": expected a whole number above 0`);
  Deno.exit(2);
}

const rows: BenchRow[] = [];
async function section(name: string, run: () => Promise<BenchRow[]>): Promise<void> {
  if (!only.has(name)) return;
  console.error(`bench: running the ${name} section…`);
  try {
    rows.push(...await run());
  } catch (error) {
    console.error(
      `bench: the ${name} section failed: ${error instanceof Error ? error.message : error}`,
    );
  }
}

await section(
  "sqlite",
  async () => (await import("./sqlite.ts")).benchSqlite({ chunks: scale ?? 100_000 }),
);
await section(
  "redis",
  async () => (await import("./redis.ts")).benchRedis({ chunks: scale ?? 100_000 }),
);
await section(
  "rabbitmq",
  async () => (await import("./rabbitmq.ts")).benchRabbit({ chunks: scale ?? 50_000 }),
);

console.log(renderTable(rows));
