/**
 * Message bodies of the RabbitMQ broker, in the Python predecessor's JSON format with TTG's fields
 * added (never renamed), so old and new workers read each other's messages:
 *
 * - task: `chunk_id` (5 digits), `start_param`, `end_param` (exclusive), `params_count`,
 *   `total_params`, `total_chunks` (strings, as the predecessor wrote them), `created_at`, `status`,
 *   `retry_count`; TTG adds `job_id`, `handler`, `priority`, `args`, `divisible`, `attempt`,
 *   `claims` and `history`. A legacy retry (`retry_count` + `last_error`) is read as history.
 * - result: `chunk_id`, `worker_id`, `status`, `duration_seconds`, `completed_at`, `result_data`
 *   (a JSON string); TTG adds `job_id`, `params` and `duration_ms`. Results of namespaced jobs may
 *   travel several to a message (`{ "ttg_results": [...] }`); the predecessor's queue `ttg.results`
 *   always gets one message per chunk.
 * - dead letter: the task body plus `status: "dead_lettered"`, `last_error`, `failed_at`, with the
 *   reason and history also in headers (`final_error` as the predecessor wrote it, `x-ttg-*`).
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { MessageProperties } from "amqplib";
import {
  type AttemptRecord,
  type ChunkResult,
  type ChunkTask,
  type DeadLetter,
  parseTask,
  type StoredResult,
} from "./contract.ts";

/** Header carrying a message's unique id (results, dead letters). */
export const ID_HEADER = "x-ttg-id";
/** Most history records kept on a message (the oldest are dropped first). */
const MAX_HISTORY = 20;
/** Longest reason kept, in characters. */
const MAX_REASON = 2000;

/** What a task message says beyond its {@linkcode ChunkTask}. */
export interface TaskState {
  /** Attempt number of the next claim, 1-based. */
  readonly attempt: number;
  /** Claims made so far (the epoch of the next claim is `claims + 1`). */
  readonly claims: number;
  readonly history: readonly AttemptRecord[];
}

/** A decoded task message, or why it is not one. */
export type DecodedTask =
  | { readonly ok: true; readonly task: ChunkTask; readonly state: TaskState }
  | { readonly ok: false; readonly reason: string; readonly raw: string };

/** Encodes a task (and its retry state) as the predecessor's task JSON plus TTG's fields. */
export function encodeTask(task: ChunkTask, state: TaskState, extra?: object): Buffer {
  const body = {
    chunk_id: task.chunkId,
    start_param: String(task.start),
    end_param: String(task.end),
    params_count: String(task.end - task.start),
    total_params: String(task.totalParams),
    total_chunks: String(task.totalChunks),
    created_at: task.createdAt,
    status: "pending",
    retry_count: state.attempt - 1,
    job_id: task.jobId,
    handler: task.handler,
    priority: task.priority,
    args: task.args,
    divisible: task.divisible,
    attempt: state.attempt,
    claims: state.claims,
    history: trimHistory(state.history),
    ...extra,
  };
  return Buffer.from(JSON.stringify(body));
}

/**
 * Decodes a task message of job `jobId`. `redeliveries` is how many times the broker delivered this
 * very message before (it counts as that many lost attempts). Never throws.
 */
