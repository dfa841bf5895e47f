/**
 * Broker options: their defaults filled and their values checked, once for every broker.
 *
 * @module
 */
import {
  type BrokerOptions,
  DEFAULT_LEASE_MS,
  DEFAULT_PRIORITY_AGING_MS,
  type PartialBrokerOptions,
} from "./broker.ts";
import { assertRetryPolicy, DEFAULT_RETRY } from "./policy.ts";

/**
 * Fills {@linkcode BrokerOptions} defaults and checks them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { brokerOptions } from "./options.ts";
 * const options = brokerOptions({ leaseMs: 2000 });
 * assert.equal(options.leaseMs, 2000);
 * assert.equal(options.retry.maxAttempts, 4);
 * ```
 */
export function brokerOptions(partial: PartialBrokerOptions = {}): BrokerOptions {
  const retry = Object.freeze({ ...DEFAULT_RETRY, ...partial.retry });
  const options: BrokerOptions = {
    consumerId: partial.consumerId ?? defaultConsumerId(),
    leaseMs: partial.leaseMs ?? DEFAULT_LEASE_MS,
    retry,
    priorityAgingMs: partial.priorityAgingMs ?? DEFAULT_PRIORITY_AGING_MS,
  };
  if (typeof options.consumerId !== "string" || options.consumerId === "") {
    throw new TypeError(`Invalid consumerId "${options.consumerId}": expected a non-empty string`);
  }
  if (!(options.leaseMs > 0)) {
    throw new RangeError(`Invalid leaseMs "${options.leaseMs}": expected more than 0`);
  }
  assertRetryPolicy(retry);
  if (!(options.priorityAgingMs > 0)) {
    throw new RangeError(
      `Invalid priorityAgingMs "${options.priorityAgingMs}": expected more than 0`,
    );
  }
  return Object.freeze(options);
}

function defaultConsumerId(): string {
  let host = "local";
  try {
    host = Deno.hostname();
  } catch {
    // no sys permission: keep "local"
  }
  return `${host}-${Deno.pid}`;
}

/** Throws a `RangeError` unless `value` is a whole number of at least `min`. */
export function assertCount(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`Invalid ${name} "${value}": expected a whole number from ${min}`);
  }
}
