/**
 * Batches a worker's acks and nacks into few broker calls: a batch goes out when it is full,
 * when no held chunk is left to join it, or a few milliseconds after its first commit. One
 * flush at a time; acks and nacks go side by side, each retried on its own with backoff while
 * the broker is unavailable, so none is sent twice.
 *
 * @module
 */
import type {
  AckOutcome,
  AckRequest,
  Broker,
  NackOutcome,
  NackRequest,
} from "../brokers/broker.ts";
import { reconnectDelayMs } from "../brokers/policy.ts";
import { BrokerError, errorMessage } from "../errors.ts";
import type { Logger } from "../jobs/define_job.ts";
import type { Clock } from "./clock.ts";
import type { Entry } from "./in_flight.ts";

/** One chunk's commit: its result to store, or its failure to report. */
export type Commit =
  | { readonly kind: "ack"; readonly entry: Entry; readonly request: AckRequest }
  | { readonly kind: "nack"; readonly entry: Entry; readonly request: NackRequest };

/** Options of {@linkcode CommitBatcher}. */
export interface CommitBatcherOptions {
  readonly broker: Broker;
  /** Most commits of one kind per broker call. */
  readonly batch: number;
  readonly clock: Clock;
  readonly log: Logger;
  /** How long a partial batch waits for more commits. @default 5 */
  readonly lingerMs?: number;
  /** True when no held chunk could still join the batch (send it now). */
  readonly nothingPending: () => boolean;
  /** The broker's answers, in the order of the commits. */
  readonly onAcked: (commits: readonly Commit[], outcomes: readonly AckOutcome[]) => void;
  readonly onNacked: (commits: readonly Commit[], outcomes: readonly NackOutcome[]) => void;
  /** The commits are done with (answered, or given up on): their chunks can be let go. */
  readonly onSettled: (commits: readonly Commit[]) => void;
}

/** Attempts of one call once the worker is stopping (before that: until it succeeds). */
const ATTEMPTS_WHEN_STOPPING = 5;

/** The worker's outgoing acks and nacks. */
export class CommitBatcher {
  readonly #o: CommitBatcherOptions;
  #queued: Commit[] = [];
  #flushing: Promise<void> | undefined;
  #cancelTimer: (() => void) | undefined;
  #stopping = false;

  constructor(options: CommitBatcherOptions) {
    if (!(options.batch >= 1)) throw new RangeError(`Invalid batch "${options.batch}"`);
    this.#o = options;
  }

  /** Commits waiting to be sent. */
  get queued(): number {
    return this.#queued.length;
  }

  /** From now on a failing call is given up after a few attempts (its leases will lapse). */
  stopping(): void {
    this.#stopping = true;
  }

  /** Queues one commit; sends the batch when it is full or nothing else can join it. */
  add(commit: Commit): void {
    this.#queued.push(commit);
    if (this.#queued.length >= this.#o.batch || this.#o.nothingPending()) void this.flush();
    else {
      this.#cancelTimer ??= this.#o.clock.timer(() => {
        this.#cancelTimer = undefined;
        void this.flush();
      }, this.#o.lingerMs ?? 5);
    }
  }

  /** Sends everything queued; resolves once it is answered (or given up on). */
  flush(): Promise<void> {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    if (this.#flushing) {
      return this.#flushing.then(() => (this.#queued.length ? this.flush() : undefined));
    }
    if (this.#queued.length === 0) return Promise.resolve();
    const commits = this.#queued;
    this.#queued = [];
    this.#flushing = this.#send(commits).finally(() => {
      this.#flushing = undefined;
      if (this.#queued.length) void this.flush();
    });
    return this.#flushing;
  }

  async #send(commits: Commit[]): Promise<void> {
    const acks = commits.filter((c): c is Extract<Commit, { kind: "ack" }> => c.kind === "ack");
    const nacks = commits.filter((c): c is Extract<Commit, { kind: "nack" }> => c.kind === "nack");
    const { broker } = this.#o;
    await Promise.all([
      acks.length > 0 &&
      this.#call(acks, () => broker.ack(acks.map((c) => c.request)), this.#o.onAcked),
      nacks.length > 0 &&
      this.#call(nacks, () => broker.nack(nacks.map((c) => c.request)), this.#o.onNacked),
    ]);
  }

  /** One broker call, retried while the broker fails (a few times only once stopping). */
  async #call<T>(
    commits: readonly Commit[],
    call: () => Promise<T[]>,
    answered: (commits: readonly Commit[], outcomes: readonly T[]) => void,
  ): Promise<void> {
    for (let attempt = 1;; attempt++) {
      for (const c of commits) c.entry.commitSent = true;
      try {
        answered(commits, await call());
        break;
      } catch (error) {
        for (const c of commits) c.entry.commitSent = false; // held again: heartbeats renew it
        // Only a broker's own failure can pass by retrying; anything else would repeat forever.
        const retryable = error instanceof BrokerError && error.code !== "CLOSED";
        if (!retryable || (this.#stopping && attempt >= ATTEMPTS_WHEN_STOPPING)) {
          this.#o.log.error(
            "Could not commit results; their leases will expire and others will redo them",
            { error: errorMessage(error), chunks: commits.length },
          );
          break;
        }
        this.#o.log.warn("Commit failed; retrying", { error: errorMessage(error), attempt });
        await this.#o.clock.sleep(reconnectDelayMs(attempt, { baseMs: 100, maxMs: 5000 }));
      }
    }
    this.#o.onSettled(commits);
  }
}
