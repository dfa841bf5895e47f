/**
 * End-to-end figure shared by every broker section: a no-op sweep through `ttg run` with worker
 * processes, read from its JSON report.
 *
 * @module
 */
import type { JobReport } from "../workers/report.ts";

const CLI = new URL("../workers/cli.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** Options of {@linkcode runSweepBench}. */
export interface SweepBenchOptions {
  readonly backend: string;
  readonly chunks: number;
  readonly chunkSize?: number;
  readonly workers?: number;
  readonly extraArgs?: readonly string[];
  readonly env?: Record<string, string>;
}

/** Runs `ttg run --json` for a no-op sweep and returns its report. */
export async function runSweepBench(options: SweepBenchOptions): Promise<JobReport> {
  const chunkSize = options.chunkSize ?? 10;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      CONFIG,
      CLI,
      "run",
      "--json",
      "--backend",
      options.backend,
      "--params",
      String(options.chunks * chunkSize),
      "--chunk-size",
      String(chunkSize),
      "--work-ms",
      "0",
      "--workers",
      String(options.workers ?? 3),
      ...(options.extraArgs ?? []),
    ],
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) {
    throw new Error(
      `ttg run failed (${out.code}): ${new TextDecoder().decode(out.stderr).slice(-2000)}`,
    );
  }
  return JSON.parse(stdout) as JobReport;
}

/** Highest worker peak RSS of a report, in MB. */
export function peakRssMb(report: JobReport): number {
  return Math.max(0, ...report.workers.map((w) => w.peak_rss_mb ?? 0));
}
