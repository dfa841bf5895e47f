/**
 * The broker contract: the one seam between TTG's workers and a message broker.
 *
 * A sweep is split into chunks ({@linkcode ChunkTask}); a coordinator publishes them; workers
 * {@linkcode Broker.pull | pull} deliveries, run a handler and {@linkcode Broker.ack | ack} each
 * with its result (or {@linkcode Broker.nack | nack} it with a reason). Every claim of a chunk
 * carries a lease and a fencing `epoch`; a worker keeps its leases alive with
 * {@linkcode Broker.extend | extend}, and {@linkcode Broker.reclaim | reclaim} hands the chunks
 * of a dead worker to the others. The broker stores one result per (job, chunk): a second result
 * is a counted duplicate, and an ack whose epoch is no longer current (a "zombie") is rejected
 * in the same atomic step as the store.
 *
 * Every broker module (sqlite.ts, redis.ts, rabbitmq.ts) implements {@linkcode Broker} and is
 * checked by one shared conformance suite (tests/conformance.ts).
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

/** Why a delivery was given back. `released` puts it back at once without burning an attempt. */
export type NackKind = "failed" | "timeout" | "unrecoverable" | "released";

/** One failed attempt of a chunk, kept in its history and in its dead letter. */
export interface AttemptRecord {
  /** Attempt number this record describes (1-based). */
  readonly attempt: number;
  /**
   * How the attempt ended: a nack kind, `malformed` (the message could not be read as a chunk)
   * or `expired` (its lease ran out on the last attempt).
   */
  readonly kind: NackKind | "malformed" | "expired";
  /** Why the attempt failed, e.g. the handler's error message. */
  readonly reason: string;
  /** Consumer that recorded the failure. */
  readonly workerId: string;
  /** ISO 8601 time of the failure. */
  readonly at: string;
}

/** A chunk claimed by this consumer, under a lease. */
export interface Delivery {
  /** The claimed chunk. */
  readonly task: ChunkTask;
  /** 1 on the first claim; grows with every claim that did not end in a release. */
  readonly attempt: number;
  /** Attempts allowed before the chunk is dead-lettered (or bisected). */
  readonly maxAttempts: number;
  /** Fencing token: strictly grows with every claim of this chunk. */
  readonly epoch: number;
  /** Broker-private handle (row id, stream entry id, delivery tag). */
  readonly receipt: string;
  /** Earlier failed attempts, oldest first. */
  readonly history: readonly AttemptRecord[];
}

/** What a handler computed for one chunk. */
export interface ChunkResult {
  /** The handler's result (JSON). */
  readonly value: unknown;
  /** Parameters the result covers. */
  readonly params: number;
  /** Worker that computed the result. */
  readonly workerId: string;
  /** Time the handler took, in milliseconds. */
  readonly durationMs: number;
  /** ISO 8601 time the chunk completed. */
  readonly completedAt: string;
}

/** A result as stored by the broker: the first one counted for its chunk. */
export interface StoredResult extends ChunkResult {
  /** Chunk the result belongs to. */
  readonly chunkId: string;
}

/** A chunk (or an unreadable message) that will not be retried. */
export interface DeadLetter {
  /** Broker-private id, for replay and purge. */
  readonly id: string;
  /** Job the dead letter belongs to. */
  readonly jobId: string;
  /** The chunk, or null when the message could not be read as one. */
  readonly task: ChunkTask | null;
  /** The message as received, when it could not be read as a chunk. */
  readonly raw?: string;
  /** How the last attempt ended. */
  readonly kind: AttemptRecord["kind"];
  /** Why the chunk was dead-lettered. */
  readonly reason: string;
  /** Attempts made before dead-lettering (0 for an unreadable message). */
  readonly attempts: number;
  /** Failed attempts, oldest first. */
  readonly history: readonly AttemptRecord[];
  /** ISO 8601 time of dead-lettering. */
  readonly at: string;
}

