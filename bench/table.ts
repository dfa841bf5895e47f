/**
 * Benchmark rows and their table: each figure beside the raw limit of the same broker measured in
 * the same run, and their ratio; a figure measured in several runs shows its median and min–max.
 *
 * @module
 */
import { spread } from "./stats.ts";

/** One measured figure. */
export interface BenchRow {
  readonly section: string;
  readonly figure: string;
  /** The figure: the median of `runs` when it was measured more than once. */
  readonly value: number;
  readonly unit: string;
  /** The same broker's raw limit measured in the same run, when the figure has one. */
  readonly rawLimit?: number;
  /** Every run's value, when the figure was measured in several. */
  readonly runs?: readonly number[];
  /** Every run's raw limit, beside `runs`. */
  readonly rawRuns?: readonly number[];
  /** Why the figure was not measured (its value is then 0 and means nothing). */
  readonly skipped?: string;
  /** What a reader needs beside the value: a check's outcome, a definition. */
  readonly note?: string;
}

/**
 * A row from the values of several runs (and their raw limits): the median of each.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { measured } from "./table.ts";
 * const row = measured({ section: "s", figure: "f", unit: "chunks/s" }, [1, 3, 2], [4, 4, 4]);
 * assert.deepEqual([row.value, row.rawLimit], [2, 4]);
 * ```
 */
export function measured(
  what: Pick<BenchRow, "section" | "figure" | "unit" | "note">,
  runs: readonly number[],
  rawRuns?: readonly number[],
): BenchRow {
  return {
    ...what,
    value: spread(runs).median,
    runs,
    ...(rawRuns && rawRuns.length > 0 ? { rawLimit: spread(rawRuns).median, rawRuns } : {}),
  };
}

/** A row that could not be measured, and why. */
export function skipped(
  what: Pick<BenchRow, "section" | "figure" | "unit">,
  why: string,
): BenchRow {
  return { ...what, value: 0, skipped: why };
}

/** value / rawLimit, or undefined. */
export function ratio(row: BenchRow): number | undefined {
  return row.rawLimit && !row.skipped ? row.value / row.rawLimit : undefined;
}

/** A number as the tables show it: whole above 100, else two decimals. */
export function formatNumber(n: number): string {
  return Math.abs(n) >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(2);
}

/** Renders rows as a Markdown table. */
export function renderTable(rows: readonly BenchRow[]): string {
  const lines = [
    "| broker | figure | value | min–max (runs) | raw limit (same run) | ratio |",
    "|---|---|---:|---:|---:|---:|",
  ];
  for (const row of rows) {
    const r = ratio(row);
    const figure = row.note ? `${row.figure} (${row.note})` : row.figure;
    if (row.skipped) {
      lines.push(`| ${row.section} | ${figure} | skipped: ${row.skipped} | — | — | — |`);
      continue;
    }
    const s = row.runs && row.runs.length > 1 ? spread(row.runs) : undefined;
    const range = s ? `${formatNumber(s.min)}–${formatNumber(s.max)} (${s.runs.length})` : "—";
    lines.push(
      `| ${row.section} | ${figure} | ${formatNumber(row.value)} ${row.unit} | ${range} | ${
        row.rawLimit ? `${formatNumber(row.rawLimit)} ${row.unit}` : "—"
      } | ${r === undefined ? "—" : `${(r * 100).toFixed(0)}%`} |`,
    );
  }
  return lines.join("\n");
}
