/**
 * Durations as users write them: `90s`, `15m`, `12h`, `7d`, or a number of seconds.
 *
 * @module
 */

const UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400 };

/**
 * Seconds of a duration (`7d`, `12h`, `15m`, `90s`, `3600`), or undefined when it is not one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDuration } from "./duration.ts";
 * assert.equal(parseDuration("7d"), 604_800);
 * assert.equal(parseDuration("90"), 90);
 * assert.equal(parseDuration("soon"), undefined);
 * ```
 */
export function parseDuration(raw: string): number | undefined {
  const match = raw.trim().match(/^(\d+(?:\.\d+)?)\s*([smhd]?)$/i);
  if (!match) return undefined;
  const seconds = Number(match[1]) * UNITS[(match[2] || "s").toLowerCase()]!;
  return Number.isFinite(seconds) ? Math.round(seconds) : undefined;
}

/** A number of seconds the way {@linkcode parseDuration} reads it back: `7d`, `36h`, `90s`. */
export function formatTtl(seconds: number): string {
  for (const [unit, size] of [["d", 86_400], ["h", 3600], ["m", 60]] as const) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}
