/**
 * The Redis broker's transport: key names, and entries as flat string fields. The predecessor's
 * fields are mapped in legacy.ts; this module adds only what a stream entry carries beyond them.
 *
 * - Task entries: the predecessor's fields first (`legacyTaskFields`), then TTG's `job_id`,
 *   `handler`, `priority`, `args` (JSON), `divisible` (`1`/`0`) and, once the chunk came back,
 *   `attempts` (failed attempts so far), `crashes` (leases lost so far), `history` (JSON) and
 *   `epoch` (of its last claim). An entry with a single `payload` field holding a JSON
 *   {@linkcode ChunkTask} is read too (a foreign producer's format).
 * - Result entries (`<base>:results`): the predecessor's fields (`legacyResultFields`), then
 *   `params` and the marker `ttg: "1"`.
 * - Dead-letter entries (`<base>:dlq`): `job_id`, `chunk_id`, `kind`, `reason`, `attempts`,
 *   `history`, `at`, `fields` (the task entry's fields as a JSON array) and, for a message that
 *   is not a chunk, `raw`.
 *
 * @module
 */
import type { AttemptRecord, ChunkResult, DeadLetter, StoredResult } from "../broker.ts";
import {
  legacyResultFields,
  legacyTaskFields,
  readLegacyResult,
  readLegacyTask,
} from "../legacy.ts";
import type { KvSpace } from "../registry.ts";
import { type ChunkTask, readTaskJson } from "../task.ts";

/** Default key prefix: with it, job `ttg` uses exactly the predecessor's names. */
export const DEFAULT_KEY_PREFIX = "ttg";

/** Consumer group of every task stream (the predecessor's name). */
export const GROUP = "ttg-workers";

/**
 * Base of a job's key names. The job whose id equals the prefix (job `ttg` by default) uses the
 * prefix itself, so its streams are the predecessor's `ttg:tasks` and `ttg:results`; any other job
 * uses `<prefix>:<jobId>` (`ttg:nightly:tasks`). Job ids contain no `:`, so the two never collide.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { jobKeyBase } from "./codec.ts";
 * assert.equal(jobKeyBase("ttg", "ttg"), "ttg");
 * assert.equal(jobKeyBase("ttg", "nightly"), "ttg:nightly");
 * ```
 */
export function jobKeyBase(prefix: string, jobId: string): string {
  return jobId === prefix ? prefix : `${prefix}:${jobId}`;
}

/**
 * Hash of one space of the broker's key-value store (the job index, job controls, the fleet
 * registry): `<prefix>:@<space>`, field = key. Entries written with a time to live also have a
 * score (expiry, ms) in the zset `<prefix>:@<space>:exp`. `@` is not allowed in a job id, so no
 * job's keys (`<prefix>:<jobId>:…`) can be these.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kvKey } from "./codec.ts";
 * assert.equal(kvKey("ttg", "controls"), "ttg:@controls");
 * ```
 */
export function kvKey(prefix: string, space: KvSpace): string {
  return `${prefix}:@${space}`;
}

/**
 * Stream of a band: a priority `0`–`10` (new tasks) or `r0`–`r10` (tasks coming back: reclaimed,
 * released, retried, split).
 */
export function streamKey(base: string, band: string): string {
  const redo = band.startsWith("r");
  const priority = redo ? band.slice(1) : band;
  const name = redo ? "redo" : "tasks";
  return priority === "0" ? `${base}:${name}` : `${base}:${name}.p${priority}`;
}

/** Names of a job's keys besides its task streams (scripts/prelude.ts describes each). */
const JOB_KEY_NAMES = [
  "results",
  "done",
  "delayed",
  "dlq",
  "stats",
  "bands",
  "consumers",
  "expiring",
  "taken",
  "job",
] as const;

/** Every key a job may own, for reset. */
export function jobKeys(base: string): string[] {
  const bands = Array.from({ length: 11 }, (_, p) => [
    streamKey(base, String(p)),
    streamKey(base, `r${p}`),
  ]).flat();
  return [...bands, ...JOB_KEY_NAMES.map((n) => `${base}:${n}`)];
}

/** Flat field list of a task entry: the predecessor's fields, then TTG's. */
export function encodeTask(task: ChunkTask): string[] {
  const legacy = Object.entries(legacyTaskFields(task)).flat();
  return [
    ...legacy,
    "job_id",
    task.jobId,
    "handler",
    task.handler,
    "priority",
    String(task.priority),
    "args",
    JSON.stringify(task.args),
    "divisible",
    task.divisible ? "1" : "0",
  ];
}

/** Tasks of one band that share every field but their range, in the publish script's format. */
export interface PublishBatch {
  /** The tasks' priority. */
  readonly band: string;
  /** JSON [total_params, total_chunks, created_at, job_id, handler, args, divisible]. */
  readonly common: string;
  /** [chunk_id, start_param, end_param, params_count] per task. */
  readonly rows: string[][];
}

/**
 * Groups tasks (sorted by band) into batches of at most `size` that the publish script turns into
 * entries identical to {@linkcode encodeTask}'s, sending each shared field once per batch.
 */
