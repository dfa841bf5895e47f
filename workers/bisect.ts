/**
 * Poison-chunk bisection: a chunk that exhausted its attempts is replaced by its two halves, so
 * that only the minimal failing parameter ranges end in the dead letters.
 *
 * @module
 */
import type { ChunkTask } from "../brokers/contract.ts";

/**
 * The halves of `task`, or undefined when it must not be split (indivisible, or a half would be
 * smaller than `minSize` parameters).
 *
 * @example
 * ```ts
 * import { bisect } from "./bisect.ts";
 * const task = { jobId: "j", chunkId: "00012", handler: "ttg.sweep", start: 1200, end: 1300,
 *   totalParams: 10000, totalChunks: 100, priority: 0, createdAt: "", args: {}, divisible: true };
 * const halves = bisect(task, 1)!;
 * console.assert(halves[0]!.chunkId === "00012.0" && halves[1]!.start === 1250);
 * ```
 */
export function bisect(task: ChunkTask, minSize: number): ChunkTask[] | undefined {
  const size = task.end - task.start;
  if (!task.divisible || size < 2 * Math.max(1, minSize)) return undefined;
  const middle = task.start + Math.floor(size / 2);
  return [
    { ...task, chunkId: `${task.chunkId}.0`, end: middle },
    { ...task, chunkId: `${task.chunkId}.1`, start: middle },
  ];
}