/** Counts of one job on one broker. */
export interface BrokerStats {
  /** Chunks waiting to be pulled. */
  readonly ready: number;
  /** Chunks under a lease. */
  readonly inFlight: number;
  /** Chunks waiting out a retry backoff. */
  readonly delayed: number;
  /** Dead letters of the job. */
  readonly deadLettered: number;
  /** Chunks with a counted result. */
  readonly completed: number;
  /** Results discarded because the chunk already had one. */
  readonly duplicates: number;
  /** Acks, nacks or extensions rejected because their epoch was no longer current. */
  readonly zombies: number;
  /** Failed attempts that were scheduled for a retry. */
  readonly retried: number;
  /** Deliveries taken over after their lease expired. */
  readonly reclaimed: number;
  /** Consumers seen recently. */
  readonly consumers: number;
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
}

/** Retry with exponential backoff, then dead-letter. */
export interface RetryPolicy {
  /** Attempts in all, the first included. @default 4 (3 retries) */
  readonly maxAttempts: number;
  /** Delay before the first retry. @default 1000 */
  readonly baseDelayMs: number;
  /** Growth of the delay per retry. @default 2 */
  readonly factor: number;
  /** Upper bound of a delay. @default 30000 */
  readonly maxDelayMs: number;
}

/** Options every broker accepts when opened. */
export interface BrokerOptions {
  /** This consumer's name (unique per process). @default `${hostname}-${pid}` */
  readonly consumerId: string;
  /** How long a claim lasts without extension (three heartbeats). @default 3000 */
  readonly leaseMs: number;
  /** Retry policy of failed chunks; defaults to {@linkcode DEFAULT_RETRY}. */
  readonly retry: RetryPolicy;
  /** A waiting task gains one priority level per this interval, so low priority is not starved. @default 30000 */
  readonly priorityAgingMs: number;
}

/** Defaults of {@linkcode RetryPolicy}. */
export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  maxAttempts: 4,
  baseDelayMs: 1000,
  factor: 2,
  maxDelayMs: 30_000,
});

/**
 * Default lease of a claim: three heartbeats, so a dead worker's chunks come back within about
 * three seconds. Fencing makes a too-early reclaim harmless (the stalled holder cannot commit).
 */
export const DEFAULT_LEASE_MS = 3000;
/** Default heartbeat interval of a worker (a lease survives two missed beats). */
export const DEFAULT_HEARTBEAT_MS = 1000;
/** Default aging interval of priorities. */
export const DEFAULT_PRIORITY_AGING_MS = 30_000;

/** Options of {@linkcode Broker.pull}. */
export interface PullOptions {
  /** Job to pull from. */
  readonly jobId: string;
  /** Most deliveries to return. @default 1 */
  readonly max?: number;
  /** How long to wait for a first delivery; 0 returns at once. @default 1000 */
  readonly waitMs?: number;
  /** Aborting returns what was claimed so far (possibly nothing) without throwing. */
  readonly signal?: AbortSignal;
}

/** One chunk's result to store, and its delivery to acknowledge. */
export interface AckRequest {
  /** Delivery to acknowledge. */
  readonly delivery: Delivery;
  /** The chunk's result to store. */
  readonly result: ChunkResult;
}

/**
 * - `stored`: the result is the chunk's counted result.
 * - `duplicate`: the chunk already had a result; this one was discarded and counted.
 * - `zombie`: the epoch is no longer current; nothing was stored, and the rejection was counted.
 */
export type AckOutcome = "stored" | "duplicate" | "zombie";

/** A delivery given back, with why. */
export interface NackRequest {
  /** Delivery to give back. */
  readonly delivery: Delivery;
  /** Why it is given back. */
  readonly kind: NackKind;
  /** Human-readable reason, kept in the chunk's history. */
  readonly reason: string;
  /** Worker giving the delivery back. */
  readonly workerId: string;
  /**
   * Poison-chunk bisection: tasks that replace the chunk, published in the same atomic step
   * in which the chunk leaves the queue (instead of a retry or a dead letter).
   */
  readonly split?: readonly ChunkTask[];
}

/**
 * - `retrying`: scheduled again after a backoff.
 * - `released`: back in the queue at once, with no attempt burned.
 * - `dead_lettered`: moved to the dead letters with its reason and history.
 * - `split`: replaced by the tasks of {@linkcode NackRequest.split}.
 * - `zombie`: the epoch is no longer current; nothing changed, and the rejection was counted.
 */
