/**
 * The Redis broker's wire format: key names, task entries and result entries, compatible with the
 * Python predecessor (engineering-playbook.md §2–3).
 *
 * Task entries are flat string fields. The predecessor's fields come first and are always written:
 * `chunk_id` (5 digits, zero-padded), `start_param`, `end_param` (exclusive), `params_count`,
 * `total_params`, `total_chunks`, `created_at`, `status`. TTG adds `job_id`, `handler`,
 * `priority`, `args` (JSON), `divisible` (`1`/`0`) and, after a failure, `attempts`, `history`
 * (JSON) and `epoch`. An entry with only the predecessor's fields is a `ttg.sweep` chunk of
 * priority 0 with no arguments. An entry with a single `payload` field holding a JSON
 * {@linkcode ChunkTask} is also read (a foreign producer's format).
 *
 * Result entries (`<base>:results`) carry the predecessor's `chunk_id`, `worker_id`,
 * `status: "completed"`, `duration_seconds`, `completed_at` and `result_data` (JSON), plus TTG's
 * `job_id`, `params`, `duration_ms`, `epoch` and the marker `ttg: "1"`.
 *
 * @module
 */
import {
  type AttemptRecord,
  type ChunkTask,
  type DeadLetter,
  type NackRequest,
  parseTask,
  retryDelayMs,
  type RetryPolicy,
  type StoredResult,
} from "./contract.ts";

/** Default key prefix: with it, job `ttg` uses exactly the predecessor's names. */
export const DEFAULT_KEY_PREFIX = "ttg";

/**
 * Base of a job's key names. The job whose id equals the prefix (job `ttg` by default) uses the
 * prefix itself, so its streams are the predecessor's `ttg:tasks` and `ttg:results`; any other job
 * uses `<prefix>:<jobId>` (`ttg:nightly:tasks`). Job ids contain no `:`, so the two never collide.
 *
 * @example
 * ```ts
 * import { jobKeyBase } from "./redis_codec.ts";
 * console.assert(jobKeyBase("ttg", "ttg") === "ttg");
 * console.assert(jobKeyBase("ttg", "nightly") === "ttg:nightly");
 * ```
 */
