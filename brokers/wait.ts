/**
 * The one pause of polling loops, and a bounded wait: brokers waiting for work, the monitor between snapshots, a
 * process pool backing off. It ends early, without an error, when the signal aborts, so a loop
 * that is told to stop looks at its signal at once instead of sleeping out its interval.
 *
 * @module
 */

/**
 * Resolves after `ms`, or as soon as `signal` aborts (at once if it already has).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { waitOrAbort } from "./wait.ts";
 * const stop = new AbortController();
 * const t0 = Date.now();
 * setTimeout(() => stop.abort(), 10);
 * await waitOrAbort(60_000, stop.signal);
 * assert.ok(Date.now() - t0 < 5_000);
 * ```
 */
export function waitOrAbort(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Waits for `work`, at most `ms` (what is left of it runs on, unawaited).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { within } from "./wait.ts";
 * const t0 = Date.now();
 * await within(10, new Promise(() => {}));
 * assert.ok(Date.now() - t0 < 5_000);
 * ```
 */
export async function within(ms: number, work: Promise<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([work, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