export function decodeTask(
  jobId: string,
  content: Uint8Array,
  properties: Partial<MessageProperties>,
  redeliveries: number,
): DecodedTask {
  const raw = new TextDecoder().decode(content);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    return { ok: false, reason: `message is not valid JSON: ${(error as Error).message}`, raw };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, reason: "message is not a JSON object", raw };
  }
  const v = value as Record<string, unknown>;
  if (v.job_id !== undefined && v.job_id !== jobId) {
    return {
      ok: false,
      reason: `unknown job "${String(v.job_id)}" in the queue of "${jobId}"`,
      raw,
    };
  }
  if (typeof v.chunk_id !== "string" || v.chunk_id === "") {
    return { ok: false, reason: `field "chunk_id" is missing or not a string`, raw };
  }
  const ints: Record<string, number> = {};
  for (const field of ["start_param", "end_param", "total_params", "total_chunks"]) {
    const n = toInt(v[field]);
    if (n === undefined) {
      return { ok: false, reason: `field "${field}" is missing or not an integer`, raw };
    }
    ints[field] = n;
  }
  const parsed = parseTask({
    jobId,
    chunkId: v.chunk_id,
    handler: v.handler ?? "ttg.sweep",
    start: ints.start_param,
    end: ints.end_param,
    totalParams: ints.total_params,
    totalChunks: ints.total_chunks,
    priority: v.priority ?? properties.priority ?? 0,
    createdAt: v.created_at,
    args: v.args ?? {},
    divisible: v.divisible,
  });
  if (typeof parsed === "string") return { ok: false, reason: parsed, raw };
  const retryCount = toInt(v.retry_count) ?? 0;
  const history = readHistory(v.history);
  if (typeof v.last_error === "string") {
    // A predecessor's worker retried this message: its failure is history too.
    const at = typeof v.failed_at === "string" ? v.failed_at : parsed.createdAt;
    if (!history.some((h) => h.at === at && h.reason === v.last_error)) {
      history.push({
        attempt: retryCount,
        kind: "failed",
        reason: v.last_error,
        workerId: "legacy",
        at,
      });
    }
  }
  const attempt = Math.max(toInt(v.attempt) ?? 1, retryCount + 1) + redeliveries;
  const claims = (toInt(v.claims) ?? retryCount) + redeliveries;
  return { ok: true, task: parsed, state: { attempt, claims, history } };
}

/** Encodes one chunk's result as the predecessor's result JSON plus TTG's fields. */
export function resultBody(jobId: string, chunkId: string, result: ChunkResult): object {
  return {
    chunk_id: chunkId,
    worker_id: result.workerId,
    status: "completed",
    duration_seconds: String(result.durationMs / 1000),
    completed_at: result.completedAt,
    result_data: JSON.stringify(result.value ?? null),
    job_id: jobId,
    params: result.params,
    duration_ms: result.durationMs,
  };
}

/** Encodes results as one message: a single result as is, several as `{ ttg_results: [...] }`. */
export function encodeResults(bodies: readonly object[]): Buffer {
  return Buffer.from(JSON.stringify(bodies.length === 1 ? bodies[0] : { ttg_results: bodies }));
}

/** Decodes a results message (ours, batched or not, or the predecessor's); skips what is unreadable. */
export function decodeResults(content: Uint8Array): StoredResult[] {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(content));
  } catch {
    return [];
  }
  const list = isRecord(value) && Array.isArray(value.ttg_results) ? value.ttg_results : [value];
  const out: StoredResult[] = [];
  for (const item of list) {
    const result = decodeResult(item);
    if (result) out.push(result);
  }
  return out;
}

function decodeResult(value: unknown): StoredResult | undefined {
  if (!isRecord(value) || typeof value.chunk_id !== "string") return undefined;
  let data: unknown = value.result_data;
  if (typeof data === "string") {
    try {
      data = JSON.parse(data);
    } catch {
      // keep the string as the value
    }
  }
  const durationMs = typeof value.duration_ms === "number"
    ? value.duration_ms
    : Math.round(Number(value.duration_seconds ?? 0) * 1_000_000) / 1000;
  const params = typeof value.params === "number"
    ? value.params
    : isRecord(data) && typeof data.count === "number"
    ? data.count
    : 0;
  return {
    chunkId: value.chunk_id,
    value: data,
    params,
    workerId: String(value.worker_id ?? ""),
    durationMs: Number.isFinite(durationMs) ? durationMs : 0,
    completedAt: String(value.completed_at ?? ""),
  };
}

/** A dead letter to publish: body and headers. */
export interface EncodedDeadLetter {
  readonly content: Buffer;
  readonly headers: Record<string, unknown>;
}

/** Encodes a chunk that will not be retried, with its final failure last in `history`. */
export function encodeDeadLetter(
  task: ChunkTask,
  state: TaskState,
  final: AttemptRecord,
): EncodedDeadLetter {
  const history = trimHistory([...state.history, final]);
  const reason = final.reason.slice(0, MAX_REASON);
  const content = encodeTask(task, { ...state, history }, {
    status: "dead_lettered",
    retry_count: final.attempt,
    last_error: reason,
    failed_at: final.at,
    dl_kind: final.kind,
    dl_attempts: final.attempt,
  });
  return {
    content,
    headers: {
      retry_count: final.attempt,
      final_error: reason,
      "x-ttg-kind": final.kind,
      "x-ttg-reason": reason,
      "x-ttg-attempts": final.attempt,
      "x-ttg-history": JSON.stringify(history),
      [ID_HEADER]: crypto.randomUUID(),
    },
  };
}