export function publishBatches(tasks: readonly ChunkTask[], size: number): PublishBatch[] {
  const batches: PublishBatch[] = [];
  let current: PublishBatch | undefined;
  for (const task of tasks) {
    const f = legacyTaskFields(task);
    const band = String(task.priority);
    const common = JSON.stringify([
      f.total_params,
      f.total_chunks,
      f.created_at,
      task.jobId,
      task.handler,
      JSON.stringify(task.args),
      task.divisible ? "1" : "0",
    ]);
    if (
      !current || current.band !== band || current.common !== common || current.rows.length >= size
    ) {
      current = { band, common, rows: [] };
      batches.push(current);
    }
    current.rows.push([f.chunk_id, f.start_param, f.end_param, f.params_count]);
  }
  return batches;
}

/** A task entry read back: the chunk and where it stands, or why it is not a chunk. */
export type DecodedEntry =
  & {
    /** Fencing epoch of this claim of the entry: its carried `epoch` + 1. */
    readonly epoch: number;
  }
  & (
    | {
      readonly ok: true;
      readonly task: ChunkTask;
      /** Failed attempts so far. */
      readonly attempts: number;
      /** Leases lost so far. */
      readonly crashes: number;
      readonly history: AttemptRecord[];
    }
    | { readonly ok: false; readonly reason: string; readonly raw: string }
  );

/** Turns a flat field list into a record (later duplicates win). */
export function fieldMap(flat: readonly string[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) map[flat[i]!] = flat[i + 1]!;
  return map;
}

function isoFromEntryId(entryId: string): string {
  const ms = Number(entryId.split("-")[0]);
  return new Date(Number.isFinite(ms) ? ms : 0).toISOString();
}

/** A count field: a whole number from 0, else 0. */
function countField(value: string | undefined): number {
  const n = value === undefined ? 0 : Number(value);
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/**
 * Reads a task entry of job `jobId` (stream entry `entryId`); an entry that is not a chunk of the
 * job (missing fields, bad JSON, another job's id) comes back with the reason and the raw message.
 */
export function decodeTask(jobId: string, entryId: string, flat: readonly string[]): DecodedEntry {
  const f = fieldMap(flat);
  const epoch = countField(f.epoch) + 1; // as the scripts' claim_epoch
  const payload = f.payload !== undefined && flat.length === 2 ? f.payload : undefined;
  const task = payload !== undefined
    ? readTaskJson(payload, jobId)
    : readLegacyTask(f, jobId, f.created_at ? "" : isoFromEntryId(entryId));
  if (typeof task === "string") {
    return { ok: false, reason: task, raw: payload ?? JSON.stringify(f), epoch };
  }
  return {
    ok: true,
    epoch,
    task,
    attempts: countField(f.attempts),
    crashes: countField(f.crashes),
    history: parseHistory(f.history),
  };
}

/** Reads a history field (JSON array of {@linkcode AttemptRecord}); bad input reads as []. */
export function parseHistory(json: string | undefined): AttemptRecord[] {
  if (!json) return [];
  try {
    const value = JSON.parse(json);
    if (!Array.isArray(value)) return [];
    return value.filter((r) => typeof r === "object" && r !== null).map((r) => ({
      attempt: Number(r.attempt) || 0,
      kind: String(r.kind) as AttemptRecord["kind"],
      reason: String(r.reason ?? ""),
      workerId: String(r.workerId ?? ""),
      at: String(r.at ?? ""),
    }));
  } catch {
    return [];
  }
}

/**
 * The ack script's row of one result: receipt, epoch, then the result entry's fields in order
 * (`legacyResultFields`, then `params`).
 */
export function resultRow(receipt: string, epoch: number, chunkId: string, result: ChunkResult) {
  const f = legacyResultFields(chunkId, result);
  return [
    receipt,
    String(epoch),
    f.chunk_id,
    f.worker_id,
    f.duration_seconds,
    f.completed_at,
    f.result_data,
    String(result.params),
  ];
}

/** Reads a results-stream entry (ours or a legacy worker's). */
export function decodeResult(flat: readonly string[]): StoredResult {
  return readLegacyResult(fieldMap(flat)) ?? {
    chunkId: "",
    value: null,
    params: 0,
    workerId: "",
    durationMs: 0,
    completedAt: "",
  };
}

/** Reads a dead-letter entry. */
export function decodeDeadLetter(jobId: string, id: string, flat: readonly string[]): DeadLetter {
  const f = fieldMap(flat);
  let task: ChunkTask | null = null;
  if (f.kind !== "malformed" && f.fields) {
    try {
      const decoded = decodeTask(jobId, id, JSON.parse(f.fields) as string[]);
      if (decoded.ok) task = decoded.task;
    } catch {
      task = null;
    }
  }
  return {
    id,
    jobId,
    task,
    ...(f.raw !== undefined ? { raw: f.raw } : {}),
    kind: (f.kind ?? "failed") as DeadLetter["kind"],
    reason: f.reason ?? "",
    attempts: countField(f.attempts),
    history: parseHistory(f.history),
    at: f.at ?? isoFromEntryId(id),
  };
}
