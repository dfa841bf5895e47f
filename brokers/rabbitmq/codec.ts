/**
 * Message bodies of the RabbitMQ broker: JSON objects holding the predecessor's fields (mapped in
 * legacy.ts, never renamed) plus TTG's, so old and new workers read each other's messages.
 *
 * - task: the predecessor's task and retry fields; TTG adds `job_id`, `handler`, `priority`,
 *   `args`, `divisible` (legacy.ts) and its claim state `attempt`, `crashes`, `claims`, `history`.
 * - result: the predecessor's result fields; TTG adds `job_id`, `params` and `duration_ms`.
 *   Results of namespaced jobs may travel several to a message (`{ "ttg_results": [...] }`); the
 *   predecessor's queue `ttg.results` always gets one message per chunk.
 * - dead letter: the task body plus the predecessor's `status: "dead_lettered"`, `last_error`,
 *   `failed_at` and header `final_error`; TTG's letter in `x-ttg-*` headers. A malformed message
 *   keeps its body as received.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { MessageProperties } from "amqplib";
import type { AttemptRecord, ChunkResult, ChunkTask, DeadLetter, StoredResult } from "../broker.ts";
import {
  integerField,
  legacyResultFields,
  legacyRetryFields,
  legacyTaskFields,
  readLegacyResult,
  readLegacyRetry,
  readLegacyTask,
} from "../legacy.ts";
import type { LetterFields } from "../policy.ts";

/** The form of dead-letter ids: ours (a UUID) or a digest of a foreign letter. */
export const DEAD_LETTER_IDS = {
  form: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$|^[0-9a-f]{20}$/,
  example: "3f2b8c1e-5d4a-4f6b-9c2d-1a2b3c4d5e6f",
} as const;

/** Header carrying a message's unique id (results, dead letters). */
export const ID_HEADER = "x-ttg-id";
/** Creation time of a task that has none (the predecessor always wrote one). */
const EPOCH = new Date(0).toISOString();
/** Most history records kept on a message (the oldest are dropped first). */
const MAX_HISTORY = 20;
/** Longest reason kept, in characters. */
const MAX_REASON = 2000;

/** What a task message says beyond its {@linkcode ChunkTask}. */
export interface TaskState {
  /** Attempt number of the next claim, 1-based. */
  readonly attempt: number;
  /** Leases lost so far without an answer. */
  readonly crashes: number;
  /** Claims made so far (the epoch of the next claim is `claims + 1`). */
  readonly claims: number;
  readonly history: readonly AttemptRecord[];
}

/** The state of a chunk nobody claimed yet. */
export const FRESH: TaskState = Object.freeze({ attempt: 1, crashes: 0, claims: 0, history: [] });

/** A decoded task message, or why it is not one. */
export type DecodedTask =
  | { readonly ok: true; readonly task: ChunkTask; readonly state: TaskState }
  | { readonly ok: false; readonly reason: string };

/** Encodes a task and its claim state (on the hot path of publishing: no spreads). */
export function encodeTask(task: ChunkTask, state: TaskState, extra?: object): Buffer {
  const last = state.history[state.history.length - 1];
  const body: Record<string, unknown> = legacyTaskFields(task) as unknown as Record<
    string,
    unknown
  >;
  Object.assign(body, legacyRetryFields(state.attempt, last?.kind === "failed" ? last : undefined));
  body.job_id = task.jobId;
  body.handler = task.handler;
  body.priority = task.priority;
  body.args = task.args;
  body.divisible = task.divisible;
  body.attempt = state.attempt;
  body.crashes = state.crashes;
  body.claims = state.claims;
  body.history = trimHistory(state.history);
  if (extra) Object.assign(body, extra);
  return Buffer.from(JSON.stringify(body));
}

/** Decodes a task message of job `jobId`; never throws. */
export function decodeTask(jobId: string, content: Uint8Array): DecodedTask {
  const { value, error } = parseJson(content);
  if (error) return { ok: false, reason: error };
  if (!isRecord(value)) return { ok: false, reason: "message is not a JSON object" };
  const task = readLegacyTask(value, jobId, EPOCH);
  if (typeof task === "string") return { ok: false, reason: task };
  const legacy = readLegacyRetry(value);
  const history = readHistory(value.history);
  // A predecessor's worker retried this message: its failure is history too.
  const record = legacy.record;
  if (record && !history.some((h) => h.at === record.at && h.reason === record.reason)) {
    history.push(record);
  }
  const attempt = Math.max(whole(value.attempt) ?? 1, legacy.failures + 1);
  const crashes = whole(value.crashes) ?? 0;
  const claims = whole(value.claims) ?? legacy.failures;
  return { ok: true, task, state: { attempt, crashes, claims, history } };
}

