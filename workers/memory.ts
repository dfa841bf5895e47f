/**
 * Peak resident memory of this process, for reports and benchmarks.
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
