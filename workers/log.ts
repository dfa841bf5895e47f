/**
 * Structured logs on stderr, as text or one JSON object a line (the predecessor's LOG_FORMAT).
 *
 * @module
 */
import type { Logger } from "../jobs/define_job.ts";

/** Log levels, lowest first. */
export const LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"] as const;
/** One of {@linkcode LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];
/** `text` for people, `json` for log collectors. */
export type LogFormat = "text" | "json";

/** Options of {@linkcode createLogger}. */
export interface LoggerOptions {
  readonly level: LogLevel;
  readonly format: LogFormat;
  /** Fields added to every line (worker_id, pod_name…). */
  readonly context?: Record<string, unknown>;
  /** Where lines go. @default stderr */
  readonly write?: (line: string) => void;
}

const encoder = new TextEncoder();

function writeStderr(line: string): void {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
}

/**
 * Creates a logger.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLogger } from "./log.ts";
 * const lines: string[] = [];
 * const log = createLogger({ level: "INFO", format: "json", write: (l) => lines.push(l) });
 * log.debug("hidden");
 * log.info("RUNNING", { chunk: "00001" });
 * assert.ok(lines.length === 1 && JSON.parse(lines[0]!).chunk === "00001");
 * ```
 */
export function createLogger(options: LoggerOptions): Logger {
  const min = LOG_LEVELS.indexOf(options.level);
  const write = options.write ?? writeStderr;
  const context = options.context ?? {};
  function emit(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    if (LOG_LEVELS.indexOf(level) < min) return;
    const time = new Date().toISOString();
    if (options.format === "json") {
      write(JSON.stringify({ time, level, message, ...context, ...fields }));
      return;
    }
    const extra = { ...context, ...fields };
    const tail = Object.entries(extra).map(([k, v]) =>
      `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`
    ).join(" ");
    write(`${time} ${level.padEnd(7)} ${message}${tail ? " " + tail : ""}`);
  }
  return {
    debug: (m, f) => emit("DEBUG", m, f),
    info: (m, f) => emit("INFO", m, f),
    warn: (m, f) => emit("WARNING", m, f),
    error: (m, f) => emit("ERROR", m, f),
  };
}

/** A logger that drops everything (tests, quiet commands). */
export const silentLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});
