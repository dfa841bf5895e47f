/**
 * How a job report reads: as text for people (`ttg run`, `ttg results`), as CSV, and the line
 * the deploy task reads back to judge a report Job's output.
 *
 * @module
 */
import { formatDuration } from "./progress.ts";
import type { JobReport } from "./report.ts";

/**
 * Exit code of a finished run whose report shows dead letters (`ttg run`, the deploy task),
 * unless `--allow-dead-letters`.
 */
export const EXIT_DEAD_LETTERS = 3;

/** Keys of an aggregate that count things (printed as integers). */
const COUNT_KEY = /^(count|chunks)$|(_c|C)ount$/;

/**
 * An aggregate's fields, one a line: counts (`count`, `chunks`, `…_count`) as integers, every
 * other number with 6 decimals (so an exact sum reads `5000355.000000`), anything else as JSON.
 */
function formatAggregate(aggregate: unknown): string[] {
  if (typeof aggregate !== "object" || aggregate === null) {
    return [`  ${JSON.stringify(aggregate)}`];
  }
  return Object.entries(aggregate).map(([k, v]) =>
    `  ${k.padEnd(8)} ${
      typeof v === "number" && Number.isFinite(v) && !(COUNT_KEY.test(k) && Number.isInteger(v))
        ? v.toFixed(6)
        : JSON.stringify(v)
    }`
  );
}

const grouped = (n: number) => n.toLocaleString("en-US");

/**
 * The report's two lines of accounting: parameters, which add up (`parameters 10000/10000
 * accounted: 9,998 counted, 2 dead-lettered`), and chunks with what bisection made of them
 * (`chunks     100 planned, 1 bisected into 2 parts → 100 completed, 1 dead-lettered`).
 */
function accountingLines(report: JobReport): [string, string] {
  const p = report.parameters;
  const c = report.chunks;
  const bisected = c.bisected > 0 ? `, ${c.bisected} bisected into ${c.parts} parts` : "";
  const pending = c.pending > 0 ? `, ${grouped(c.pending)} pending` : "";
  const cancelled = c.cancelled > 0 ? `, ${grouped(c.cancelled)} cancelled` : "";
  const malformed = c.malformed > 0
    ? `, ${grouped(c.malformed)} unreadable message${c.malformed === 1 ? "" : "s"} dead-lettered`
    : "";
  return [
    `  parameters ${p.accounted}/${p.total} accounted: ${grouped(p.counted)} counted, ${
      grouped(p.dead_lettered)
    } dead-lettered`,
    `  chunks     ${grouped(c.planned)} planned${bisected} → ${grouped(c.completed)} completed, ${
      grouped(c.dead_lettered)
    } dead-lettered${pending}${cancelled}${malformed}`,
  ];
}

/**
 * Dead letters (chunks and unreadable messages) of a report printed by {@linkcode formatReport},
 * read back from its text (how the deploy task judges the report Job's output); undefined when
 * the text holds no report.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deadLettersInReport } from "./report_format.ts";
 * const line = "  chunks     100 planned, 1 bisected into 2 parts → 100 completed, 1 dead-lettered";
 * assert.equal(deadLettersInReport(line), 1);
 * assert.equal(deadLettersInReport("no report here"), undefined);
 * ```
 */
export function deadLettersInReport(text: string): number | undefined {
  const match = text.match(
    /^ {2}chunks {5}.* → [\d,]+ completed, ([\d,]+) dead-lettered(?:, [\d,]+ pending)?(?:, [\d,]+ cancelled)?(?:, ([\d,]+) unreadable messages? dead-lettered)?$/m,
  );
  if (!match) return undefined;
  const count = (s: string | undefined) => Number((s ?? "0").replaceAll(",", ""));
  return count(match[1]) + count(match[2]);
}

/** The report as text for people. */
export function formatReport(report: JobReport): string {
  const lines = [
    `Job "${report.job_id}" (${report.handler} on ${report.backend})`,
    ...accountingLines(report),
    `  duplicates ${report.duplicates_discarded} discarded, zombie completions ${report.zombie_completions} rejected`,
    `  retries    ${report.retries}`,
    `  faults     ${report.faults.workers_killed} worker(s) killed, ${report.faults.chunks_reclaimed} chunk(s) reclaimed`,
  ];
  if (report.duration_seconds > 0) {
    lines.push(
      `  duration   ${
        formatDuration(report.duration_seconds)
      } (${report.chunks_per_second} chunks/s, ${
        grouped(report.params_per_second)
      } parameters/s, parallelism ${report.parallelism})`,
    );
  }
  const f = report.failures;
  const kinds = Object.entries(f.dead_lettered_by_kind).map(([k, n]) => `${n} ${k}`).join(", ");
  if (kinds || f.handler_failures || f.handler_timeouts) {
    lines.push(
      `  failures   ${f.handler_failures} failed run(s), ${f.handler_timeouts} timeout(s)${
        kinds ? `; dead letters: ${kinds}` : ""
      }`,
    );
  }
  if (report.missing.chunks > 0) {
    lines.push(
      `  missing    ${report.missing.chunks} chunk(s) neither counted nor dead-lettered: ${
        report.missing.chunk_ids.join(", ")
      }`,
    );
  }
  if (report.slowest_chunks.length) {
    lines.push(
      `  slowest    ${
        report.slowest_chunks.map((c) => `${c.chunk_id} ${round3(c.duration_ms)} ms (${c.worker})`)
          .join(", ")
      }`,
    );
  }
  lines.push("Aggregate:", ...formatAggregate(report.aggregate));
  if (report.workers.length) {
    lines.push("Workers:");
    for (const w of report.workers) {
      const rss = w.peak_rss_mb !== undefined ? `, peak RSS ${w.peak_rss_mb} MB` : "";
      lines.push(
        `  ${w.id.padEnd(12)} ${w.chunks} chunks, ${w.params} parameters${rss}${
          w.exit ? ` (${w.exit})` : ""
        }`,
      );
    }
  }
  if (report.dead_letters.length) {
    lines.push("Dead letters:");
    for (const d of report.dead_letters) {
      lines.push(
        `  ${d.chunk_id ?? "(unreadable)"} [${d.start ?? "?"}, ${
          d.end ?? "?"
        }) ${d.kind}: ${d.reason}`,
      );
    }
  }
  return lines.join("\n");
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/** The report as CSV: one `field,value` row per number (nested fields dotted), for spreadsheets. */
export function reportCsv(report: JobReport): string {
  const rows: [string, string][] = [];
  const walk = (prefix: string, value: unknown) => {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(prefix ? `${prefix}.${k}` : k, v);
    } else if (typeof value === "number" || typeof value === "string") {
      rows.push([prefix, String(value)]);
    }
  };
  const { workers: _w, dead_letters: _d, slowest_chunks: _s, missing, ...rest } = report;
  walk("", { ...rest, missing: { chunks: missing.chunks } });
  return ["field,value", ...rows.map(([k, v]) => `${csvCell(k)},${csvCell(v)}`)].join("\n");
}

/** A CSV cell, quoted when it must be (RFC 4180). */
export function csvCell(text: string): string {
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
