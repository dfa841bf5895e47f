/**
 * A small background service that runs one task on an interval (heartbeat, reclaimer). Start and
 * stop are idempotent; a tick never overlaps the previous one; a failing tick is reported and the
 * service goes on.
 *
 * @module
 */
import { type Clock, systemClock } from "./clock.ts";

/** Options of {@linkcode PeriodicService}. */
export interface PeriodicServiceOptions {
  /** Name for error reports. */
  readonly name: string;
  /** Pause between the end of one tick and the start of the next. */
  readonly intervalMs: number;
  /** The work of one tick. */
  readonly tick: (signal: AbortSignal) => Promise<void>;
  /** Called with a tick's error. */
  readonly onError?: (error: unknown) => void;
  /** Time source. @default systemClock */
  readonly clock?: Clock;
}

/**
 * Runs `tick` every `intervalMs` until stopped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PeriodicService } from "./periodic.ts";
 * let ticks = 0;
 * const service = new PeriodicService({ name: "demo", intervalMs: 10, tick: async () => { ticks++; } });
 * service.start();
 * await new Promise((r) => setTimeout(r, 50));
 * await service.stop();
 * assert.ok(ticks >= 1);
 * ```
 */
export class PeriodicService implements AsyncDisposable {
  readonly #options: PeriodicServiceOptions;
  #controller: AbortController | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: PeriodicServiceOptions) {
    if (!(options.intervalMs > 0)) {
      throw new RangeError(
        `Invalid intervalMs "${options.intervalMs}" of service "${options.name}"`,
      );
    }
    this.#options = options;
  }

  /** Starts the loop; a second call does nothing. */
  start(signal?: AbortSignal): void {
    if (this.#loop) return;
    const controller = new AbortController();
    this.#controller = controller;
    signal?.addEventListener("abort", () => controller.abort(), { once: true });
    this.#loop = this.#run(controller.signal);
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await (this.#options.clock ?? systemClock).sleep(this.#options.intervalMs, signal);
      if (signal.aborted) break;
      try {
        await this.#options.tick(signal);
      } catch (error) {
        this.#options.onError?.(error);
      }
    }
  }

  /** Stops the loop and waits for a running tick to end; safe before start and twice. */
  async stop(): Promise<void> {
    this.#controller?.abort();
    await this.#loop;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function wait(ms: number, signal?: AbortSignal): Promise<void> {
  return systemClock.sleep(ms, signal);
}
