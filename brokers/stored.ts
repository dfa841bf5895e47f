/**
 * What a broker keeps of a chunk that ended: its counted result, or its dead letter with the
 * reason and every attempt, and how a reader asks for them (a page of results, a selection of
 * dead letters). Part of the contract (broker.ts re-exports every type).
 *
 * @module
 */
import type { AttemptRecord } from "./policy.ts";
import type { ChunkTask } from "./task.ts";

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
  /** Attempt number of the run that computed it (absent in results of the predecessor's). */
  readonly attempt?: number;
}

/** A result as stored by the broker: the first one counted for its chunk. */
export interface StoredResult extends ChunkResult {
  /** Chunk the result belongs to. */
  readonly chunkId: string;
}

/** Options of {@linkcode Broker.results}: a page of a job's counted results. */
export interface ResultsOptions {
  /** Where the previous page ended ({@linkcode ResultPage.cursor}); the first page without it. */
  readonly cursor?: string;
  /** Most results in the page. @default 1000 */
  readonly limit?: number;
}

/**
 * One page of counted results. Pages come in the broker's own order (SQLite: chunk order; Redis
 * and RabbitMQ: the order the results were stored); `cursor` is null after the last page.
 */
export interface ResultPage {
  /** The results of this page, in the broker's order. */
  readonly results: readonly StoredResult[];
  /** Where the next page starts; null after the last page. */
  readonly cursor: string | null;
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
  /** Every attempt that ended without a result, oldest first, the final one last. */
  readonly history: readonly AttemptRecord[];
  /** ISO 8601 time of dead-lettering. */
  readonly at: string;
}

/** Selects dead letters for replay or purge; without `ids`, all of the job's. */
export interface DeadLetterSelector {
  /** Job the dead letters belong to. */
  readonly jobId: string;
  /** Dead letter ids ({@linkcode DeadLetter.id}) to select; all of the job's when omitted. */
  readonly ids?: readonly string[];
}

/** Options of {@linkcode DeadLetterStore.list}. */
export interface ListOptions {
  /** Most dead letters to return. @default all */
  readonly limit?: number;
}

/** The dead-letter operations of a broker. */
export interface DeadLetterStore {
  /** The job's dead letters, oldest first, at most `options.limit` of them. */
  list(jobId: string, options?: ListOptions): Promise<DeadLetter[]>;
  /** Puts dead letters back in the queue with fresh attempts; returns how many. */
  replay(selector: DeadLetterSelector): Promise<number>;
  /** Deletes dead letters; returns how many. */
  purge(selector: DeadLetterSelector): Promise<number>;
}