export type NackOutcome = "retrying" | "released" | "dead_lettered" | "split" | "zombie";

/** Outcome of one lease extension: `zombie` means the lease was lost to another claim. */
export type ExtendOutcome = "extended" | "zombie";

/** Options of {@linkcode Broker.reclaim}. */
export interface ReclaimOptions {
  /** Job whose expired leases to take over. */
  readonly jobId: string;
  /** Most deliveries to take over in one call. @default 1000 */
  readonly max?: number;
}

/** Selects dead letters for replay or purge; without `ids`, all of the job's. */
export interface DeadLetterSelector {
  /** Job the dead letters belong to. */
  readonly jobId: string;
  /** Dead letter ids ({@linkcode DeadLetter.id}) to select; all of the job's when omitted. */
  readonly ids?: readonly string[];
}

/** Optional features a broker declares, like River's `SupportsListener()`. */
export interface BrokerCapabilities {
  /** Pulls return the highest (aged) priority first, strictly. */
  readonly strictPriority: boolean;
  /** Several processes can share it. */
  readonly multiProcess: boolean;
  /** Leases end when the consumer's connection drops, before any lease timeout. */
  readonly connectionBoundLeases: boolean;
}

/**
 * Checks dead-letter ids against the form a broker gives them; throws a TypeError naming the first
 * one that cannot be an id (a typo), so it is not taken for an id that matches nothing.
 */
export function assertDeadLetterIds(
  ids: readonly string[] | undefined,
  form: RegExp,
  example: string,
): void {
  for (const id of ids ?? []) {
    if (!form.test(id)) {
      throw new TypeError(
        `Invalid dead-letter id "${id}": expected an id listed by ttg dlq list, like ${example}`,
      );
    }
  }
}

/** The dead-letter operations of a broker. */
export interface DeadLetterStore {
  /** The job's dead letters, at most `options.limit` of them (all when omitted). */
  list(jobId: string, options?: { readonly limit?: number }): Promise<DeadLetter[]>;
  /** Puts dead letters back in the queue with fresh attempts; returns how many. */
  replay(selector: DeadLetterSelector): Promise<number>;
  /** Deletes dead letters; returns how many. */
  purge(selector: DeadLetterSelector): Promise<number>;
}

/**
 * The contract every broker implements.
 *
 * Batch calls (`ack`, `nack`, `extend`) take many requests and make one round trip (one script,
 * transaction or pipeline), returning one outcome per request, in order.
 */
export interface Broker extends AsyncDisposable {
  /** Short name of the backend: `sqlite`, `redis`, `rabbitmq`. */
  readonly backend: string;
  /** The options the broker was opened with, defaults filled. */
  readonly options: BrokerOptions;
  /** Optional features this broker supports. */
  readonly capabilities: BrokerCapabilities;

  /** Records a job once; resolves false when it was already recorded (idempotent submit). */
  createJob(job: JobRecord): Promise<boolean>;
  /** The job's record, or null when it has none (e.g. a job written by legacy workers without one). */
  getJob(jobId: string): Promise<JobRecord | null>;
  /** Enqueues tasks in bulk (batched, not one round trip per task). */
  publish(tasks: readonly ChunkTask[]): Promise<void>;
  /** Claims up to `max` tasks of a job for this consumer, waiting up to `waitMs` for the first. */
  pull(options: PullOptions): Promise<Delivery[]>;
  /** Stores results and acknowledges their deliveries. */
  ack(requests: readonly AckRequest[]): Promise<AckOutcome[]>;
  /** Gives deliveries back: retry with backoff, release, dead-letter, or split. */
  nack(requests: readonly NackRequest[]): Promise<NackOutcome[]>;
  /** Extends the leases of in-flight deliveries by `options.leaseMs` from now. */
  extend(deliveries: readonly Delivery[]): Promise<ExtendOutcome[]>;
  /** Takes over deliveries whose lease expired, so they can be pulled again; returns how many. */
  reclaim(options: ReclaimOptions): Promise<number>;
  /** Current counts of a job. */
  stats(jobId: string): Promise<BrokerStats>;
  /** The counted result of every completed chunk of a job. */
  results(jobId: string): Promise<StoredResult[]>;
  /** Lists, replays and purges dead letters. */
  readonly deadLetters: DeadLetterStore;
  /** Deletes every trace of a job (tasks, results, dead letters, counters). */
  reset(jobId: string): Promise<void>;
  /** Disconnects. Does not release leases: to the others, a closed consumer looks dead. */
  close(): Promise<void>;
}

