/**
 * Jobs are plain TypeScript modules: `export default defineJob({ name, run })`. A handler decides
 * a chunk's fate only by what it returns or throws; TTG turns that into an ack or a nack.
 *
 * @module
 */
import { type JobPermissions, permissionsProblem } from "./permissions.ts";

export type { JobPermissions, PermissionGrant } from "./permissions.ts";

/** The parameters a handler computes: `[start, end)` of a job, with the job's arguments. */
export interface Chunk {
  /** Job the chunk belongs to. */
  readonly jobId: string;
  /** Chunk id, unique within the job, e.g. `"00042"`. */
  readonly chunkId: string;
  /** First parameter (inclusive). */
  readonly start: number;
  /** End (exclusive). */
  readonly end: number;
  /** Parameters of the whole sweep. */
  readonly totalParams: number;
  /** The job's arguments (JSON), as submitted. */
  readonly args: Readonly<Record<string, unknown>>;
}

/** Minimal structured logger handed to handlers. */
export interface Logger {
  /** Logs a debug message with optional structured fields. */
  debug(message: string, fields?: Record<string, unknown>): void;
  /** Logs an informational message with optional structured fields. */
  info(message: string, fields?: Record<string, unknown>): void;
  /** Logs a warning with optional structured fields. */
  warn(message: string, fields?: Record<string, unknown>): void;
  /** Logs an error with optional structured fields. */
  error(message: string, fields?: Record<string, unknown>): void;
}

/** What a handler gets besides its chunk. */
export interface ChunkContext {
  /** Fires on the per-chunk timeout and on shutdown: stop and throw (the chunk is retried). */
  readonly signal: AbortSignal;
  /** 1 on the first attempt. */
  readonly attempt: number;
  /** Id of the worker running the chunk. */
  readonly workerId: string;
  /** Logger of the worker running the chunk. */
  readonly log: Logger;
  /**
   * Reports progress within the chunk: the parameters done so far. Cheap to call often; a chunk
   * that runs longer than 5 s logs its latest count in a PROGRESS line every 5 s.
   */
  progress(done: number): void;
}

/**
 * A streaming reduction of a job's counted results, so an aggregate of any size of job is built
 * in constant memory. Results arrive in the broker's own order: the aggregate must not depend on
 * it (associative and commutative, as the built-in sweep's exact sums are).
 */
export interface Fold<R = unknown, S = unknown, A = unknown> {
  /** A fresh accumulator. */
  start(): S;
  /** Adds one chunk's result. */
  add(state: S, result: R): S;
  /** The aggregate. */
  finish(state: S): A;
}

/** A job definition: a name, a handler and, optionally, how to combine chunk results. */
export interface JobDefinition<R = unknown, A = unknown> {
  /** Name the tasks carry (`handler`), e.g. `"ttg.sweep"` or `"acme.pricing"`. */
  readonly name: string;
  /** Computes one chunk. Throw to fail it (retried with backoff), or throw `unrecoverable(…)`. */
  run(chunk: Chunk, ctx: ChunkContext): R | Promise<R>;
  /**
   * Combines the counted chunk results, in chunk order, into the job's aggregate (they are held
   * in memory: for a large job give `fold`). @default counts them
   */
  reduce?(results: readonly R[]): A;
  /** Builds the aggregate one result at a time, in constant memory (preferred over `reduce`). */
  // deno-lint-ignore no-explicit-any
  readonly fold?: Fold<R, any, A>;
  /** Chunks must not be bisected when they exhaust their attempts. @default false */
  readonly indivisible?: boolean;
  /** Per-chunk timeout override in milliseconds. */
  readonly timeoutMs?: number;
  /**
   * What the handler may reach beyond computing, in its handler thread: hosts, paths and
   * environment variables. Nothing by default (besides reading the job's own module); an access
   * not declared fails the chunk as unrecoverable, naming the permission.
   * @default {}
   */
  readonly permissions?: JobPermissions;
}

