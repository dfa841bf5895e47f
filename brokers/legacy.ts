/**
 * The predecessor's message fields, mapped once for every broker that speaks them (Redis stream
 * entries, RabbitMQ JSON bodies), so old and new workers read each other's tasks and results
 * during a migration (engineering-playbook.md §2–3). Each broker's codec keeps only its
 * transport: flat strings in a stream entry, a JSON body in a message.
 *
 * - task: `chunk_id` (5 digits, zero-padded), `start_param`, `end_param` (exclusive),
 *   `params_count`, `total_params`, `total_chunks`, `created_at`, `status` — written as strings,
 *   as the predecessor wrote them; TTG adds `job_id`, `handler`, `priority`, `args`, `divisible`.
 *   A task with no `handler` is the predecessor's: a `ttg.sweep` chunk of priority 0, no arguments.
 * - result: `chunk_id`, `worker_id`, `status: "completed"`, `duration_seconds`, `completed_at`,
 *   `result_data` (a JSON string; `result_summary` in older workers); TTG adds `params`.
 * - retry (RabbitMQ's predecessor): a retried task carries `retry_count` (failed attempts so far),
 *   `last_error` and `failed_at`; a dead letter also `status: "dead_lettered"`.
 *
 * @module
 */
import type { AttemptRecord, ChunkResult, StoredResult } from "./broker.ts";
import { type ChunkTask, parseTask } from "./task.ts";

/** The predecessor's fields of a task, as strings. */
export interface LegacyTaskFields {
  readonly chunk_id: string;
  readonly start_param: string;
  readonly end_param: string;
  readonly params_count: string;
  readonly total_params: string;
  readonly total_chunks: string;
  readonly created_at: string;
  readonly status: "pending";
}

/** The predecessor's fields of a result. */
export interface LegacyResultFields {
  readonly chunk_id: string;
  readonly worker_id: string;
  readonly status: "completed";
  readonly duration_seconds: string;
  readonly completed_at: string;
  readonly result_data: string;
}

/**
 * The predecessor's fields of `task`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { legacyTaskFields } from "./legacy.ts";
 * const task = { jobId: "ttg", chunkId: "00042", handler: "ttg.sweep", start: 4200, end: 4300,
 *   totalParams: 10000, totalChunks: 100, priority: 0, createdAt: "2026-02-09T10:00:00Z",
 *   args: {}, divisible: true };
 * assert.equal(legacyTaskFields(task).params_count, "100");
 * ```
 */
export function legacyTaskFields(task: ChunkTask): LegacyTaskFields {
  return {
    chunk_id: task.chunkId,
    start_param: String(task.start),
    end_param: String(task.end),
    params_count: String(task.end - task.start),
    total_params: String(task.totalParams),
    total_chunks: String(task.totalChunks),
    created_at: task.createdAt,
    status: "pending",
  };
}

/** An integer written as a number or a numeric string; NaN otherwise. */
export function integerField(value: unknown): number {
  if (typeof value === "number") return value;
  if (typeof value !== "string" || value.trim() === "") return NaN;
  return Number(value);
}

/**
 * Reads a task message of job `jobId` in the predecessor's fields (plus TTG's, written as strings
 * or as JSON values), or returns why it is not one. `createdAt` is used when the message has no
 * `created_at` (the entry's own time).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readLegacyTask } from "./legacy.ts";
 * const fields = { chunk_id: "00001", start_param: "100", end_param: "200",
 *   total_params: "1000", total_chunks: "10", created_at: "2026-02-09T10:00:00Z" };
 * const task = readLegacyTask(fields, "ttg", "");
 * assert.ok(typeof task !== "string" && task.handler === "ttg.sweep" && task.end === 200);
 * assert.equal(readLegacyTask({ ...fields, job_id: "x" }, "ttg", ""),
 *   'unknown job "x" in the queue of job "ttg"');
 * ```
 */
