/**
 * Validation problems of a deployment, collected rather than thrown one at a time, so that
 * {@linkcode SynthError} can report every bad field at once.
 *
 * @module
 */

/** One thing wrong with a deployment: the field (dotted path or object) and why. */
export interface Problem {
  /** Dotted path of the config field (`workers.count`) or the object (`Job "ttg-worker"`). */
  readonly field: string;
  /** What is wrong, in std's manner: `expected an integer from 1 to 1000, got 0`. */
  readonly message: string;
}

/** Formats a problem as one line: `Invalid "workers.count": expected …, got 0`. */
export function formatProblem(problem: Problem): string {
  return `Invalid "${problem.field}": ${problem.message}`;
}

/**
 * Thrown once by `synth` with every problem of the config and of the generated objects.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SynthError } from "./problems.ts";
 * const error = new SynthError([{ field: "workers.count", message: "expected at least 1, got 0" }]);
 * assert.equal(error.code, "INVALID_CONFIG");
 * assert.ok(error.message.includes('"workers.count"'));
 * ```
 */
export class SynthError extends Error {
  /** Stable machine-readable code. */
  readonly code = "INVALID_CONFIG";
  /** Every problem found, in config order. */
  readonly problems: readonly Problem[];
  constructor(problems: readonly Problem[]) {
    const lines = problems.map(formatProblem);
    super(
      problems.length === 1
        ? lines[0]
        : `Cannot generate the deployment: ${problems.length} problems\n${lines.join("\n")}`,
    );
    this.name = "SynthError";
    this.problems = problems;
  }
}

/** Collects problems; each check returns the value it checked so callers can keep going. */
export class Problems {
  readonly #list: Problem[] = [];

  /** Records a problem. */
  add(field: string, message: string): void {
    this.#list.push({ field, message });
  }

  /** Every problem so far. */
  get list(): readonly Problem[] {
    return this.#list;
  }
}