export function jobKeyBase(prefix: string, jobId: string): string {
  return jobId === prefix ? prefix : `${prefix}:${jobId}`;
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

/** Every key a job may own, for reset. */
export function jobKeys(base: string): string[] {
  const bands = Array.from({ length: 11 }, (_, p) => [
    streamKey(base, String(p)),
    streamKey(base, `r${p}`),
  ]).flat();
  const names = [
    "results",
    "done",
    "delayed",
    "dlq",
    "stats",
    "bands",
    "consumers",
    "job",
  ];
  return [...bands, ...names.map((n) => `${base}:${n}`)];
}

/** Flat field list of a task entry (predecessor's fields first). */
export function encodeTask(task: ChunkTask): string[] {
  return [
    "chunk_id",
    task.chunkId,
    "start_param",
    String(task.start),
    "end_param",
    String(task.end),
    "params_count",
    String(task.end - task.start),
    "total_params",
    String(task.totalParams),
    "total_chunks",
    String(task.totalChunks),
    "created_at",
    task.createdAt,
    "status",
    "pending",
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
    const band = String(task.priority);
    const common = JSON.stringify([
      String(task.totalParams),
      String(task.totalChunks),
      task.createdAt,
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
    current.rows.push([
      task.chunkId,
      String(task.start),
      String(task.end),
      String(task.end - task.start),
    ]);
  }
  return batches;
}

/** A task entry read back: the task and its retry state, or why it is not a task. */
export type DecodedEntry =
  & {
    /** Fencing epoch of this claim of the entry: its carried `epoch` + 1. */
    readonly epoch: number;
  }
  & (
    | {
      readonly ok: true;
      readonly task: ChunkTask;
      readonly attempts: number;
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

function integer(value: string | undefined): number {
  if (value === undefined || value.trim() === "") return NaN;
  return Number(value);
}

function isoFromEntryId(entryId: string): string {
  const ms = Number(entryId.split("-")[0]);
  return new Date(Number.isFinite(ms) ? ms : 0).toISOString();
}

/**
 * Reads a task entry of job `jobId` (stream entry `entryId`); malformed entries (missing fields,
 * bad JSON, another job's id) come back with the reason and the raw message.
 */
export function decodeTask(jobId: string, entryId: string, flat: readonly string[]): DecodedEntry {
  const f = fieldMap(flat);
  const raw = f.payload !== undefined && flat.length === 2 ? f.payload : JSON.stringify(f);
  const carried = Number(f.epoch ?? 0);
  const epoch = (Number.isFinite(carried) ? carried : 0) + 1; // as the scripts' claim_epoch
  const bad = (reason: string) => ({ ok: false as const, reason, raw, epoch });
  let candidate: unknown;
  if (f.payload !== undefined) {
    try {
      candidate = JSON.parse(f.payload);
    } catch (error) {
      return bad(`payload is not JSON: ${(error as Error).message}`);
    }
  } else {
    for (const name of ["chunk_id", "start_param", "end_param"]) {
      if (f[name] === undefined || f[name] === "") return bad(`field "${name}" is missing`);
    }
    const legacy = f.handler === undefined;
    let args: unknown = {};
    if (!legacy && f.args !== undefined) {
      try {
        args = JSON.parse(f.args);
      } catch (error) {
        return bad(`field "args" is not JSON: ${(error as Error).message}`);
      }
    }
    candidate = {
      jobId: f.job_id ?? jobId,
      chunkId: f.chunk_id,
      handler: legacy ? "ttg.sweep" : f.handler,
      start: integer(f.start_param),
      end: integer(f.end_param),
      totalParams: integer(f.total_params ?? "0"),
      totalChunks: integer(f.total_chunks ?? "0"),
      priority: legacy ? 0 : integer(f.priority ?? "0"),
      createdAt: f.created_at || isoFromEntryId(entryId),
      args,
      divisible: f.divisible !== "0",
    };
  }
  const task = parseTask(candidate);
  if (typeof task === "string") return bad(task);
  if (task.jobId !== jobId) {
    return bad(`unknown job "${task.jobId}" in the stream of job "${jobId}"`);
  }
  const attempts = f.attempts === undefined ? 0 : integer(f.attempts);
  return {
    ok: true,
    epoch,
    task,
    attempts: Number.isSafeInteger(attempts) && attempts >= 0 ? attempts : 0,
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

/** Reads a results-stream entry (ours or a legacy worker's) as a {@linkcode StoredResult}. */
export function decodeResult(flat: readonly string[]): StoredResult {
  const f = fieldMap(flat);
  let value: unknown = null;
  const data = f.result_data ?? f.result_summary;
  if (data !== undefined) {
    try {
      value = JSON.parse(data);
    } catch {
      value = data;
    }
  }
  const count = typeof value === "object" && value !== null
    ? Number((value as Record<string, unknown>).count)
    : NaN;
  const params = Number(f.params ?? f.params_processed ?? count);
  const durationMs = f.duration_ms !== undefined
    ? Number(f.duration_ms)
    : Math.round(Number(f.duration_seconds ?? 0) * 1e6) / 1e3;
  return {
    chunkId: f.chunk_id ?? "",
    value,
    params: Number.isFinite(params) ? params : 0,
    workerId: f.worker_id ?? "",
    durationMs: Number.isFinite(durationMs) ? durationMs : 0,
    completedAt: f.completed_at ?? "",
  };
}

/** Reads a dead-letter entry. */
export function decodeDeadLetter(jobId: string, id: string, flat: readonly string[]): DeadLetter {
  const f = fieldMap(flat);
  let task: ChunkTask | null = null;
  if (f.kind !== "malformed" && f.fields) {
    try {
      const original = JSON.parse(f.fields) as string[];
      const decoded = decodeTask(jobId, id, original);
      if (decoded.ok) task = decoded.task;
    } catch {
      task = null;
    }
  }
  const attempts = Number(f.attempts);
  return {
    id,
    jobId,
    task,
    ...(f.raw !== undefined ? { raw: f.raw } : {}),
    kind: (f.kind ?? "failed") as DeadLetter["kind"],
    reason: f.reason ?? "",
    attempts: Number.isFinite(attempts) ? attempts : 0,
    history: parseHistory(f.history),
    at: f.at ?? isoFromEntryId(id),
  };
}

/**
 * The nack script's 6 arguments for one request: receipt, epoch, action (release, split, dead or
 * retry), attempts and history to write, and the action's extra (split tasks, dead-letter fields
 * or the retry delay). A release burns no attempt and adds nothing to the history.
 */
export function encodeNack(request: NackRequest, retry: RetryPolicy): (string | number)[] {
  const { delivery, kind, workerId, split } = request;
  // Redis's Lua JSON decoder rejects lone surrogates, which JSON.stringify escapes as they are.
  const reason = request.reason.toWellFormed();
  const at = new Date().toISOString();
  const head = [delivery.receipt, delivery.epoch];
  if (kind === "released") {
    return [...head, "release", delivery.attempt - 1, JSON.stringify(delivery.history), ""];
  }
  const history = JSON.stringify([
    ...delivery.history,
    { attempt: delivery.attempt, kind, reason, workerId, at },
  ]);
  if (split && split.length > 0) {
    return [...head, "split", delivery.attempt, history, JSON.stringify(split.map(encodeTask))];
  }
  if (kind === "unrecoverable" || delivery.attempt >= retry.maxAttempts) {
    return [...head, "dead", delivery.attempt, history, JSON.stringify({ kind, reason, at })];
  }
  return [...head, "retry", delivery.attempt, history, retryDelayMs(retry, delivery.attempt)];
}
