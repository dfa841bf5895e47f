/**
 * The transition gate of one job in one broker instance. Every step that moves a chunk this
 * instance holds somewhere other than to the results (a retry, release, split, recovery or
 * dead-letter copy, then the ack) runs inside the gate. A census (stats.ts) pauses the gate of every consumer of the job: it
 * waits until the steps under way are done, answers what it holds, and starts no new step until
 * the reader has read the other queues and released it, so a reader never sees a chunk both in
 * flight and where it went, nor in neither (see stats.ts).
 *
 * @module
 */

/** A pause that its reader never released ends by itself after this long. */
export const PAUSE_MAX_MS = 3000;

/** Counts the steps under way and holds new ones while paused. */
export class TransitionGate {
  #active = 0;
  readonly #pauses = new Map<string, ReturnType<typeof setTimeout>>();
  #resumed: (() => void)[] = [];
  #drained: (() => void)[] = [];

  /** Runs one step: waits while paused, then counts it as under way until it settles. */
  async run<T>(step: () => Promise<T>): Promise<T> {
    while (this.#pauses.size > 0) {
      await new Promise<void>((resolve) => this.#resumed.push(resolve));
    }
    this.#active += 1;
    try {
      return await step();
    } finally {
      this.#active -= 1;
      if (this.#active === 0) { for (const fn of this.#drained.splice(0)) fn(); }
    }
  }

  /** Holds new steps until {@linkcode resume}(`id`) or `PAUSE_MAX_MS`; resolves once none is under way. */
  pause(id: string): Promise<void> {
    if (!this.#pauses.has(id)) {
      this.#pauses.set(id, setTimeout(() => this.resume(id), PAUSE_MAX_MS));
    }
    if (this.#active === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  /** Ends the pause `id`; steps go on once no pause is left. */
  resume(id: string): void {
    const timer = this.#pauses.get(id);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#pauses.delete(id);
    if (this.#pauses.size === 0) { for (const fn of this.#resumed.splice(0)) fn(); }
  }

  /** Ends every pause (the session died, or the broker closes). */
  resumeAll(): void {
    for (const id of [...this.#pauses.keys()]) this.resume(id);
  }
}