/**
 * Delay before retrying after failed attempt number `attempt` (1-based).
 *
 * @example
 * ```ts
 * import { DEFAULT_RETRY, retryDelayMs } from "./contract.ts";
 * console.assert(retryDelayMs(DEFAULT_RETRY, 1) === 1000);
 * console.assert(retryDelayMs(DEFAULT_RETRY, 3) === 4000);
 * ```
 */
export function retryDelayMs(policy: RetryPolicy, attempt: number): number {
  const delay = policy.baseDelayMs * policy.factor ** Math.max(0, attempt - 1);
  return Math.min(policy.maxDelayMs, Math.round(delay));
}

/**
 * Priority of a task that has waited `waitedMs`, for ordering: one level more per `agingMs`.
 *
 * @example
 * ```ts
 * import { agedPriority } from "./contract.ts";
 * console.assert(agedPriority(2, 65_000, 30_000) === 4);
 * ```
 */
export function agedPriority(priority: number, waitedMs: number, agingMs: number): number {
  return priority + Math.floor(Math.max(0, waitedMs) / agingMs);
}

const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Throws a `TypeError` naming the value unless `jobId` is a valid job id. */
export function assertJobId(jobId: string): void {
  if (typeof jobId !== "string" || !JOB_ID.test(jobId)) {
    throw new TypeError(
      `Invalid job id "${String(jobId)}": expected 1 to 63 letters, digits, ".", "_" or "-"`,
    );
  }
}

/**
 * Reads an unknown value as a {@linkcode ChunkTask}; returns the reason it is not one as a string.
 * Brokers use it on every received message, so a malformed message is dead-lettered with its
 * reason instead of crashing a worker.
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

/** Counters that start at zero, for brokers assembling {@linkcode BrokerStats}. */
export const EMPTY_STATS: BrokerStats = Object.freeze({
  ready: 0,
  inFlight: 0,
  delayed: 0,
  deadLettered: 0,
  completed: 0,
  duplicates: 0,
  zombies: 0,
  retried: 0,
  reclaimed: 0,
  consumers: 0,
});

/**
 * Fills {@linkcode BrokerOptions} defaults.
 *
 * @example
 * ```ts
 * import { brokerOptions } from "./contract.ts";
 * const options = brokerOptions({ leaseMs: 2000 });
 * console.assert(options.leaseMs === 2000 && options.retry.maxAttempts === 4);
 * ```
 */
export function brokerOptions(partial: Partial<BrokerOptions> = {}): BrokerOptions {
  const retry = { ...DEFAULT_RETRY, ...partial.retry };
  const options: BrokerOptions = {
    consumerId: partial.consumerId ?? defaultConsumerId(),
    leaseMs: partial.leaseMs ?? DEFAULT_LEASE_MS,
    retry,
    priorityAgingMs: partial.priorityAgingMs ?? DEFAULT_PRIORITY_AGING_MS,
  };
  if (!(options.leaseMs > 0)) throw new RangeError(`Invalid leaseMs "${options.leaseMs}"`);
  if (!(retry.maxAttempts >= 1)) {
    throw new RangeError(`Invalid retry.maxAttempts "${retry.maxAttempts}"`);
  }
  if (!(options.priorityAgingMs > 0)) {
    throw new RangeError(`Invalid priorityAgingMs "${options.priorityAgingMs}"`);
  }
  return options;
}

function defaultConsumerId(): string {
  let host = "local";
  try {
    host = Deno.hostname();
  } catch {
    // no sys permission: keep "local"
  }
  return `${host}-${Deno.pid}`;
}