/** One chunk's result as a message body object. */
export function resultBody(jobId: string, chunkId: string, result: ChunkResult): object {
  return {
    ...legacyResultFields(chunkId, result),
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
  const { value } = parseJson(content);
  const list = isRecord(value) && Array.isArray(value.ttg_results) ? value.ttg_results : [value];
  const out: StoredResult[] = [];
  for (const item of list) {
    const result = isRecord(item) ? readLegacyResult(item) : undefined;
    if (result) out.push(result);
  }
  return out;
}

/** A dead letter to publish: body and headers. */
export interface EncodedDeadLetter {
  readonly content: Buffer;
  readonly headers: Record<string, unknown>;
}

/** Encodes a chunk's dead letter: the policy's letter, the chunk and its state. */
export function encodeDeadLetter(
  task: ChunkTask,
  state: TaskState,
  letter: LetterFields,
): EncodedDeadLetter {
  const reason = letter.reason.slice(0, MAX_REASON);
  const history = trimHistory(letter.history);
  const content = encodeTask(task, { ...state, history }, {
    status: "dead_lettered",
    retry_count: letter.attempts,
    last_error: reason,
    failed_at: letter.at,
  });
  return { content, headers: letterHeaders(letter, reason, history) };
}

/** Encodes an unreadable message's dead letter: its body as received, the letter in headers. */
export function encodeMalformed(content: Uint8Array, letter: LetterFields): EncodedDeadLetter {
  const reason = letter.reason.slice(0, MAX_REASON);
  return {
    content: Buffer.from(content),
    headers: letterHeaders(letter, reason, trimHistory(letter.history)),
  };
}

function letterHeaders(
  letter: LetterFields,
  reason: string,
  history: readonly AttemptRecord[],
): Record<string, unknown> {
  return {
    final_error: reason,
    "x-ttg-kind": letter.kind,
    "x-ttg-reason": reason,
    "x-ttg-attempts": letter.attempts,
    "x-ttg-history": JSON.stringify(history),
    "x-ttg-at": letter.at,
    [ID_HEADER]: crypto.randomUUID(),
  };
}

/** Whether a dead-letter message is an unreadable message rather than a chunk. */
export function isMalformedLetter(properties: Partial<MessageProperties>): boolean {
  return properties.headers?.["x-ttg-kind"] === "malformed";
}

/**
 * Decodes a message of a dead-letter queue: ours, the predecessor's, or one RabbitMQ moved there
 * itself (a quorum queue's delivery limit).
 */
export function decodeDeadLetter(
  jobId: string,
  content: Uint8Array,
  properties: Partial<MessageProperties>,
): DeadLetter {
  const headers = (properties.headers ?? {}) as Record<string, unknown>;
  const id = typeof headers[ID_HEADER] === "string"
    ? headers[ID_HEADER] as string
    : createHash("sha1").update(content).digest("hex").slice(0, 20);
  const stamped = typeof properties.timestamp === "number"
    ? new Date(properties.timestamp * 1000).toISOString()
    : new Date(0).toISOString();
  const at = typeof headers["x-ttg-at"] === "string" ? headers["x-ttg-at"] as string : stamped;
  const history = readHistory(parseJson(String(headers["x-ttg-history"] ?? "")).value);
  const decoded = isMalformedLetter(properties) ? undefined : decodeTask(jobId, content);
  if (!decoded?.ok) {
    const reason = String(headers["x-ttg-reason"] ?? decoded?.reason ?? "malformed message");
    return {
      id,
      jobId,
      task: null,
      raw: new TextDecoder().decode(content),
      kind: "malformed",
      reason,
      attempts: 0,
      history: history.length > 0
        ? history
        : [{ attempt: 0, kind: "malformed", reason, workerId: "unknown", at }],
      at,
    };
  }
  const body = parseJson(content).value as Record<string, unknown>;
  if (typeof headers["x-ttg-kind"] === "string") {
    return {
      id,
      jobId,
      task: decoded.task,
      kind: headers["x-ttg-kind"] as DeadLetter["kind"],
      reason: String(headers["x-ttg-reason"]),
      attempts: whole(headers["x-ttg-attempts"]) ?? decoded.state.attempt,
      history: history.length > 0 ? history : decoded.state.history,
      at,
    };
  }
  // Not ours: RabbitMQ's delivery limit (x-death), or a predecessor's worker.
  const death = Array.isArray(headers["x-death"]) ? headers["x-death"][0] : undefined;
  const reason = death
    ? `Dead-lettered by RabbitMQ: ${String((death as Record<string, unknown>).reason)}`
    : String(headers.final_error ?? body.last_error ?? "dead-lettered");
  const kind = death ? "expired" : "failed";
  const final: AttemptRecord = {
    attempt: decoded.state.attempt,
    kind,
    reason,
    workerId: death ? "rabbitmq" : "legacy",
    at: typeof body.failed_at === "string" ? body.failed_at : at,
  };
  const past = decoded.state.history;
  const last = past[past.length - 1];
  const ends = last?.kind === kind && last.reason === reason;
  return {
    id,
    jobId,
    task: decoded.task,
    kind,
    reason,
    attempts: whole(headers.retry_count) ?? whole(body.retry_count) ?? decoded.state.attempt,
    history: ends ? past : [...past, final],
    at: final.at,
  };
}

function readHistory(value: unknown): AttemptRecord[] {
  if (!Array.isArray(value) || value.length === 0) return [];
  return value.filter((h): h is AttemptRecord =>
    isRecord(h) && typeof h.reason === "string" && typeof h.kind === "string" &&
    typeof h.attempt === "number"
  ).map((h) => ({
    attempt: h.attempt,
    kind: h.kind,
    reason: h.reason,
    workerId: String(h.workerId ?? "unknown"),
    at: String(h.at ?? ""),
  }));
}

function trimHistory(history: readonly AttemptRecord[]): AttemptRecord[] {
  if (history.length === 0) return [];
  return history.slice(-MAX_HISTORY).map((h) => ({
    ...h,
    reason: h.reason.slice(0, MAX_REASON),
  }));
}

/** The parsed JSON, or why it is not JSON. */
function parseJson(content: Uint8Array | string): { value?: unknown; error?: string } {
  const text = typeof content === "string" ? content : new TextDecoder().decode(content);
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    return { error: `message is not JSON: ${(error as Error).message}` };
  }
}

function whole(value: unknown): number | undefined {
  const n = integerField(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