/** A validated, frozen job definition. */
export type Job<R = unknown, A = unknown> = Readonly<JobDefinition<R, A>>;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * Declares a job. Validates its name, handler and permissions and freezes it.
 *
 * @example
 * ```ts
 * import { defineJob } from "./define_job.ts";
 * export default defineJob({
 *   name: "squares",
 *   run: (chunk) => {
 *     let sum = 0;
 *     for (let p = chunk.start; p < chunk.end; p++) sum += p * p;
 *     return { sum };
 *   },
 *   reduce: (results) => ({ sum: results.reduce((s, r) => s + r.sum, 0) }),
 * });
 * ```
 */
export function defineJob<R, A = unknown>(definition: JobDefinition<R, A>): Job<R, A> {
  if (!isJob(definition)) {
    throw new TypeError(
      `Invalid job "${String((definition as { name?: unknown })?.name)}": ` +
        "expected a name of letters, digits, '.', '_' or '-' and a run(chunk, ctx) function",
    );
  }
  const problem = permissionsProblem(definition.permissions);
  if (problem) throw new TypeError(`Invalid permissions of job "${definition.name}": ${problem}`);
  return Object.freeze({ ...definition });
}

/** True when `value` looks like a job definition (duck-typed, so jobs built against another copy of TTG load too). */
export function isJob(value: unknown): value is Job {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.name === "string" && NAME.test(v.name) && typeof v.run === "function" &&
    (v.reduce === undefined || typeof v.reduce === "function");
}

const UNRECOVERABLE = Symbol.for("ttg.unrecoverable");

/** An error that dead-letters its chunk at once, without retries or bisection. */
export class UnrecoverableError extends Error {
  /** Brand {@linkcode isUnrecoverable} checks (a `Symbol.for` key, shared by every copy of TTG). */
  readonly [UNRECOVERABLE] = true;
  /** Creates an unrecoverable error; prefer {@linkcode unrecoverable} to wrap another error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UnrecoverableError";
  }
}

/**
 * Wraps an error (or a message) so the chunk is dead-lettered at once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { unrecoverable } from "./define_job.ts";
 * const err = unrecoverable("Input file is corrupt");
 * assert.ok(err.message === "Input file is corrupt");
 * ```
 */
export function unrecoverable(error: unknown): UnrecoverableError {
  if (error instanceof UnrecoverableError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new UnrecoverableError(message, { cause: error });
}

/** True for errors made by {@linkcode unrecoverable}, also across Web Worker boundaries by name. */
export function isUnrecoverable(error: unknown): boolean {
  return typeof error === "object" && error !== null &&
    ((error as Record<symbol, unknown>)[UNRECOVERABLE] === true ||
      (error as Error).name === "UnrecoverableError");
}

/** Default aggregate: how many chunk results were counted. */
export function reduceResults(job: Job, results: readonly unknown[]): unknown {
  return job.reduce ? job.reduce(results) : { chunks: results.length };
}

/** Turns results into a job's aggregate as they come (see {@linkcode aggregator}). */
export interface Aggregator {
  /** True when results are folded as they come (constant memory), false when held. */
  readonly streaming: boolean;
  /** One counted result, with its chunk's id. */
  add(chunkId: string, value: unknown): void;
  /** The aggregate of everything added. */
  finish(): unknown;
}

/**
 * The aggregator of a job: its `fold`, else its `reduce` over the results held and handed over
 * in chunk order (`compare` orders chunk ids), else a count.
 */
export function aggregator(
  job: Job | undefined,
  compare: (a: string, b: string) => number,
): Aggregator {
  const fold = job?.fold;
  if (fold) {
    let state = fold.start();
    return {
      streaming: true,
      add: (_, value) => state = fold.add(state, value),
      finish: () => fold.finish(state),
    };
  }
  if (job?.reduce) {
    const held: [string, unknown][] = [];
    return {
      streaming: false,
      add: (chunkId, value) => held.push([chunkId, value]),
      finish: () => job.reduce!(held.sort((a, b) => compare(a[0], b[0])).map(([, v]) => v)),
    };
  }
  let chunks = 0;
  return { streaming: true, add: () => chunks++, finish: () => ({ chunks }) };
}
