/**
 * Handler slots: at most `size` chunks run at once; the rest wait their turn, the highest
 * priority first and in arrival order within a priority (so a fleet worker holding a window of
 * a low job's chunks starts an urgent job's chunk at the next free slot).
 *
 * @module
 */

/** A counting semaphore whose waiters are served by priority, then in order. */
export class Slots {
  readonly #size: number;
  #used = 0;
  /** Waiters, highest priority first, in order within a priority. */
  #waiting: { priority: number; resolve: () => void }[] = [];

  constructor(size: number) {
    if (!(Number.isInteger(size) && size >= 1)) throw new RangeError(`Invalid size "${size}"`);
    this.#size = size;
  }

  /** Slots taken now. */
  get used(): number {
    return this.#used;
  }

  /** Resolves once a slot is free, and takes it. */
  acquire(priority = 0): Promise<void> {
    if (this.#used < this.#size) {
      this.#used += 1;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      let i = this.#waiting.length;
      while (i > 0 && this.#waiting[i - 1]!.priority < priority) i--;
      this.#waiting.splice(i, 0, { priority, resolve });
    });
  }

  /** Gives a slot back (to the best waiter, if any). */
  release(): void {
    const next = this.#waiting.shift();
    if (next) next.resolve();
    else this.#used -= 1;
  }
}
