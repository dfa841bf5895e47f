/**
 * What `--json` prints: every key in snake_case, the predecessor's style (`ttg status`,
 * `ttg results`, `ttg run`, `ttg submit`, `ttg dlq list`, `ttg worker --report-json`). Only
 * TTG's own field names are converted; data inside them (a job's `args`, a result, a raw
 * message) is printed as it was given.
 *
 * @module
 */
import type {
  BrokerStats,
  DeadLetter,
  JobRecord,
  JobState,
  WorkerRecord,
} from "../brokers/broker.ts";
import type { ServeReport } from "./serve.ts";

/** `"deadLettered"` → `"dead_lettered"`, as a type. */
export type SnakeCase<S extends string> = S extends `${infer Head}${infer Tail}`
  ? `${Head extends Lowercase<Head> ? Head : `_${Lowercase<Head>}`}${SnakeCase<Tail>}`
  : S;

/** An object type with its keys in snake_case. */
export type SnakeKeys<T> = {
  readonly [K in keyof T as K extends string ? SnakeCase<K> : K]: T[K];
};

/**
 * A copy of `record` with its own keys in snake_case; the values are left as they are.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { snakeKeys } from "./json_output.ts";
 * assert.deepEqual(snakeKeys({ inFlight: 2, args: { myFlag: true } }), {
 *   in_flight: 2,
 *   args: { myFlag: true },
 * });
 * ```
 */
export function snakeKeys<T extends object>(record: T): SnakeKeys<T> {
  return Object.fromEntries(
    Object.entries(record).map(([key, value]) => [
      key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
      value,
    ]),
  ) as SnakeKeys<T>;
}

/** `ttg status --json`: the job's state, record (null when it has none), counters and fleet. */
export function statusJson(
  jobId: string,
  record: JobRecord | null,
  stats: BrokerStats,
  state: JobState,
  workers: readonly WorkerRecord[],
): Record<string, unknown> {
  return {
    job_id: jobId,
    state,
    job: record ? snakeKeys(record) : null,
    stats: snakeKeys({ ...stats, oldestReady: stats.oldestReady?.map((o) => snakeKeys(o)) }),
    workers: workers.map((w) => snakeKeys(w)),
  };
}

/** One dead letter of `ttg dlq list --json`: its chunk and history with snake_case keys too. */
export function deadLetterJson(letter: DeadLetter): Record<string, unknown> {
  return snakeKeys({
    ...letter,
    task: letter.task ? snakeKeys(letter.task) : null,
    history: letter.history.map((h) => snakeKeys(h)),
  });
}

/** `ttg worker --report-json`: the worker's counters, exit reason, duration and peak memory. */
export type WorkerReportJson = SnakeKeys<ServeReport>;

/** The JSON line `ttg worker --report-json` prints. */
export function workerReportJson(report: ServeReport): WorkerReportJson {
  return snakeKeys(report);
}
