/**
 * Error-free summation of floating-point numbers: Shewchuk's algorithm, as in Python's
 * `math.fsum`. The running sum is kept exactly, as a short list of non-overlapping partials
 * (increasing magnitude), and rounded once at the end, so the result is the correctly rounded
 * sum of every value, whatever the order they were added in.
 *
 * @module
 */

/**
 * An exact running sum.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ExactSum } from "./exact_sum.ts";
 * const naive = [0.1, 0.2, 0.3].reduce((s, v) => s + v, 0);
 * assert.equal(naive, 0.6000000000000001);
 * assert.equal(new ExactSum().addAll([0.1, 0.2, 0.3]).value, 0.6);
 * ```
 */
export class ExactSum {
  /** Non-overlapping partials, smallest magnitude first; their exact sum is the running sum. */
  #partials: number[] = [];
  /** Sum of the non-finite values added (Infinity, -Infinity, NaN); 0 while there are none. */
  #special = 0;

  /** Adds one value. Throws a `RangeError` when the exact sum leaves the range of a double. */
  add(value: number): this {
    if (!Number.isFinite(value)) {
      this.#special += value;
      return this;
    }
    const partials = this.#partials;
    let x = value;
    let i = 0;
    for (let j = 0; j < partials.length; j++) {
      let y = partials[j]!;
      if (Math.abs(x) < Math.abs(y)) {
        const t = x;
        x = y;
        y = t;
      }
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) partials[i++] = lo;
      x = hi;
    }
    if (!Number.isFinite(x)) {
      throw new RangeError(`Cannot sum exactly: the sum overflows (adding ${value})`);
    }
    partials.length = i;
    partials.push(x);
    return this;
  }

  /** Adds every value (for example another sum's {@linkcode ExactSum.parts}). */
  addAll(values: Iterable<number>): this {
    for (const value of values) this.add(value);
    return this;
  }

  /** The exact sum as partials: numbers whose exact sum is the running sum (JSON-safe). */
  parts(): number[] {
    return [...this.#partials];
  }

  /** The correctly rounded sum (round half to even); Infinity or NaN if such a value was added. */
  get value(): number {
    if (this.#special !== 0) return this.#special;
    const p = this.#partials;
    let n = p.length;
    if (n === 0) return 0;
    let hi = p[--n]!;
    let lo = 0;
    while (n > 0) {
      const x = hi;
      const y = p[--n]!;
      hi = x + y;
      lo = y - (hi - x);
      if (lo !== 0) break;
    }
    // hi + lo is exact, but the partials below may push a half-way case (lo = ±half an ulp) past
    // the halfway point: then round away from hi, as Python's fsum does.
    if (n > 0 && ((lo < 0 && p[n - 1]! < 0) || (lo > 0 && p[n - 1]! > 0))) {
      const y = lo * 2;
      const x = hi + y;
      if (y === x - hi) hi = x;
    }
    return hi;
  }
}

/**
 * The correctly rounded sum of `values`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fsum } from "./exact_sum.ts";
 * assert.equal(fsum([1e100, 1, -1e100]), 1);
 * ```
 */
export function fsum(values: Iterable<number>): number {
  return new ExactSum().addAll(values).value;
}