export function readLegacyTask(
  fields: Readonly<Record<string, unknown>>,
  jobId: string,
  createdAt: string,
): ChunkTask | string {
  const f = fields;
  if (f.job_id !== undefined && f.job_id !== jobId) {
    return `unknown job "${String(f.job_id)}" in the queue of job "${jobId}"`;
  }
  for (const name of ["chunk_id", "start_param", "end_param"]) {
    if (f[name] === undefined || f[name] === "") return `field "${name}" is missing`;
  }
  if (typeof f.chunk_id !== "string") return `field "chunk_id" is not a string`;
  const legacy = f.handler === undefined;
  let args: unknown = {};
  if (!legacy && f.args !== undefined) {
    if (typeof f.args === "string") {
      try {
        args = JSON.parse(f.args);
      } catch (error) {
        return `field "args" is not JSON: ${(error as Error).message}`;
      }
    } else args = f.args;
  }
  return parseTask({
    jobId,
    chunkId: f.chunk_id,
    handler: legacy ? "ttg.sweep" : f.handler,
    start: integerField(f.start_param),
    end: integerField(f.end_param),
    totalParams: integerField(f.total_params ?? "0"),
    totalChunks: integerField(f.total_chunks ?? "0"),
    priority: legacy ? 0 : integerField(f.priority ?? "0"),
    createdAt: typeof f.created_at === "string" && f.created_at !== "" ? f.created_at : createdAt,
    args,
    divisible: f.divisible !== "0" && f.divisible !== false,
  });
}

/** The predecessor's fields of a chunk's result. */
export function legacyResultFields(chunkId: string, result: ChunkResult): LegacyResultFields {
  return {
    chunk_id: chunkId,
    worker_id: result.workerId,
    status: "completed",
    duration_seconds: String(result.durationMs / 1000),
    completed_at: result.completedAt,
    // Redis's Lua JSON decoder rejects lone surrogates, which JSON.stringify escapes as they are.
    result_data: JSON.stringify(result.value ?? null).toWellFormed(),
  };
}

/**
 * Reads a result in the predecessor's fields (ours, or a legacy worker's), or undefined when it
 * names no chunk. A legacy result's size is its `params`, else `params_processed`, else the
 * `count` of its value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readLegacyResult } from "./legacy.ts";
 * const result = readLegacyResult({ chunk_id: "00003", worker_id: "w", status: "completed",
 *   duration_seconds: "0.5", completed_at: "", result_data: '{"sum":1,"count":10}' });
 * assert.deepEqual([result?.params, result?.durationMs], [10, 500]);
 * ```
 */
export function readLegacyResult(
  fields: Readonly<Record<string, unknown>>,
): StoredResult | undefined {
  const f = fields;
  if (typeof f.chunk_id !== "string" || f.chunk_id === "") return undefined;
  let value: unknown = f.result_data ?? f.result_summary ?? null;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      // keep the string as the value
    }
  }
  const count = typeof value === "object" && value !== null
    ? Number((value as Record<string, unknown>).count)
    : NaN;
  const params = integerField(f.params ?? f.params_processed ?? count);
  const durationMs = f.duration_ms !== undefined
    ? Number(f.duration_ms)
    : Math.round(Number(f.duration_seconds ?? 0) * 1e6) / 1e3;
  return {
    chunkId: f.chunk_id,
    value,
    params: Number.isFinite(params) ? params : 0,
    workerId: String(f.worker_id ?? ""),
    durationMs: Number.isFinite(durationMs) ? durationMs : 0,
    completedAt: String(f.completed_at ?? ""),
  };
}

/** The predecessor's retry fields of a RabbitMQ task message. */
export interface LegacyRetryFields {
  /** Failed attempts so far. */
  readonly retry_count: number;
  readonly last_error?: string;
  readonly failed_at?: string;
}

/**
 * The predecessor's retry fields of a task whose next claim is attempt `attempt`, after `last`
 * (the latest failure, if any).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { legacyRetryFields } from "./legacy.ts";
 * assert.deepEqual(legacyRetryFields(1), { retry_count: 0 });
 * ```
 */
export function legacyRetryFields(attempt: number, last?: AttemptRecord): LegacyRetryFields {
  return {
    retry_count: Math.max(0, attempt - 1),
    ...(last ? { last_error: last.reason, failed_at: last.at } : {}),
  };
}

/**
 * Reads the predecessor's retry fields: failed attempts so far and, when its worker recorded one,
 * the failure as a history record (worker `legacy`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readLegacyRetry } from "./legacy.ts";
 * const retry = readLegacyRetry({ retry_count: 2, last_error: "boom", failed_at: "t" });
 * assert.deepEqual([retry.failures, retry.record?.reason], [2, "boom"]);
 * ```
 */
export function readLegacyRetry(
  fields: Readonly<Record<string, unknown>>,
): { failures: number; record?: AttemptRecord } {
  const count = integerField(fields.retry_count ?? 0);
  const failures = Number.isSafeInteger(count) && count > 0 ? count : 0;
  if (typeof fields.last_error !== "string") return { failures };
  return {
    failures,
    record: {
      attempt: Math.max(1, failures),
      kind: "failed",
      reason: fields.last_error,
      workerId: "legacy",
      at: typeof fields.failed_at === "string" ? fields.failed_at : new Date(0).toISOString(),
    },
  };
}
