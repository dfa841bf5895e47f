/**
 * The handler process protocol, version 1 (docs/PROTOCOL.md): one JSON object per line. The
 * process says hello on stdout, then answers each chunk TTG writes on its stdin with one result
 * or error line, optionally after progress lines. Pure: encoding and parsing only.
 *
 * @module
 */
import type { ChunkTask } from "../brokers/broker.ts";
import { chunkOf } from "./executor.ts";

/** The protocol version this TTG speaks. */
export const PROTOCOL_VERSION = 1;

/** The first line a handler process prints. */
export const HELLO_LINE = `{"ttg": ${PROTOCOL_VERSION}, "ready": true}`;

/** Longest line TTG reads from a handler (a larger result is a protocol violation). */
export const MAX_LINE_CHARS = 16 * 1024 * 1024;

/** What a handler process said in one stdout line. */
export type HandlerMessage =
  | { readonly type: "hello"; readonly version: unknown }
  | { readonly type: "result"; readonly value: unknown }
  | { readonly type: "error"; readonly message: string; readonly unrecoverable: boolean }
  | { readonly type: "progress"; readonly done: number }
  | { readonly type: "blank" }
  | { readonly type: "invalid"; readonly line: string };

/**
 * The line TTG writes on a handler's stdin to run one chunk: the handler's view of the chunk
 * (as a TypeScript handler gets it) and the attempt number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chunkLine } from "./process_protocol.ts";
 * import { planSweep } from "./plan.ts";
 * const [task] = planSweep({ jobId: "j", params: 10, chunkSize: 10 }).tasks;
 * assert.equal(
 *   chunkLine(task!, 2),
 *   '{"chunk":{"jobId":"j","chunkId":"00000","start":0,"end":10,"totalParams":10,"args":{},"attempt":2}}\n',
 * );
 * ```
 */
export function chunkLine(task: ChunkTask, attempt: number): string {
  return JSON.stringify({ chunk: { ...chunkOf(task), attempt } }) + "\n";
}

/**
 * Reads one stdout line of a handler. A line that is not one JSON object with `ttg`, `result`,
 * `error` or `progress` is `invalid` (whitespace-only lines are `blank` and ignored).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHandlerLine } from "./process_protocol.ts";
 * assert.deepEqual(parseHandlerLine('{"result": {"sum": 3}}'), { type: "result", value: { sum: 3 } });
 * assert.deepEqual(parseHandlerLine("hello!"), { type: "invalid", line: "hello!" });
 * ```
 */
export function parseHandlerLine(raw: string): HandlerMessage {
  const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
  if (line.trim() === "") return { type: "blank" };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { type: "invalid", line };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { type: "invalid", line };
  }
  const message = value as Record<string, unknown>;
  if ("result" in message) return { type: "result", value: message.result };
  if ("error" in message) {
    const error = message.error;
    return {
      type: "error",
      message: typeof error === "string" && error !== "" ? error : JSON.stringify(error),
      unrecoverable: message.unrecoverable === true,
    };
  }
  if ("progress" in message) {
    const done = message.progress;
    if (typeof done === "number" && Number.isFinite(done)) return { type: "progress", done };
    return { type: "invalid", line };
  }
  if ("ttg" in message && message.ready === true) return { type: "hello", version: message.ttg };
  return { type: "invalid", line };
}

/** A handler's line as it appears in a reason: JSON-quoted, cut to 200 characters. */
export function quoteLine(line: string): string {
  return JSON.stringify(line.length > 200 ? `${line.slice(0, 200)}…` : line);
}

/**
 * Why the first line of a handler is not the hello this TTG expects, or undefined when it is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { helloProblem } from "./process_protocol.ts";
 * assert.equal(helloProblem('{"ttg": 1, "ready": true}'), undefined);
 * assert.match(helloProblem('{"ttg": 2, "ready": true}')!, /speaks protocol version 2/);
 * ```
 */
export function helloProblem(line: string): string | undefined {
  const message = parseHandlerLine(line);
  if (message.type === "hello") {
    if (message.version === PROTOCOL_VERSION) return undefined;
    return `it speaks protocol version ${
      JSON.stringify(message.version)
    }; this TTG speaks version ${PROTOCOL_VERSION} (expected the hello line ${HELLO_LINE})`;
  }
  return `its first line was ${
    quoteLine(line)
  }, not the protocol's hello line ${HELLO_LINE} (is it a TTG handler? see docs/PROTOCOL.md)`;
}
