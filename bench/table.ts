/**
 * Benchmark rows and their table: each figure beside the raw limit of the same broker measured in
 * the same run, and their ratio.
 *
 * @module
 */

/** One measured figure. */
export interface BenchRow {
  readonly section: string;
  readonly figure: string;
  readonly value: number;
  readonly unit: string;
  /** The same broker's raw limit measured in the same run, when the figure has one. */
  readonly rawLimit?: number;
}

/** value / rawLimit, or undefined. */
export function ratio(row: BenchRow): number | undefined {
  return row.rawLimit ? row.value / row.rawLimit : undefined;
}

function fmt(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(2);
}

/** Renders rows as a Markdown table. */
export function renderTable(rows: readonly BenchRow[]): string {
  const lines = [
    "| broker | figure | value | raw limit (same run) | ratio |",
    "|---|---|---:|---:|---:|",
  ];
  for (const row of rows) {
    const r = ratio(row);
    lines.push(
      `| ${row.section} | ${row.figure} | ${fmt(row.value)} ${row.unit} | ${
        row.rawLimit ? `${fmt(row.rawLimit)} ${row.unit}` : "—"
      } | ${r === undefined ? "—" : `${(r * 100).toFixed(0)}%`} |`,
    );
  }
  return lines.join("\n");
}
