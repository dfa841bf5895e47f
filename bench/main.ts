/**
 * `deno task bench [--only LIST] [--chunks N] [--runs N] [--brokers LIST] [--write]`: every
 * broker's end-to-end figures beside its raw limit measured in the same run, handler processes
 * beside handler threads, the cost of metrics, load figures (enqueue, scaling, start-up), the
 * fleet's (priority under backlog, many jobs at once) and, asked for by name, the 1M-chunk scale
 * run and worker memory over a short and a long run; as one table,
 * and with `--write` in bench/results/. Bad input is one line and exit code 2, like every other
 * task.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { main, UsageError } from "../tasks/command.ts";
import type { BenchRow } from "./table.ts";
import { renderTable, skipped } from "./table.ts";
import { type Backend, BACKENDS, firstLine } from "./targets.ts";

/** The sections, in the order they run. */
export const SECTIONS = [
  "sqlite",
  "redis",
  "rabbitmq",
  "process",
  "metrics",
  "load",
  "fleet",
  "scale",
  "memory",
] as const;
/** One of {@linkcode SECTIONS}. */
export type Section = typeof SECTIONS[number];
/** The sections run without `--only`: all but the long scale and memory runs. */
export const DEFAULT_SECTIONS: readonly Section[] = SECTIONS.filter((s) =>
  s !== "scale" && s !== "memory"
);

const USAGE =
  `Usage: deno task bench [--only LIST] [--chunks N] [--runs N] [--brokers LIST] [--write]

Runs each section's figures beside the raw limit of the same broker, measured in the same run, and
prints one table (progress on stderr).

  --only LIST     sections to run, comma-separated: sqlite, redis, rabbitmq, process, metrics,
                  load, fleet, scale, memory (default all but scale and memory, which take
                  minutes)
  --chunks N      chunks of each section's sweep (default 100000; rabbitmq 50000, process 20000,
                  metrics 60000; load: enqueued 1000000, scaling N/250; fleet: backlog 100000;
                  scale 1000000; memory: its long run, 1000000, beside a short one of 10000)
  --runs N        runs of each load, fleet and scale figure: median and min–max (default 3;
                  scale 1)
  --brokers LIST  brokers of the load, fleet and scale sections: sqlite, redis, rabbitmq
                  (default all three; scale sqlite,redis)
  --write         also write bench/results/<YYYY-MM-DD>.md and .json (a day's file keeps the
                  latest run of each section)`;

/** What the bench is asked to do. */
export interface BenchArgs {
  readonly help: boolean;
  readonly sections: readonly Section[];
  /** Chunks of every section's sweep; undefined: each section's own default. */
  readonly chunks: number | undefined;
  /** Runs of each load, fleet and scale figure; undefined: each section's own default. */
  readonly runs: number | undefined;
  /** Brokers of the load, fleet and scale sections; undefined: each section's own default. */
  readonly brokers: readonly Backend[] | undefined;
  readonly write: boolean;
}

function list<T extends string>(
  flag: string,
  given: string | undefined,
  known: readonly T[],
  fallback: readonly T[],
): T[] {
  const names = (given ?? fallback.join(",")).split(",").map((s) => s.trim());
  if (names.some((name) => !(known as readonly string[]).includes(name))) {
    const expected = `${known.slice(0, -1).join(", ")} or ${known.at(-1)}`;
    throw new UsageError(
      `Invalid "${flag}": expected ${expected} (comma-separated), got "${given}"`,
    );
  }
  return known.filter((name) => names.includes(name));
}

function count(flag: string, given: string | undefined): number | undefined {
  const n = given === undefined ? undefined : Number(given);
  if (n !== undefined && !(Number.isInteger(n) && n > 0)) {
    throw new UsageError(`Invalid "${flag}": expected a whole number above 0, got "${given}"`);
  }
  return n;
}

/**
 * Parses the bench's flags; bad input throws (a `UsageError`, or parseArgs' own error for an
 * unknown flag or a missing value), which the task turns into one line and exit code 2.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseBenchArgs } from "./main.ts";
 * assert.deepEqual(parseBenchArgs(["--only", "redis, sqlite"]).sections, ["sqlite", "redis"]);
 * assert.deepEqual(parseBenchArgs(["--only", "scale", "--brokers", "sqlite"]).brokers, ["sqlite"]);
 * assert.throws(() => parseBenchArgs(["--only", "redsi"]), /expected sqlite, redis, rabbitmq/);
 * ```
 */
export function parseBenchArgs(args: readonly string[]): BenchArgs {
  const { values } = parseArgs({
    args: [...args],
    options: {
      only: { type: "string" },
      chunks: { type: "string" },
      runs: { type: "string" },
      brokers: { type: "string" },
      write: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  return {
    help: values.help === true,
    sections: list("--only", values.only, SECTIONS, DEFAULT_SECTIONS),
    chunks: count("--chunks", values.chunks),
    runs: count("--runs", values.runs),
    brokers: values.brokers === undefined
      ? undefined
      : list("--brokers", values.brokers, BACKENDS, BACKENDS),
    write: values.write === true,
  };
}

/** Runs the sections asked for; a section that fails is a row saying why, and the others run. */
async function bench(args: BenchArgs): Promise<Map<Section, BenchRow[]>> {
  const { chunks: n, runs } = args;
  const brokers = args.brokers ?? BACKENDS;
  const sections: Record<Section, () => Promise<BenchRow[]>> = {
    sqlite: async () => (await import("./sqlite.ts")).benchSqlite({ chunks: n ?? 100_000 }),
    redis: async () => (await import("./redis.ts")).benchRedis({ chunks: n ?? 100_000 }),
    rabbitmq: async () => (await import("./rabbitmq.ts")).benchRabbit({ chunks: n ?? 50_000 }),
    process: async () => (await import("./process.ts")).benchProcess({ chunks: n ?? 20_000 }),
    metrics: async () => (await import("./metrics.ts")).benchMetrics({ chunks: n ?? 60_000 }),
    load: async () => (await import("./load.ts")).benchLoad({ chunks: n, runs, backends: brokers }),
    fleet: async () =>
      (await import("./fleet.ts")).benchFleet({ backlog: n, runs, backends: brokers }),
    scale: async () =>
      (await import("./scale.ts")).benchScale({
        chunks: n,
        runs,
        backends: args.brokers ?? ["sqlite", "redis"],
      }),
    memory: async () => (await import("./memory.ts")).benchMemory({ longChunks: n }),
  };
  const out = new Map<Section, BenchRow[]>();
  for (const section of args.sections) {
    console.error(`bench: running the ${section} section…`);
    try {
      out.set(section, await sections[section]());
    } catch (error) {
      console.error(`bench: the ${section} section failed: ${firstLine(error)}`);
      out.set(section, [
        skipped({ section, figure: "the whole section", unit: "" }, firstLine(error)),
      ]);
    }
  }
  return out;
}

if (import.meta.main) {
  await main(async () => {
    const args = parseBenchArgs(Deno.args);
    if (args.help) {
      console.log(USAGE);
      return 0;
    }
    const sections = await bench(args);
    console.log(renderTable([...sections.values()].flat()));
    if (args.write) {
      const { writeResults } = await import("./results_file.ts");
      const command = ["deno task bench", ...Deno.args].join(" ");
      const { md, json } = await writeResults(sections, { command });
      console.error(`bench: wrote ${md} and ${json}`);
    }
    return 0;
  });
}
