/**
 * The broker contract: the one seam between TTG's workers and a message broker.
 *
 * A sweep is split into chunks ({@linkcode ChunkTask}); a coordinator publishes them; workers
 * {@linkcode Broker.pull | pull} deliveries, run a handler and {@linkcode Broker.ack | ack} each
 * with its result (or {@linkcode Broker.nack | nack} it with a reason). Every claim of a chunk
 * carries a lease and a fencing `epoch`; a worker keeps its leases alive with
 * {@linkcode Broker.extend | extend}, and {@linkcode Broker.reclaim | reclaim} hands the chunks
 * of a dead worker to the others. The broker stores one result per (job, chunk): a second result
 * is a counted duplicate, and an ack whose claim was taken over (a "zombie") is rejected in the
 * same atomic step as the store.
 *
 * What happens to a failed, expired or malformed chunk is decided once, in policy.ts; the
 * checks every call makes (closed, job id, options) once, in guard.ts. Each broker folder
 * (sqlite/, redis/, rabbitmq/) only makes those decisions atomic, and one conformance suite
 * (tests/conformance.ts) holds all of them.
 *
 * @module
 */
import type { AttemptRecord, NackKind, RetryPolicy } from "./policy.ts";
import type {
  ControlAction,
  ControlOutcome,
  FleetRegistry,
  JobControl,
  JobSummary,
} from "./registry.ts";
import type { RetentionOutcome } from "./retention.ts";
import type { ChunkResult, DeadLetterStore, ResultPage, ResultsOptions } from "./stored.ts";
import type { ChunkTask, JobRecord } from "./task.ts";

export type { AttemptKind, AttemptRecord, NackKind, RetryPolicy } from "./policy.ts";
export type {
  ControlAction,
  ControlOutcome,
  FleetRegistry,
  JobControl,
  JobState,
  JobSummary,
  RetryingChunk,
  WorkerActivity,
  WorkerRecord,
  WorkerReportInput,
} from "./registry.ts";
export type { ChunkTask, JobRecord } from "./task.ts";
export type { RetentionOutcome } from "./retention.ts";
export type {
  ChunkResult,
  DeadLetter,
  DeadLetterSelector,
  DeadLetterStore,
  ListOptions,
  ResultPage,
  ResultsOptions,
  StoredResult,
} from "./stored.ts";

/** Retention of finished jobs (retention.ts decides what expires when). */
export interface Retention {
  /** The broker-wide default time to live of a finished job, in seconds; null: kept. */
  defaultTtl(): Promise<number | null>;
  /** Sets the broker-wide default (null removes it: jobs without their own are kept). */
  setDefaultTtl(seconds: number | null): Promise<void>;
  /** When each job was first seen finished (ISO 8601), by job id. */
  finished(): Promise<ReadonlyMap<string, string>>;
  /** Marks newly finished jobs and deletes those whose time to live has passed since. */
  apply(now?: number): Promise<RetentionOutcome>;
}

/** A chunk claimed by this consumer, under a lease. */
export interface Delivery {
  /** The claimed chunk. */
  readonly task: ChunkTask;
  /** 1 on the first claim; grows with every failed attempt (a lost lease or a release spends none). */
  readonly attempt: number;
  /** Failed attempts allowed before the chunk is bisected or dead-lettered. */
  readonly maxAttempts: number;
  /** Leases of this chunk lost so far without an answer (its worker died or froze). */
  readonly crashes: number;
  /** Fencing token: strictly grows with every claim of this chunk. */
  readonly epoch: number;
  /** Broker-private handle (row id, stream entry id, delivery tag). */
  readonly receipt: string;
  /** Earlier attempts that ended without a result, oldest first. */
  readonly history: readonly AttemptRecord[];
}

/**
 * Counts of one job on one broker, true at the instant they were read: every chunk of the job
 * is in exactly one of ready, in flight, delayed, completed, dead-lettered or cancelled, so
 * `ready + inFlight + delayed + completed + deadLettered - malformed + cancelled` equals the
 * planned chunks plus `splits` (each bisection replaces one chunk by two).
 */
