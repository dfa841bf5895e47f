/**
 * What the failure policy (policy.ts) decides and records: the plans a broker applies in one
 * atomic step (requeue, split, dead-letter, cancel), a chunk's attempt history, the fields of a
 * dead letter, and the reasons recorded for lost leases.
 *
 * @module
 */
import type { ChunkTask } from "./task.ts";

/** How an attempt of a chunk ended, as kept in its history. */
export type AttemptKind =
  | "failed"
  | "timeout"
  | "unrecoverable"
  | "released"
  | "malformed"
  | "expired";

/** One attempt of a chunk that ended without a result, kept in its history and dead letter. */
export interface AttemptRecord {
  /** Attempt number this record describes (1-based; a lost lease keeps its attempt's number). */
  readonly attempt: number;
  /**
   * How the attempt ended: a nack kind, `malformed` (the message could not be read as a chunk)
   * or `expired` (the lease was lost without an answer).
   */
  readonly kind: AttemptKind;
  /** Why the attempt failed, e.g. the handler's error message. */
  readonly reason: string;
  /** Consumer that recorded the failure (for a lost lease: the one that held it). */
  readonly workerId: string;
  /** ISO 8601 time of the failure. */
  readonly at: string;
}

/** Where a chunk stands when a plan is made: what its last claim carried. */
export interface ChunkState {
  /** The chunk. */
  readonly task: ChunkTask;
  /** Attempt number of the claim the plan is about (1-based). */
  readonly attempt: number;
  /** Leases lost so far, before this plan. */
  readonly crashes: number;
  /** Earlier records, oldest first. */
  readonly history: readonly AttemptRecord[];
}

/** Why a delivery is given back. `released` puts it back at once without burning an attempt. */
export type NackKind = "failed" | "timeout" | "unrecoverable" | "released";

/** What a nack says. */
export interface NackReason {
  /** How the attempt ended. */
  readonly kind: NackKind;
  /** The handler's error message, or why the chunk is given back. */
  readonly reason: string;
  /** Worker that ran the attempt. */
  readonly workerId: string;
}

/** What a dead letter records beside its chunk (or raw message). */
export interface LetterFields {
  /** How the last attempt ended. */
  readonly kind: AttemptKind;
  /** Why the chunk was dead-lettered. */
  readonly reason: string;
  /** Attempts made (0 for an unreadable message). */
  readonly attempts: number;
  /** Every record, the final one last. */
  readonly history: readonly AttemptRecord[];
  /** ISO 8601 time of dead-lettering. */
  readonly at: string;
}

/** Replace the chunk by its halves, in the same atomic step in which it leaves the queue. */
export interface SplitPlan {
  readonly action: "split";
  /** The halves; each starts with fresh budgets. */
  readonly parts: readonly ChunkTask[];
  /** The parent's history with the record that caused the split. */
  readonly history: readonly AttemptRecord[];
}

/** Move the chunk to the dead letters. */
export interface DeadPlan {
  readonly action: "dead";
  readonly letter: LetterFields;
}

/** The chunk's job was cancelled: the chunk leaves the queue and is counted as cancelled. */
export interface CancelPlan {
  readonly action: "cancel";
}

/** What becomes of a chunk its worker gave back. */
export type NackPlan =
  | { readonly action: "release" }
  | CancelPlan
  | {
    readonly action: "retry";
    /** Backoff before the chunk is claimable again. */
    readonly delayMs: number;
    /** Attempt number of the next claim. */
    readonly attempt: number;
    readonly history: readonly AttemptRecord[];
  }
  | SplitPlan
  | DeadPlan;

/** What becomes of a chunk whose lease was lost. */
export type ExpiryPlan =
  | CancelPlan
  | {
    readonly action: "requeue";
    /** Attempt number of the next claim: the same (a crash spends no attempt). */
    readonly attempt: number;
    /** Leases lost, this one included. */
    readonly crashes: number;
    readonly history: readonly AttemptRecord[];
  }
  | SplitPlan
  | DeadPlan;

/** Reasons recorded for lost leases, in one place. */
export const REASONS = {
  /** A lease that was not renewed in time. */
  leaseExpired: (leaseMs: number) => `Lease expired: no heartbeat for ${leaseMs} ms`,
  /** A consumer whose connection went away while it held the chunk. */
  disconnected: (consumer: string) => `Consumer "${consumer}" disconnected`,
  /** A SQLite consumer whose process ended while it held the chunk (its lock was let go). */
  processEnded: (consumer: string) => `Consumer "${consumer}" ended: its process is gone`,
  /** A delivery RabbitMQ gave back because its consumer's connection closed. */
  connectionClosed:
    "Its consumer's connection closed while it held the chunk (the worker died or froze)",
  /** Appended to the final record when the crash budget is spent. */
  crashBudget: (crashes: number) => `${crashes} leases lost in all`,
} as const;
