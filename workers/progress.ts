/**
 * Progress of a running job: a live bar on a terminal, plain lines otherwise.
 *
 * @module
 */

/** One progress sample. */
export interface ProgressSample {
  readonly done: number;
  readonly total: number;
  readonly retries: number;
  readonly deadLettered: number;
  readonly elapsedMs: number;
}

/** Formats seconds as `1m05s` or `4.2s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const m = Math.floor(seconds / 60);
  return `${m}m${String(Math.round(seconds - m * 60)).padStart(2, "0")}s`;
}

/**
 * One line of progress.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { progressLine } from "./progress.ts";
 * const line = progressLine({ done: 50, total: 100, retries: 1, deadLettered: 0, elapsedMs: 2000 }, 10);
 * assert.ok(line.startsWith("[#####-----] 50/100 chunks"));
 * ```
 */
export function progressLine(sample: ProgressSample, width = 30): string {
  const fraction = sample.total > 0 ? Math.min(1, sample.done / sample.total) : 0;
  const filled = Math.round(fraction * width);
  const rate = sample.elapsedMs > 0 ? sample.done / (sample.elapsedMs / 1000) : 0;
  const eta = rate > 0 ? (sample.total - sample.done) / rate : Infinity;
  return `[${"#".repeat(filled)}${
    "-".repeat(width - filled)
  }] ${sample.done}/${sample.total} chunks ` +
    `${(fraction * 100).toFixed(0)}% | ${rate.toFixed(1)} chunks/s | ETA ${
      formatDuration(eta)
    } | ` +
    `retries ${sample.retries} | dead letters ${sample.deadLettered}`;
}

/**
 * How often plain progress lines come, at most: `ttg run` off a terminal, and a worker's own
 * PROGRESS line (progress_log.ts), so a lone `ttg worker` reports on the same schedule, a few
 * seconds apart (a log read by people, and kept by Kubernetes, not a line per chunk).
 */
export const PLAIN_PROGRESS_MS = 3000;

/** Writes progress to stderr: redraws one line on a terminal, a line every few seconds otherwise. */
export class ProgressReporter {
  readonly #tty: boolean;
  readonly #write: (text: string) => void;
  #lastPlain = -Infinity;
  #lastDone = -1;
  #drawn = false;

  constructor(options: { tty?: boolean; write?: (text: string) => void } = {}) {
    this.#tty = options.tty ?? Deno.stderr.isTerminal();
    const encoder = new TextEncoder();
    this.#write = options.write ?? ((text) => Deno.stderr.writeSync(encoder.encode(text)));
  }

  update(sample: ProgressSample): void {
    if (this.#tty) {
      this.#write(`\r\x1b[2K${progressLine(sample)}`);
      this.#drawn = true;
    } else if (
      sample.done !== this.#lastDone &&
      (sample.elapsedMs - this.#lastPlain >= PLAIN_PROGRESS_MS || sample.done === sample.total)
    ) {
      this.#lastPlain = sample.elapsedMs;
      this.#lastDone = sample.done;
      this.#write(`progress: ${progressLine(sample, 20)}\n`);
    }
  }

  /** Prints a message on its own line (the bar is redrawn on the next update). */
  note(message: string): void {
    this.#write(this.#tty && this.#drawn ? `\r\x1b[2K${message}\n` : `${message}\n`);
  }

  finish(): void {
    if (this.#tty && this.#drawn) this.#write("\n");
    this.#drawn = false;
  }
}