export interface BrokerStats {
  /** Chunks waiting to be pulled. */
  readonly ready: number;
  /** Chunks under a lease. */
  readonly inFlight: number;
  /** Chunks waiting out a retry backoff. */
  readonly delayed: number;
  /** Dead letters of the job (unreadable messages included). */
  readonly deadLettered: number;
  /** Of the dead letters, messages that could not be read as a chunk (not chunks of the job). */
  readonly malformed: number;
  /** Chunks with a counted result. */
  readonly completed: number;
  /** Parameters of the chunks with a counted result. */
  readonly completedParams: number;
  /** Chunks bisected: each was replaced by its two halves. */
  readonly splits: number;
  /** Chunks of a cancelled job that will not run (they were queued, or given back after it). */
  readonly cancelled: number;
  /** The job's control state. */
  readonly control: JobControl;
  /** Results discarded because the chunk already had one. */
  readonly duplicates: number;
  /** Acks, nacks or extensions of claims that another claim had superseded. */
  readonly zombies: number;
  /** Failed attempts that were scheduled for a retry. */
  readonly retried: number;
  /** Leases taken over after their holder died or froze. */
  readonly reclaimed: number;
  /** Consumers alive now. */
  readonly consumers: number;
  /**
   * How long the oldest ready chunk of each priority band has waited, where the broker can tell
   * without consuming (for starvation alerts); bands with nothing ready are absent.
   */
  readonly oldestReady?: readonly { readonly priority: number; readonly ageMs: number }[];
}

/** Options every broker accepts when opened. */
export interface BrokerOptions {
  /** This consumer's name (unique per process). @default `${hostname}-${pid}` */
  readonly consumerId: string;
  /** How long a claim lasts without extension (three heartbeats). @default 3000 */
  readonly leaseMs: number;
  /** Failure policy of chunks; defaults to {@linkcode DEFAULT_RETRY}. */
  readonly retry: RetryPolicy;
  /** A waiting task gains one priority level per this interval, so low priority is not starved. @default 30000 */
  readonly priorityAgingMs: number;
}

/** Options as given when opening a broker: every field optional, the retry policy field by field. */
export type PartialBrokerOptions =
  & Partial<Omit<BrokerOptions, "retry">>
  & { readonly retry?: Partial<RetryPolicy> };

/**
 * A connection try that failed and will be retried, as a server broker tells its
 * `onConnectRetry` option (a broker never prints; the CLI turns each into one line).
 */
export interface ConnectRetry {
  /** Failed tries so far (1 for the first). */
  readonly attempt: number;
  /** What is being tried, for messages: `RabbitMQ at 127.0.0.1:5672`. */
  readonly target: string;
  /** Why the try failed, e.g. `connection refused`. */
  readonly reason: string;
  /** Wait before the next try. */
  readonly delayMs: number;
}

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
  /** Job to pull from (or `jobIds`). */
  readonly jobId?: string;
  /**
   * Jobs to pull from, instead of `jobId`: a shared fleet's pull. The chunks taken are the
   * highest aged priority first across the jobs, equal priorities shared by the fewest in flight,
   * each job under its `maxInFlight` (share.ts); a broker that cannot see the jobs' heads says
   * what it guarantees instead (README, "Run a fleet").
   */
  readonly jobIds?: readonly string[];
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
 * - `zombie`: the claim was taken over; nothing was stored, and the rejection was counted.
 */
export type AckOutcome = "stored" | "duplicate" | "zombie";

/** A delivery given back, with why; what becomes of it is the policy's (policy.ts `planNack`). */
export interface NackRequest {
  /** Delivery to give back. */
  readonly delivery: Delivery;
  /** Why it is given back. */
  readonly kind: NackKind;
  /** Human-readable reason, kept in the chunk's history. */
  readonly reason: string;
  /** Worker giving the delivery back. */
  readonly workerId: string;
}

/**
 * - `retrying`: scheduled again after a backoff.
 * - `released`: back in the queue at once, with no attempt burned.
 * - `dead_lettered`: moved to the dead letters with its reason and history.
 * - `split`: replaced by its two halves (poison-chunk bisection after its last attempt).
 * - `cancelled`: its job was cancelled: it will not run again (counted as cancelled).
 * - `zombie`: the claim was taken over; nothing changed, and the rejection was counted.
 */
export type NackOutcome =
  | "retrying"
  | "released"
  | "dead_lettered"
  | "split"
  | "cancelled"
  | "zombie";

/**
 * - `extended`: the lease runs for another `leaseMs` (or, with connection-held leases, it is
 *   still held).
 * - `gone`: the chunk was already settled (acked or nacked): nothing to extend, nothing counted.
 * - `zombie`: the lease was taken over by another claim; the holder must drop the chunk.
 * - `cancelled`: the chunk's job was cancelled: the holder stops its handler and gives the chunk
 *   back (it is then counted as cancelled), or acks it if it had finished.
 */
export type ExtendOutcome = "extended" | "gone" | "zombie" | "cancelled";

/** Options of {@linkcode Broker.reclaim}. */
export interface ReclaimOptions {
  /** Job whose expired leases to take over. */
  readonly jobId: string;
  /** Most deliveries to take over in one call. @default 1000 */
  readonly max?: number;
}

