/**
 * The chunks a worker holds, from the pull that claimed them to the broker's answer to their
 * commit: each is queued (waiting for a handler slot), running, or committing (its ack or nack
 * batched or sent). Whoever waits for room or for the last chunk to settle is woken on every
 * change.
 *
 * @module
 */
import type { Delivery } from "../brokers/broker.ts";

/** Where a held chunk stands. */
export type EntryState = "queued" | "running" | "committing";

/** One held chunk. */
export class Entry {
  readonly delivery: Delivery;
  /** Aborts its handler (shutdown, a lost lease). */
  readonly controller = new AbortController();
  state: EntryState = "queued";
  /** Its lease was lost (zombie) or its chunk settled elsewhere (gone): publish nothing. */
  dropped = false;
  /** Its commit is with the broker: a heartbeat must not extend what the commit settles. */
  commitSent = false;
  /** When its handler started, on the worker's clock. */
  startedAt?: number;
  /** Latest `ctx.progress` count of its handler. */
  progress?: number;
  /** When its last PROGRESS line was written, on the worker's clock. */
  progressLoggedAt?: number;

  constructor(delivery: Delivery) {
    this.delivery = delivery;
  }

  /** Parameters of the chunk. */
  get params(): number {
    return this.delivery.task.end - this.delivery.task.start;
  }
}

/** The set of held chunks, with a count of those not yet committing. */
export class InFlight {
  readonly #entries = new Set<Entry>();
  #uncommitted = 0;
  #waiters: (() => void)[] = [];

  /** Chunks held. */
  get size(): number {
    return this.#entries.size;
  }

  /** Chunks queued or running (kept as a count: it is read once per chunk). */
  get uncommitted(): number {
    return this.#uncommitted;
  }

  /** Every held chunk. */
  entries(): IterableIterator<Entry> {
    return this.#entries.values();
  }

  /** Holds a newly pulled delivery. */
  add(delivery: Delivery): Entry {
    const entry = new Entry(delivery);
    this.#entries.add(entry);
    this.#uncommitted += 1;
    this.#changed();
    return entry;
  }

  /** Its handler is done: from now on the chunk is committing (or dropped). */
  finished(entry: Entry): void {
    if (entry.state === "committing") return;
    entry.state = "committing";
    this.#uncommitted -= 1;
    this.#changed();
  }

  /** Lets go of chunks whose commit the broker answered (or that were dropped). */
  settle(entries: Iterable<Entry>): void {
    for (const entry of entries) {
      if (entry.state !== "committing") this.finished(entry);
      this.#entries.delete(entry);
    }
    this.#changed();
  }

  /** Chunks whose lease a heartbeat should renew: held, not dropped, no commit with the broker. */
  renewable(): Entry[] {
    return [...this.#entries].filter((e) => !e.dropped && !e.commitSent);
  }

  /** Resolves on the next change (or at once when `signal` aborts). */
  changed(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        signal?.removeEventListener("abort", done);
        this.#waiters = this.#waiters.filter((w) => w !== done);
        resolve();
      };
      this.#waiters.push(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  #changed(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
