/**
 * How a worker process's V8 heap is sized. V8 sizes its heap from the machine's physical memory,
 * not from a container's limit: on a host with gigabytes free it lets the young generation grow
 * to 16 MB semi-spaces and the old generation grow up to four times its live size between two
 * collections, so a worker whose live heap stays near 10 MB commits over 100 MB after a long run,
 * and does not give it back. These flags keep the young generation at 1 MB semi-spaces and the
 * old generation within half its live size of the last collection: not a cap (a handler that
 * needs a large heap still gets it), only earlier collections.
 *
 * `ttg run` gives them to the worker processes it starts and the generated worker pods set them,
 * both through `DENO_V8_FLAGS` (read by `deno run` and by the compiled binary alike). The
 * coordinator gets them too, from `deno task demo` and `deno task ttg` and baked into the compiled
 * binary: its report folds a million results a page at a time, and the same early collections
 * keep it near its live size.
 *
 * @module
 */

/** The V8 flags of a worker process. */
export const WORKER_V8_FLAGS: readonly string[] = Object.freeze([
  "--max-semi-space-size=1",
  "--heap-growing-percent=50",
]);

/**
 * `DENO_V8_FLAGS` for a worker process: {@linkcode WORKER_V8_FLAGS}, then the flags already set
 * (`current`), so that a flag given by the user wins (V8 keeps the last value of a flag).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { workerV8Flags } from "./v8_flags.ts";
 * assert.equal(workerV8Flags(undefined), "--max-semi-space-size=1,--heap-growing-percent=50");
 * assert.equal(
 *   workerV8Flags("--max-semi-space-size=4"),
 *   "--max-semi-space-size=1,--heap-growing-percent=50,--max-semi-space-size=4",
 * );
 * ```
 */
export function workerV8Flags(current: string | undefined): string {
  return [...WORKER_V8_FLAGS, ...(current ? [current] : [])].join(",");
}
