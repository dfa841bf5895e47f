/**
 * What a broker module implements ({@linkcode BrokerDriver}): each step made atomic on its own
 * store, with the arguments already checked and the failure policy's plans already made by the
 * guard (guard.ts), which turns a driver into the {@linkcode Broker} the rest of TTG sees.
 *
 * @module
 */
import type {
  AckOutcome,
  AckRequest,
  BrokerCapabilities,
  BrokerOptions,
  BrokerStats,
  DeadLetter,
  Delivery,
  ExtendOutcome,
  NackOutcome,
  ResultPage,
} from "./broker.ts";
import type { NackPlan } from "./policy.ts";
import type { DriverKv } from "./registry.ts";
import type { JobHead } from "./share.ts";
import type { ChunkTask, JobRecord } from "./task.ts";

/** A nack with the policy's plan for it. */
export interface PlannedNack {
  /** The delivery given back. */
  readonly delivery: Delivery;
  /** What becomes of it. */
  readonly plan: NackPlan;
}

/** A pull with its options checked and defaults filled. */
export interface PullRequest {
  readonly jobId: string;
  readonly max: number;
  readonly waitMs: number;
  /** Aborts when the caller's signal aborts or the broker closes. */
  readonly signal: AbortSignal;
}

/** A pull across jobs with its options checked and defaults filled. */
export interface PullAcrossRequest {
  readonly jobIds: readonly string[];
  readonly max: number;
  readonly waitMs: number;
  readonly signal: AbortSignal;
}

/**
 * What a broker module implements: each method is one atomic step (or one wait) on one job, with
 * arguments already checked; it knows nothing of closing, validation or the failure policy's
 * choices beyond applying them.
 */
export interface BrokerDriver {
  /** `sqlite`, `redis` or `rabbitmq`. */
  readonly backend: string;
  /** Name in messages: `SQLite`, `Redis`, `RabbitMQ`. */
  readonly displayName: string;
  readonly options: BrokerOptions;
  readonly capabilities: BrokerCapabilities;
  /** The form of this broker's dead-letter ids, so a typo is refused rather than matching none. */
  readonly deadLetterIds: { readonly form: RegExp; readonly example: string };
  /** The job index, job controls and fleet registry (registry.ts decides what they mean). */
  readonly kv: DriverKv;
  /**
   * Cancels the job's queued chunks (ready, or waiting out a retry) in one step, counting them
   * as cancelled; the job's control is already `cancelled`. Returns how many.
   */
  cancelQueued(jobId: string): Promise<number>;
  createJob(job: JobRecord): Promise<boolean>;
  getJob(jobId: string): Promise<JobRecord | null>;
  /** Enqueues tasks of one job. */
  publish(jobId: string, tasks: readonly ChunkTask[]): Promise<void>;
  /**
   * Claims up to `max` tasks, waiting up to `waitMs` for the first; [] once `signal` aborts;
   * never more of the job in flight than its record's `maxInFlight`.
   */
  pull(request: PullRequest): Promise<Delivery[]>;
  /**
   * Each job's head now (best aged priority ready, ready count up to `max`, in flight, cap), for
   * a pull across jobs shared by the policy (share.ts). A driver that cannot tell gives
   * `pullAcross` instead.
   */
  heads?(jobIds: readonly string[], max: number): Promise<JobHead[]>;
  /** A pull across jobs in the broker's own order (where it cannot tell the jobs' heads). */
  pullAcross?(request: PullAcrossRequest): Promise<Delivery[]>;
  ack(jobId: string, requests: readonly AckRequest[]): Promise<AckOutcome[]>;
  /** Applies each plan if its delivery's claim is still current (else `zombie`). */
  nack(jobId: string, requests: readonly PlannedNack[]): Promise<NackOutcome[]>;
  extend(jobId: string, deliveries: readonly Delivery[]): Promise<ExtendOutcome[]>;
  /** Present when `capabilities.leases` is `extend`. */
  reclaim?(jobId: string, max: number): Promise<number>;
  stats(jobId: string): Promise<BrokerStats>;
  /** A page of results after `cursor` (null: the first page). */
  results(jobId: string, cursor: string | null, limit: number): Promise<ResultPage>;
  listDeadLetters(jobId: string, limit: number | undefined): Promise<DeadLetter[]>;
  replayDeadLetters(jobId: string, ids: readonly string[] | undefined): Promise<number>;
  purgeDeadLetters(jobId: string, ids: readonly string[] | undefined): Promise<number>;
  reset(jobId: string): Promise<void>;
  close(): Promise<void>;
  /**
   * The one place this broker's native errors become {@linkcode BrokerError}s: `action`
   * completes "Cannot …". Returns the error to throw (a bug's native error may pass unchanged).
   */
  translate(error: unknown, action: string): unknown;
}
