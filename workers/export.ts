/**
 * `ttg results --export FILE --format jsonl|csv`: every counted result of a job, one a line
 * (chunk id, parameter range, attempt, worker, duration, completion time, result), streamed page
 * by page, for analysis in pandas or DuckDB.
 *
 * @module
 */
import type { Broker, JobRecord, StoredResult } from "../brokers/broker.ts";
import { eachResult } from "../brokers/results.ts";
import { chunkRange } from "../brokers/task.ts";
import { csvCell } from "./report_format.ts";

const COLUMNS = [
  "chunk_id",
  "start",
  "end",
  "params",
  "attempt",
  "worker_id",
  "duration_ms",
  "completed_at",
  "result",
] as const;

/** One result as an export row (the range only where the job's plan is known). */
function row(r: StoredResult, record: JobRecord | null): Record<(typeof COLUMNS)[number], unknown> {
  const [start, end] = record ? chunkRange(r.chunkId, record.chunkSize, record.totalParams) : [];
  return {
    chunk_id: r.chunkId,
    start: start ?? null,
    end: end ?? null,
    params: r.params,
    attempt: r.attempt ?? null,
    worker_id: r.workerId,
    duration_ms: r.durationMs,
    completed_at: r.completedAt,
    result: r.value,
  };
}

/** Writes every counted result to `file` (`-`: stdout); returns how many. */
export async function exportResults(
  broker: Broker,
  jobId: string,
  record: JobRecord | null,
  file: string,
  format: "jsonl" | "csv",
): Promise<number> {
  const out = file === "-"
    ? Deno.stdout.writable
    : (await Deno.open(file, { write: true, create: true, truncate: true })).writable;
  const writer = out.getWriter();
  const encoder = new TextEncoder();
  let count = 0;
  let buffer = format === "csv" ? COLUMNS.join(",") + "\n" : "";
  try {
    for await (const result of eachResult(broker, jobId)) {
      const line = row(result, record);
      buffer += format === "jsonl" ? JSON.stringify(line) + "\n" : COLUMNS.map((c) => {
        const v = line[c];
        return v === null ? "" : csvCell(typeof v === "string" ? v : JSON.stringify(v));
      }).join(",") + "\n";
      count += 1;
      if (buffer.length > 64 * 1024) {
        await writer.write(encoder.encode(buffer));
        buffer = "";
      }
    }
    await writer.write(encoder.encode(buffer));
  } finally {
    if (file === "-") writer.releaseLock();
    else await writer.close();
  }
  return count;
}