/** Optional features a broker declares, like River's `SupportsListener()`. */
export interface BrokerCapabilities {
  /** Pulls return the highest (aged) priority first, strictly. */
  readonly strictPriority: boolean;
  /** Several processes can share it. */
  readonly multiProcess: boolean;
  /**
   * How a lease is held: `extend` — it lapses unless {@linkcode Broker.extend} renews it, and
   * {@linkcode Broker.reclaim} takes over lapsed ones; `connection` — it is the consumer's
   * connection, which the broker itself takes back when it drops (`extend` only confirms that a
   * delivery is still held, and `reclaim` is not implemented).
   */
  readonly leases: "extend" | "connection";
  /**
   * How often, in milliseconds, a fleet worker reads {@linkcode Broker.jobsVersion} to find new
   * jobs: as often as one read is cheap here (a local query, one Redis GET), less often where
   * each read opens a channel (RabbitMQ).
   */
  readonly discoverMs: number;
}

/**
 * The contract every broker implements.
 *
 * Batch calls (`ack`, `nack`, `extend`) take many requests and make one round trip per job (one
 * script, transaction or pipeline), returning one outcome per request, in order. Every method
 * fails with a `BrokerError` of code `CLOSED` once the broker is closed, and with a `TypeError`
 * or `RangeError` naming the value for an invalid job id or option, the same on every broker.
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
  /**
   * Claims up to `max` tasks of a job (or of several, `jobIds`) for this consumer, waiting up to
   * `waitMs` for the first; never more of a job in flight than its record's `maxInFlight`.
   */
  pull(options: PullOptions): Promise<Delivery[]>;
  /** Stores results and acknowledges their deliveries. */
  ack(requests: readonly AckRequest[]): Promise<AckOutcome[]>;
  /** Gives deliveries back: released, retried, bisected or dead-lettered, as the policy says. */
  nack(requests: readonly NackRequest[]): Promise<NackOutcome[]>;
  /** Extends the leases of in-flight deliveries by `options.leaseMs` from now. */
  extend(deliveries: readonly Delivery[]): Promise<ExtendOutcome[]>;
  /**
   * Takes over deliveries whose lease lapsed, so they can be pulled again (or bisected, or
   * dead-lettered, as the policy says); returns how many. Fails with `NOT_IMPLEMENTED` where
   * `capabilities.leases` is `connection`.
   */
  reclaim(options: ReclaimOptions): Promise<number>;
  /** Current counts of a job. */
  stats(jobId: string): Promise<BrokerStats>;
  /**
   * A page of the counted results of a job (results.ts `eachResult` streams them all), so a
   * coordinator holds one page at a time however large the job.
   */
  results(jobId: string, options?: ResultsOptions): Promise<ResultPage>;
  /** Lists, replays and purges dead letters. */
  readonly deadLetters: DeadLetterStore;
  /** The workers of this broker, as they report themselves. */
  readonly fleet: FleetRegistry;
  /** Retention of finished jobs: the broker-wide default time to live, and applying it. */
  readonly retention: Retention;
  /** Every job the broker holds (recorded by `createJob`), with its control state. */
  listJobs(): Promise<JobSummary[]>;
  /**
   * A token that changes whenever a job is recorded, paused, resumed, cancelled or reset, so a
   * fleet worker can look for new jobs every few milliseconds and list them only on a change.
   * It changes after the change itself is stored: a reader that sees a new token lists the
   * change.
   */
  jobsVersion(): Promise<string>;
  /**
   * Pauses, resumes or cancels a job. A paused job's chunks are not handed out (those in flight
   * finish); a cancelled job's queued chunks are cancelled at once, and every chunk given back
   * later is cancelled instead of queued. Cancelling is final; repeating an action is harmless.
   */
  control(jobId: string, action: ControlAction): Promise<ControlOutcome>;
  /** Deletes every trace of a job (tasks, results, dead letters, counters). */
  reset(jobId: string): Promise<void>;
  /** Disconnects. Does not release leases: to the others, a closed consumer looks dead. */
  close(): Promise<void>;
}

/** Counters that start at zero, for brokers assembling {@linkcode BrokerStats}. */
export const EMPTY_STATS: BrokerStats = Object.freeze({
  ready: 0,
  inFlight: 0,
  delayed: 0,
  deadLettered: 0,
  malformed: 0,
  completed: 0,
  completedParams: 0,
  splits: 0,
  cancelled: 0,
  control: "running",
  duplicates: 0,
  zombies: 0,
  retried: 0,
  reclaimed: 0,
  consumers: 0,
});
