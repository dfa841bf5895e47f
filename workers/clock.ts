/**
 * Time for the worker's loops, injectable: {@linkcode systemClock} in production, a
 * {@linkcode ManualClock} in unit tests of backoff, batching and idle timeouts, which then need
 * no real sleeps.
 *
 * @module
 */

/** The time source and timers a loop uses. */
export interface Clock {
  /** Milliseconds on a clock that never goes back (comparisons and intervals only). */
  now(): number;
  /** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Calls `fn` once after `ms`; returns a function that cancels it. */
  timer(fn: () => void, ms: number): () => void;
  /**
   * Resolves after one turn of the event loop, once timers and I/O callbacks that are due (and
   * the engine's own tasks: incremental marking, freeing memory) have had their turn: for a
   * loop whose awaits all resolve without I/O (a broker answering synchronously), which would
   * otherwise keep every timer waiting until it stops.
   */
  turn(): Promise<void>;
}

/** The real clock: `performance.now()` and `setTimeout`. */
export const systemClock: Clock = Object.freeze({
  now: () => performance.now(),
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(handle);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const handle = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener("abort", done, { once: true });
    });
  },
  timer(fn: () => void, ms: number): () => void {
    const handle = setTimeout(fn, Math.max(0, ms));
    return () => clearTimeout(handle);
  },
  // Not setTimeout(0): a timer set from a timer's callback waits at least 4 ms.
  turn: () => new Promise<void>((resolve) => setImmediate(resolve)),
});

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

/**
 * A clock that moves only when told to: `advance(ms)` runs every timer and sleep that falls due,
 * in order, letting promise callbacks run between them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ManualClock } from "./clock.ts";
 * const clock = new ManualClock();
 * let woke = false;
 * clock.sleep(1000).then(() => woke = true);
 * await clock.advance(999);
 * assert.equal(woke, false);
 * await clock.advance(1);
 * assert.equal(woke, true);
 * ```
 */
export class ManualClock implements Clock {
  #now = 0;
  #seq = 0;
  #pending: Pending[] = [];

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const cancel = this.timer(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        cancel();
        resolve();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  timer(fn: () => void, ms: number): () => void {
    const entry = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn };
    this.#pending.push(entry);
    return () => {
      this.#pending = this.#pending.filter((p) => p !== entry);
    };
  }

  /** Lets queued promise callbacks run (no time passes). */
  turn(): Promise<void> {
    return settle();
  }

  /** Timers not yet run. */
  get pendingTimers(): number {
    return this.#pending.length;
  }

  /** Moves time forward by `ms`, running what falls due in order. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      await settle();
      const due = this.#pending.filter((p) => p.at <= target)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.#pending = this.#pending.filter((p) => p !== due);
      this.#now = due.at;
      due.fn();
    }
    this.#now = target;
    await settle();
  }
}

/** Lets queued promise callbacks (and what they queue in turn) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}