/** Headers of an unreadable message moved to the dead letters (its body is kept as received). */
export function malformedHeaders(jobId: string, reason: string): Record<string, unknown> {
  return {
    final_error: reason.slice(0, MAX_REASON),
    "x-ttg-kind": "malformed",
    "x-ttg-reason": reason.slice(0, MAX_REASON),
    "x-ttg-job": jobId,
    "x-ttg-attempts": 0,
    [ID_HEADER]: crypto.randomUUID(),
  };
}

/** Decodes a message of a dead-letter queue (ours, the predecessor's, or dead-lettered by RabbitMQ). */
export function decodeDeadLetter(
  jobId: string,
  content: Uint8Array,
  properties: Partial<MessageProperties>,
): DeadLetter {
  const headers = (properties.headers ?? {}) as Record<string, unknown>;
  const id = typeof headers[ID_HEADER] === "string"
    ? headers[ID_HEADER] as string
    : createHash("sha1").update(content).digest("hex").slice(0, 20);
  const at = typeof properties.timestamp === "number"
    ? new Date(properties.timestamp * 1000).toISOString()
    : new Date(0).toISOString();
  if (headers["x-ttg-kind"] === "malformed") {
    return {
      id,
      jobId,
      task: null,
      raw: new TextDecoder().decode(content),
      kind: "malformed",
      reason: String(headers["x-ttg-reason"] ?? "malformed message"),
      attempts: 0,
      history: [],
      at: typeof headers["x-ttg-at"] === "string" ? headers["x-ttg-at"] as string : at,
    };
  }
  const decoded = decodeTask(jobId, content, properties, 0);
  if (!decoded.ok) {
    return {
      id,
      jobId,
      task: null,
      raw: decoded.raw,
      kind: "malformed",
      reason: decoded.reason,
      attempts: 0,
      history: [],
      at,
    };
  }
  const body = JSON.parse(new TextDecoder().decode(content)) as Record<string, unknown>;
  const history = decoded.state.history;
  const last = history[history.length - 1];
  const xDeath = Array.isArray(headers["x-death"]) ? headers["x-death"] : undefined;
  const kind = typeof headers["x-ttg-kind"] === "string"
    ? headers["x-ttg-kind"] as DeadLetter["kind"]
    : xDeath
    ? "expired"
    : "failed";
  const reason = String(
    headers["x-ttg-reason"] ?? headers.final_error ?? body.last_error ??
      (xDeath ? "dead-lettered by RabbitMQ (delivery limit or expiry)" : "dead-lettered"),
  );
  const attempts = toInt(headers["x-ttg-attempts"]) ?? toInt(body.dl_attempts) ??
    toInt(headers.retry_count) ?? toInt(body.retry_count) ?? decoded.state.attempt;
  return {
    id,
    jobId,
    task: decoded.task,
    kind,
    reason,
    attempts,
    history,
    at: typeof body.failed_at === "string" ? body.failed_at : last?.at ?? at,
  };
}

/** Reads the task and retry state back out of a dead letter, for replay. */
export function deadLetterTask(jobId: string, content: Uint8Array): DecodedTask {
  return decodeTask(jobId, content, {}, 0);
}

function readHistory(value: unknown): AttemptRecord[] {
  if (!Array.isArray(value)) return [];
  return value.filter((h): h is AttemptRecord =>
    isRecord(h) && typeof h.reason === "string" && typeof h.kind === "string" &&
    typeof h.attempt === "number"
  ).map((h) => ({ ...h }));
}

function trimHistory(history: readonly AttemptRecord[]): AttemptRecord[] {
  return history.slice(-MAX_HISTORY).map((h) => ({
    ...h,
    reason: h.reason.slice(0, MAX_REASON),
  }));
}

function toInt(value: unknown): number | undefined {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  return typeof n === "number" && Number.isSafeInteger(n) ? n : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
