/**
 * Peak resident memory and peak V8 heap of this process, for reports and benchmarks.
 *
 * @module
 */

/** Peak RSS in bytes (Linux VmHWM), or the current RSS where /proc is not readable. */
export function peakRssBytes(): number {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const match = status.match(/^VmHWM:\s+(\d+)\s+kB/m);
    if (match) return Number(match[1]) * 1024;
  } catch {
    // not Linux, or no read permission
  }
  return Deno.memoryUsage().rss;
}

/**
 * The largest V8 heap (committed bytes, `Deno.memoryUsage().heapTotal`) seen by
 * {@linkcode HeapPeak.sample}: a worker samples it on every heartbeat and once at exit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HeapPeak } from "./memory.ts";
 * const peak = new HeapPeak();
 * peak.sample();
 * assert.ok(peak.bytes > 0);
 * ```
 */
export class HeapPeak {
  #bytes = 0;

  /** The largest committed heap sampled so far, in bytes (0 before the first sample). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Reads the heap's committed size now and keeps it if it is the largest yet. */
  sample(): void {
    this.#bytes = Math.max(this.#bytes, Deno.memoryUsage().heapTotal);
  }
}
