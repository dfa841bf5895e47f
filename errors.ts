/**
 * Typed errors shared by every TTG module. Each carries a stable `code`, so callers (and the CLI,
 * which maps codes to exit codes) branch on codes, never on message text.
 *
 * @module
 */

/** Stable codes of {@linkcode TtgError}. */
export type TtgErrorCode =
  | "CONFIG"
  | "UNAVAILABLE"
  | "CLOSED"
  | "NOT_IMPLEMENTED"
  | "JOB_LOAD"
  | "NOT_FOUND"
  | "INTERRUPTED"
  | "DEAD_LETTERS";

/**
 * Base class of every error TTG throws on purpose.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TtgError } from "./errors.ts";
 * const err = new TtgError("CLOSED", 'Cannot pull from job "ttg": the broker is closed');
 * assert.equal(err.code, "CLOSED");
 * ```
 */
export class TtgError extends Error {
  /** Stable machine-readable code. */
  readonly code: TtgErrorCode;
  /** Creates an error with a stable `code` and a message. */
  constructor(code: TtgErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TtgError";
    this.code = code;
  }
}

/**
 * A setting or argument with a bad value: the message names the setting and the value.
 * The CLI exits with code 2 on it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfigError } from "./errors.ts";
 * const err = ConfigError.invalid("--workers", "abc", "a whole number from 1 to 256");
 * assert.equal(err.message, 'Invalid --workers "abc": expected a whole number from 1 to 256');
 * ```
 */
export class ConfigError extends TtgError {
  /** Name of the setting (flag or environment variable) that is wrong. */
  readonly setting: string;
  /**
   * Creates an error about `setting` with a custom message; {@linkcode ConfigError.invalid}
   * builds the standard one.
   */
  constructor(setting: string, message: string, options?: ErrorOptions) {
    super("CONFIG", message, options);
    this.name = "ConfigError";
    this.setting = setting;
  }
  /** Builds the standard one-line message: `Invalid <setting> "<value>": expected <expected>`. */
  static invalid(setting: string, value: unknown, expected: string): ConfigError {
    return new ConfigError(setting, `Invalid ${setting} "${String(value)}": expected ${expected}`);
  }
}

/** Codes a broker may fail with. */
export type BrokerErrorCode = Extract<
  TtgErrorCode,
  "UNAVAILABLE" | "CLOSED" | "NOT_IMPLEMENTED"
>;

/**
 * A failure of a broker operation, with a stable code. Each broker translates its native errors
 * (connection refused, channel closed, SQLITE_BUSY…) into this in one private function.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BrokerError } from "./errors.ts";
 * const err = new BrokerError("UNAVAILABLE", "Cannot reach Redis at 127.0.0.1:6379: connection refused");
 * assert.equal(err.code, "UNAVAILABLE");
 * ```
 */
export class BrokerError extends TtgError {
  /** Stable machine-readable code, one of {@linkcode BrokerErrorCode}. */
  declare readonly code: BrokerErrorCode;
  /** Creates a broker error with a stable `code` and a message. */
  constructor(code: BrokerErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = "BrokerError";
  }
}

/** Returns the message of any thrown value, for logs and dead-letter reasons. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * A URL (or a message holding URLs) with every password replaced by `***`, for messages and logs:
 * the one redaction of TTG.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redactUrl } from "./errors.ts";
 * assert.equal(redactUrl("amqp://ttg:s3cret@rabbit:5672/"), "amqp://ttg:***@rabbit:5672/");
 * assert.equal(redactUrl("redis://:pw@h:6379"), "redis://:***@h:6379");
 * ```
 */
export function redactUrl(text: string): string {
  return text.replace(/(\/\/[^:/@\s]*:)[^@/\s]*@/g, "$1***@");
}
