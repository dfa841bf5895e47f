/**
 * A chunk of a sweep as brokers carry it ({@linkcode ChunkTask}), the job record, and the one
 * place both are read from untrusted input and validated. Brokers call {@linkcode parseTask} on
 * every message they receive, so a malformed message is dead-lettered with its reason instead of
 * crashing a worker.
 *
 * @module
 */

/** Lowest task priority. */
export const PRIORITY_MIN = 0;
/** Highest task priority. */
export const PRIORITY_MAX = 10;

/** One chunk of a sweep: the parameters `[start, end)` of a job, and how to run them. */
export interface ChunkTask {
  /** Job id: the namespace of every broker name (queue, stream, table row). */
  readonly jobId: string;
  /** Chunk id, unique within the job: `"00042"`; halves of a bisected chunk `"00042.0"`, `"00042.1"`. */
  readonly chunkId: string;
  /** Name of the handler (the job definition) that computes the chunk, e.g. `"ttg.sweep"`. */
  readonly handler: string;
  /** First parameter of the chunk (inclusive). */
  readonly start: number;
  /** End of the chunk (exclusive). */
  readonly end: number;
  /** Parameters of the whole sweep. */
  readonly totalParams: number;
  /** Chunks the sweep was first split into. */
  readonly totalChunks: number;
  /** 0 (lowest) to 10 (highest). */
  readonly priority: number;
  /** ISO 8601 time the chunk was created. */
  readonly createdAt: string;
  /** Handler arguments (JSON), e.g. `{ work_ms: 0 }`. */
  readonly args: Readonly<Record<string, unknown>>;
  /** False when the job declared its chunks indivisible (no poison-chunk bisection). */
  readonly divisible: boolean;
}

/** What {@linkcode Broker.createJob} records about a job (used by status and idempotent submit). */
export interface JobRecord {
  /** Job id. */
  readonly jobId: string;
  /** Name of the handler that computes the job's chunks. */
  readonly handler: string;
  /** Parameters of the whole sweep. */
  readonly totalParams: number;
  /** Chunks the sweep was split into. */
  readonly totalChunks: number;
  /** Parameters per chunk (the last chunk may have fewer). */
  readonly chunkSize: number;
  /** ISO 8601 time the job was planned. */
  readonly createdAt: string;
  /** Handler arguments (JSON), as submitted. */
  readonly args: Readonly<Record<string, unknown>>;
  /** The module that defines the handler (a file URL), for readers that reduce its results. */
  readonly module?: string;
  /** Most chunks of the job running at once, whatever the fleet's size. */
  readonly maxInFlight?: number;
  /** Seconds the job's data is kept once it finished (retention.ts); none: the broker's default. */
  readonly ttlSeconds?: number;
}

const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * True when `jobId` is a valid job id: 1 to 63 letters, digits, `.`, `_` or `-`, starting with a
 * letter or digit (so it never collides with a broker's own key separators).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isJobId } from "./task.ts";
 * assert.ok(isJobId("nightly-2026.12"));
 * assert.ok(!isJobId("a:b"));
 * ```
 */
export function isJobId(jobId: unknown): jobId is string {
  return typeof jobId === "string" && JOB_ID.test(jobId);
}

/** Throws a `TypeError` naming the value unless `jobId` is a valid job id. */
export function assertJobId(jobId: string): void {
  if (!isJobId(jobId)) {
    throw new TypeError(
      `Invalid job id "${String(jobId)}": expected 1 to 63 letters, digits, ".", "_" or "-"`,
    );
  }
}

/**
 * Reads an unknown value as a {@linkcode ChunkTask}; returns the reason it is not one as a string.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTask } from "./task.ts";
 * assert.equal(parseTask({ jobId: "j" }), 'field "chunkId" is missing or not a string');
 * ```
 */
export function parseTask(value: unknown): ChunkTask | string {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "message is not a JSON object";
  }
  const v = value as Record<string, unknown>;
  for (const field of ["jobId", "chunkId", "handler", "createdAt"] as const) {
    if (typeof v[field] !== "string" || v[field] === "") {
      return `field "${field}" is missing or not a string`;
    }
  }
  for (const field of ["start", "end", "totalParams", "totalChunks", "priority"] as const) {
    if (typeof v[field] !== "number" || !Number.isSafeInteger(v[field])) {
      return `field "${field}" is missing or not an integer`;
    }
  }
  const task = v as unknown as ChunkTask;
  if (!JOB_ID.test(task.jobId)) return `field "jobId" is invalid: "${task.jobId}"`;
  if (task.start < 0 || task.end <= task.start) {
    return `fields "start"/"end" are not a range: ${task.start}..${task.end}`;
  }
  if (task.priority < PRIORITY_MIN || task.priority > PRIORITY_MAX) {
    return `field "priority" is out of range 0-10: ${task.priority}`;
  }
  if (v.args !== undefined && (typeof v.args !== "object" || v.args === null)) {
    return `field "args" is not an object`;
  }
  return {
    jobId: task.jobId,
    chunkId: task.chunkId,
    handler: task.handler,
    start: task.start,
    end: task.end,
    totalParams: task.totalParams,
    totalChunks: task.totalChunks,
    priority: task.priority,
    createdAt: task.createdAt,
    args: (v.args ?? {}) as Record<string, unknown>,
    divisible: v.divisible !== false,
  };
}

/**
 * Reads a stored message of job `jobId` as a task, or returns why it is not one (not JSON, not a
 * task, or a task of another job).
 */
export function readTaskJson(payload: string, jobId: string): ChunkTask | string {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch (error) {
    return `message is not JSON: ${error instanceof Error ? error.message : String(error)}`;
  }
  const task = parseTask(value);
  if (typeof task === "string" || task.jobId === jobId) return task;
  return `field "jobId" is "${task.jobId}", not the queue's job "${jobId}"`;
}

/** Throws a `TypeError` naming the field unless `task` is a valid {@linkcode ChunkTask}. */
export function assertTask(task: ChunkTask): void {
  const parsed = parseTask(task);
  if (typeof parsed === "string") {
    throw new TypeError(`Invalid task "${task?.chunkId}": ${parsed}`);
  }
}

/** Formats chunk number `index` as the predecessor did: 5 digits, zero-padded (`"00042"`). */
export function formatChunkId(index: number): string {
  return String(index).padStart(5, "0");
}

/**
 * The parameters `[start, end)` of a chunk id of a job planned in chunks of `chunkSize`: a planned
 * chunk, or a half of a bisected one (`.0` the first half, `.1` the second; a half splits at
 * `start + floor(size / 2)`, as bisection does).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chunkRange } from "./task.ts";
 * assert.deepEqual(chunkRange("00042", 100, 10_000), [4200, 4300]);
 * assert.deepEqual(chunkRange("00042.1.0", 100, 10_000), [4250, 4275]);
 * ```
 */
export function chunkRange(
  chunkId: string,
  chunkSize: number,
  totalParams: number,
): [number, number] {
  const [index, ...halves] = chunkId.split(".");
  let start = Number(index) * chunkSize;
  let end = Math.min(totalParams, start + chunkSize);
  for (const half of halves) {
    const middle = start + Math.floor((end - start) / 2);
    if (half === "0") end = middle;
    else start = middle;
  }
  return [start, end];
}
