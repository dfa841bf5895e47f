/**
 * The results files of `deno task bench --write`: `bench/results/<YYYY-MM-DD>.json` (every row
 * with its figure, raw limit, ratio and runs) and the `.md` rendered from it. A day's file holds
 * the latest run of each section: writing the load section keeps the fleet section written
 * earlier that day, and replaces an earlier load section.
 *
 * @module
 */
import { spread } from "./stats.ts";
import { type BenchRow, ratio, renderTable } from "./table.ts";

/** One row as the JSON file keeps it. */
export interface ResultRow {
  readonly broker: string;
  readonly figure: string;
  readonly unit: string;
  readonly value: number | null;
  readonly raw_limit: number | null;
  readonly ratio: number | null;
  readonly runs: readonly number[];
  readonly min: number | null;
  readonly median: number | null;
  readonly max: number | null;
  readonly raw_runs: readonly number[];
  readonly skipped: string | null;
  readonly note: string | null;
}

/** One section's latest run. */
export interface SectionResults {
  readonly command: string;
  /** ISO 8601 time the section finished. */
  readonly at: string;
  /** The machine's 1-minute load average when it finished (other work shares the machine). */
  readonly load_average: number | null;
  readonly rows: readonly ResultRow[];
}

/** A day's results file. */
export interface ResultsFile {
  readonly date: string;
  readonly machine: { readonly cores: number; readonly memory_gib: number };
  readonly sections: Readonly<Record<string, SectionResults>>;
}

/** A table row as the JSON file keeps it. */
export function resultRow(row: BenchRow): ResultRow {
  const runs = row.skipped ? [] : row.runs ?? [row.value];
  const s = runs.length > 0 ? spread(runs) : undefined;
  return {
    broker: row.section,
    figure: row.figure,
    unit: row.unit,
    value: row.skipped ? null : row.value,
    raw_limit: row.skipped ? null : row.rawLimit ?? null,
    ratio: ratio(row) ?? null,
    runs,
    min: s?.min ?? null,
    median: s?.median ?? null,
    max: s?.max ?? null,
    raw_runs: row.rawRuns ?? (row.rawLimit ? [row.rawLimit] : []),
    skipped: row.skipped ?? null,
    note: row.note ?? null,
  };
}

function benchRow(row: ResultRow): BenchRow {
  return {
    section: row.broker,
    figure: row.figure,
    unit: row.unit,
    value: row.value ?? 0,
    ...(row.raw_limit !== null ? { rawLimit: row.raw_limit } : {}),
    ...(row.runs.length > 1 ? { runs: row.runs } : {}),
    ...(row.skipped !== null ? { skipped: row.skipped } : {}),
    ...(row.note !== null ? { note: row.note } : {}),
  };
}

/** The Markdown of a results file. */
export function renderResults(file: ResultsFile): string {
  const lines = [
    `# Bench results, ${file.date}`,
    "",
    `Measured on this machine (${file.machine.cores} cores, ${file.machine.memory_gib} GiB, shared with other work: read each figure beside the raw limit of its own run). Each figure is the median of its runs, with min–max; \`deno task bench --write\` wrote this file from the JSON beside it.`,
    "",
  ];
  for (const [name, section] of Object.entries(file.sections)) {
    lines.push(
      `## ${name}`,
      "",
      `\`${section.command}\`, finished ${section.at}${
        section.load_average === null ? "" : ` (load average ${section.load_average})`
      }`,
      "",
      renderTable(section.rows.map(benchRow)),
      "",
    );
  }
  return lines.join("\n");
}

/** Options of {@linkcode writeResults}. */
export interface WriteOptions {
  /** The folder of the files. @default bench/results */
  readonly dir?: string;
  /** @default today (UTC) */
  readonly date?: string;
  readonly command: string;
}

/** Writes (or updates) the day's results with the rows of the sections just run. */
export async function writeResults(
  sections: ReadonlyMap<string, readonly BenchRow[]>,
  options: WriteOptions,
): Promise<{ json: string; md: string }> {
  const dir = options.dir ?? new URL("./results", import.meta.url).pathname;
  const date = options.date ?? new Date().toISOString().slice(0, 10);
  const json = `${dir}/${date}.json`;
  const md = `${dir}/${date}.md`;
  const earlier: ResultsFile | undefined = await Deno.readTextFile(json).then(
    (text) => JSON.parse(text) as ResultsFile,
    () => undefined,
  );
  const load = await Deno.readTextFile("/proc/loadavg").then(
    (t) => Number(t.split(" ")[0]),
    () => null,
  );
  const now = new Date().toISOString();
  const fresh: Record<string, SectionResults> = {};
  for (const [name, rows] of sections) {
    fresh[name] = {
      command: options.command,
      at: now,
      load_average: load,
      rows: rows.map(resultRow),
    };
  }
  const file: ResultsFile = {
    date,
    machine: {
      cores: navigator.hardwareConcurrency,
      memory_gib: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
    },
    sections: { ...earlier?.sections, ...fresh },
  };
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(json, JSON.stringify(file, null, 2) + "\n");
  await Deno.writeTextFile(md, renderResults(file));
  // As the repository's formatter keeps them, so `deno task check` passes on a written file.
  const config = new URL("../deno.json", import.meta.url).pathname;
  await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", "--config", config, json, md],
  })
    .output();
  return { json, md };
}
