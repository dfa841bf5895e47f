/**
 * What one worker has done, counted from the broker's answers (never from hopes): a chunk is
 * `chunks` only when the broker said `stored`.
 *
 * @module
 */
import type { AckOutcome, ExtendOutcome, NackKind, NackOutcome } from "../brokers/broker.ts";

/** Counters of a running worker. */
export interface WorkerCounts {
  /** Chunks whose result this worker stored (counted). */
  readonly chunks: number;
  /** Parameters of those chunks. */
  readonly params: number;
  /** Results discarded because their chunk already had one. */
  readonly duplicates: number;
  /** Acks, nacks or lease extensions rejected because the lease was taken over. */
  readonly zombies: number;
  /** Handler failures (thrown errors and unrecoverable ones), timeouts apart. */
  readonly failures: number;
  /** Chunks that ran past their timeout. */
  readonly timeouts: number;
  /** Failed chunks scheduled for a retry. */
  readonly retried: number;
  /** Chunks this worker dead-lettered. */
  readonly deadLettered: number;
  /** Chunks this worker bisected. */
  readonly split: number;
  /** Chunks given back without burning an attempt (e.g. on shutdown). */
  readonly released: number;
  /** Chunks given back that the broker cancelled (their job was cancelled). */
  readonly cancelled: number;
  /** Expired leases this worker's reclaimer took over. */
  readonly reclaimed: number;
}

/** What a worker tells its counters (and anything else that counts, such as its metrics). */
export interface WorkerEvents {
  /** The broker's answer to one ack of a result covering `params` parameters. */
  ack(outcome: AckOutcome, params: number): void;
  /** How a handler run ended without a result (before the nack is sent). */
  failure(kind: NackKind): void;
  /** The broker's answer to one nack. */
  nack(outcome: NackOutcome): void;
  /** The broker's answer to one lease extension. */
  extend(outcome: ExtendOutcome): void;
  /** Leases this worker's reclaimer took over. */
  reclaimed(count: number): void;
  /** A handler ran for `seconds`. */
  ran(seconds: number): void;
}

/** Mutable counters behind {@linkcode WorkerCounts}; they pass every event on to `also`. */
export class WorkerCounters implements WorkerEvents {
  readonly #also: WorkerEvents | undefined;
  #c: { -readonly [K in keyof WorkerCounts]: number } = {
    chunks: 0,
    params: 0,
    duplicates: 0,
    zombies: 0,
    failures: 0,
    timeouts: 0,
    retried: 0,
    deadLettered: 0,
    split: 0,
    released: 0,
    cancelled: 0,
    reclaimed: 0,
  };

  constructor(also?: WorkerEvents) {
    this.#also = also;
  }

  /** A copy of the counts now. */
  snapshot(): WorkerCounts {
    return { ...this.#c };
  }

  /** The broker's answer to one ack of a result covering `params` parameters. */
  ack(outcome: AckOutcome, params: number): void {
    this.#also?.ack(outcome, params);
    if (outcome === "stored") {
      this.#c.chunks += 1;
      this.#c.params += params;
    } else if (outcome === "duplicate") this.#c.duplicates += 1;
    else this.#c.zombies += 1;
  }

  /** How a handler run ended without a result (before the nack is sent). */
  failure(kind: NackKind): void {
    this.#also?.failure(kind);
    if (kind === "timeout") this.#c.timeouts += 1;
    else if (kind !== "released") this.#c.failures += 1;
  }

  /** The broker's answer to one nack. */
  nack(outcome: NackOutcome): void {
    this.#also?.nack(outcome);
    const key = ({
      retrying: "retried",
      released: "released",
      dead_lettered: "deadLettered",
      split: "split",
      cancelled: "cancelled",
      zombie: "zombies",
    } as const)[outcome];
    this.#c[key] += 1;
  }

  /** The broker's answer to one lease extension. */
  extend(outcome: ExtendOutcome): void {
    this.#also?.extend(outcome);
    if (outcome === "zombie") this.#c.zombies += 1;
  }

  /** Leases this worker's reclaimer took over. */
  reclaimed(count: number): void {
    this.#also?.reclaimed(count);
    this.#c.reclaimed += count;
  }

  /** A handler ran for `seconds` (counted only by `also`). */
  ran(seconds: number): void {
    this.#also?.ran(seconds);
  }
}
