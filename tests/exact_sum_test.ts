/**
 * Exact sums: ExactSum/fsum against an exact BigInt-rational reference, and the sweep's
 * aggregate, which is the correctly rounded sum of every value whatever the order of its chunks.
 */
import assert from "node:assert/strict";
import { ExactSum, fsum } from "../jobs/exact_sum.ts";
import { combineSweep, computeRange, type SweepResult, sweepValue } from "../jobs/sweep.ts";

/** A double as an exact integer multiple of 2^-1074 (every finite double is one). */
function toUnits(x: number): bigint {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const exponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  const units = exponent === 0 ? fraction : (fraction | (1n << 52n)) << BigInt(exponent - 1);
  return bits >> 63n ? -units : units;
}

/** `units` × 2^-1074 rounded to the nearest double, ties to even (the sums here stay finite). */
function fromUnits(units: bigint): number {
  if (units === 0n) return 0;
  let m = units < 0n ? -units : units;
  const bits = m.toString(2).length;
  const shift = Math.max(0, bits - 53);
  if (shift > 0) {
    const q = m >> BigInt(shift);
    const rest = m - (q << BigInt(shift));
    const half = 1n << BigInt(shift - 1);
    m = q + (rest > half || (rest === half && (q & 1n) === 1n) ? 1n : 0n);
  }
  // m ≤ 2^53, so m × 2^(shift - 1074) is a double and the product below is exact.
  return (units < 0n ? -1 : 1) * Number(m) * 2 ** (shift - 1074);
}

/** The correctly rounded sum, computed with exact rational (BigInt) arithmetic. */
function referenceSum(values: readonly number[]): number {
  return fromUnits(values.reduce((s, v) => s + toUnits(v), 0n));
}

/** A seeded generator of 32-bit values in [0, 1) (mulberry32), so failures are reproducible. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], next: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

Deno.test("fsum() is the correctly rounded sum: it matches a BigInt-rational reference on random inputs", () => {
  const next = random(20261201);
  const double = () => (next() + next() / 2 ** 32) * (next() < 0.5 ? -1 : 1);
  for (let round = 0; round < 400; round++) {
    const values: number[] = [];
    const n = 1 + Math.floor(next() * 60);
    const spread = [4, 30, 200, 900][round % 4]!; // exponents from narrow to wide
    for (let i = 0; i < n; i++) {
      const v = double() * 2 ** Math.floor((next() - 0.5) * spread);
      values.push(v);
      if (next() < 0.2) values.push(-v * (1 + 2 ** -50)); // near-cancellations
    }
    const expected = referenceSum(values);
    assert.ok(Object.is(fsum(values), expected), `round ${round}: ${JSON.stringify(values)}`);
    assert.ok(Object.is(fsum(shuffle([...values], next)), expected), `round ${round}, shuffled`);
    // Partials carry the exact sum: adding them elsewhere loses nothing.
    const half = Math.floor(values.length / 2);
    const a = new ExactSum().addAll(values.slice(0, half));
    const b = new ExactSum().addAll(values.slice(half));
    assert.ok(Object.is(new ExactSum().addAll(b.parts()).addAll(a.parts()).value, expected));
  }
});

Deno.test("fsum() rounds half-way cases to even, seeing partials far below the halfway point", () => {
  const cases: number[][] = [
    [1, 2 ** -53], // exactly half an ulp of 1: ties to even, 1
    [1, 2 ** -53, 2 ** -200], // a hair above half: rounds up
    [1, 2 ** -53, -(2 ** -200)], // a hair below half: stays
    [1 + 2 ** -52, 2 ** -53], // half an ulp of an odd mantissa: ties up to even
    [1e100, 1, -1e100],
    [0.1, 0.2, 0.3],
    [],
  ];
  for (const values of cases) {
    assert.ok(Object.is(fsum(values), referenceSum(values)), JSON.stringify(values));
  }
  assert.equal(fsum([1, 2 ** -53, 2 ** -200]), 1 + 2 ** -52);
  assert.equal(fsum([Infinity, 1]), Infinity);
  assert.ok(Number.isNaN(fsum([Infinity, -Infinity])));
  assert.throws(() => fsum([Number.MAX_VALUE, Number.MAX_VALUE]), RangeError);
});

Deno.test("the 1,000,000-parameter sweep, in chunks combined in any order, sums to exactly 500035500", () => {
  const chunks: SweepResult[] = [];
  for (let start = 0; start < 1_000_000; start += 1000) {
    chunks.push(computeRange(start, start + 1000));
  }
  const next = random(7);
  for (let i = 0; i < 3; i++) {
    const total = combineSweep(shuffle([...chunks], next));
    assert.equal(total.sum, 500035500);
    assert.equal(total.count, 1_000_000);
    assert.equal(total.avg, 500.0355);
  }
  // What one float accumulator gives instead: off in the 13th digit.
  let naive = 0;
  for (let p = 0; p < 1_000_000; p++) naive += sweepValue(p);
  assert.equal(naive, 500035500.00027776);
  // Bisected parts combine like whole chunks, and a predecessor's result (no sum_parts) counts
  // as its sum.
  const [first, ...rest] = chunks;
  const { sum_parts: _, ...legacy } = first!;
  const parts = [computeRange(0, 500), computeRange(500, 1000)];
  assert.equal(combineSweep([...rest, ...parts]).sum, 500035500);
  assert.equal(combineSweep([legacy, ...rest]).sum, 500035500);
});

Deno.test("the 10,000,000-parameter sweep sums to exactly 5000355000", () => {
  const chunks: SweepResult[] = [];
  for (let start = 0; start < 10_000_000; start += 100_000) {
    chunks.push(computeRange(start, start + 100_000));
  }
  const total = combineSweep(shuffle(chunks, random(11)));
  assert.equal(total.sum, 5000355000);
  assert.equal(total.count, 10_000_000);
  assert.equal(total.avg, 500.0355);
});
