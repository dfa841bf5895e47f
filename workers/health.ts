/**
 * A worker's health for `/healthz` and `/readyz`: alive while its heartbeat ticks, ready while
 * its broker answers.
 *
 * @module
 */
import type { Clock } from "./clock.ts";

/** What the worker tells its health, and what the endpoints ask. */
export class WorkerHealth {
  readonly #clock: Clock;
  readonly #staleMs: number;
  #lastBeat: number;
  #brokerOk = true;
  #stopped = false;

  /** Alive while a heartbeat came within `staleMs` (a few heartbeats). */
  constructor(clock: Clock, staleMs: number) {
    this.#clock = clock;
    this.#staleMs = staleMs;
    this.#lastBeat = clock.now();
  }

  /** The worker's loop ticked. */
  beat(): void {
    this.#lastBeat = this.#clock.now();
  }

  /** A broker call answered (`true`) or failed (`false`). */
  brokerAnswered(ok: boolean): void {
    this.#brokerOk = ok;
  }

  /** The worker is shutting down: it takes no more work. */
  stopping(): void {
    this.#stopped = true;
  }

  /** Why the worker is not alive, or undefined. */
  notAlive(): string | undefined {
    const age = this.#clock.now() - this.#lastBeat;
    return age > this.#staleMs ? `no heartbeat for ${Math.round(age)} ms` : undefined;
  }

  /** Why the worker is not ready for work, or undefined. */
  notReady(): string | undefined {
    if (this.#stopped) return "the worker is stopping";
    if (!this.#brokerOk) return "the broker is unreachable";
    return this.notAlive();
  }
}
