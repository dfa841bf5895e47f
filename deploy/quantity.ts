/**
 * Kubernetes resource quantities (`500m`, `256Mi`, `1Gi`): syntax check and comparison, enough
 * to reject a typo and a request above its limit before a cluster does.
 *
 * @module
 */

const QUANTITY = /^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

const FACTORS: Readonly<Record<string, number>> = {
  "": 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/**
 * The value of a quantity in base units (cores, bytes), or `undefined` when it is not one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseQuantity } from "./quantity.ts";
 * assert.equal(parseQuantity("500m"), 0.5);
 * assert.equal(parseQuantity("1Gi"), 1024 ** 3);
 * assert.equal(parseQuantity("1 GB"), undefined);
 * ```
 */
export function parseQuantity(text: string): number | undefined {
  const match = QUANTITY.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * (FACTORS[match[2] ?? ""] ?? 1);
}
