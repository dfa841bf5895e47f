/**
 * The zombie count of the RabbitMQ broker: a superseded holder learns that its ack, nack or
 * extend came too late exactly when RabbitMQ may be out of reach (its connection dropped, which is
 * what superseded it). Each count is one counter event with its own id, kept here and published
 * again until RabbitMQ confirms it; counters.ts counts an id once, so a publish whose confirm was
 * lost and is sent again is not counted twice.
 *
 * @module
 */
import type { Session } from "./connection.ts";
import { addCounters, type CounterEvent } from "./counters.ts";
import type { JobNames } from "./topology.ts";
import { within } from "../wait.ts";

/** How long a count that RabbitMQ did not take waits before it is sent again. */
const RETRY_MS = 1000;

/** Zombie counts on their way to the jobs' counters. */
export class ZombieCounts {
  readonly #session: () => Promise<Session>;
  readonly #pending: { names: JobNames; event: CounterEvent }[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #flushing: Promise<void> | undefined;
  #closed = false;

  /** Counts through sessions of `session()`. */
  constructor(session: () => Promise<Session>) {
    this.#session = session;
  }

  /** Counts `n` zombies of the job: at once when RabbitMQ takes it, else as soon as it can. */
  async add(names: JobNames, n: number): Promise<void> {
    if (n <= 0) return;
    this.#pending.push({ names, event: { id: crypto.randomUUID(), zombies: n } });
    await this.flush();
  }

  /** Counts not yet confirmed. */
  get pending(): number {
    return this.#pending.reduce((sum, p) => sum + (p.event.zombies ?? 0), 0);
  }

  /** Sends every pending count; what fails is sent again later. */
  flush(): Promise<void> {
    this.#flushing ??= this.#send().finally(() => (this.#flushing = undefined));
    return this.#flushing;
  }

  /** Sends what it can within `waitMs` and stops retrying (a count still pending is lost). */
  async close(waitMs = 1000): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await within(waitMs, this.flush());
  }

  async #send(): Promise<void> {
    while (this.#pending.length > 0) {
      const { names, event } = this.#pending[0]!;
      try {
        await addCounters(await this.#session(), names, event);
      } catch {
        if (!this.#closed && this.#timer === undefined) {
          this.#timer = setTimeout(() => {
            this.#timer = undefined;
            void this.flush();
          }, RETRY_MS);
        }
        return;
      }
      this.#pending.shift();
    }
  }
}
