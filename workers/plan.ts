/**
 * Splits a sweep into chunks: the job record and the tasks a coordinator publishes.
 *
 * @module
 */
import { type ChunkTask, formatChunkId, type JobRecord } from "../brokers/task.ts";

/** What to sweep. */
export interface SweepPlanOptions {
  /** Job id of the sweep. */
  readonly jobId: string;
  /** Handler (job name) that computes the chunks. @default "ttg.sweep" */
  readonly handler?: string;
  /** Parameters to sweep: `[0, params)`. */
  readonly params: number;
  /** Parameters per chunk (the last chunk may have fewer). */
  readonly chunkSize: number;
  /** Handler arguments (JSON). */
  readonly args?: Readonly<Record<string, unknown>>;
  /** 0–10. @default 0 */
  readonly priority?: number;
  /** False when the job's chunks must not be bisected. @default true */
  readonly divisible?: boolean;
  /** ISO 8601 creation time of the job and its tasks. @default now */
  readonly createdAt?: string;
  /** The module that defines the handler (a file URL), kept in the job record. */
  readonly module?: string;
  /** Most chunks of the job running at once, kept in the job record. */
  readonly maxInFlight?: number;
  /** Seconds the job's data is kept once it finished; none: the broker's default. */
  readonly ttlSeconds?: number;
}

/** A planned sweep. */
export interface SweepPlan {
  /** The job's record, for `Broker.createJob`. */
  readonly record: JobRecord;
  /** One task per chunk, in order (made when read: for small plans; publish with `batches`). */
  readonly tasks: readonly ChunkTask[];
  /**
   * The tasks in order, `size` at a time, each batch made when it is reached: a coordinator
   * publishing a million chunks holds one batch, not the whole plan.
   */
  batches(size: number): Iterable<ChunkTask[]>;
}

/**
 * Plans a sweep of `params` parameters in chunks of `chunkSize` (the last one may be shorter).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { planSweep } from "./plan.ts";
 * const plan = planSweep({ jobId: "demo", params: 250, chunkSize: 100 });
 * assert.ok(plan.tasks.length === 3 && plan.tasks[2]!.end === 250);
 * assert.ok(plan.tasks[1]!.chunkId === "00001");
 * ```
 */
export function planSweep(options: SweepPlanOptions): SweepPlan {
  const { jobId, params, chunkSize } = options;
  if (!Number.isSafeInteger(params) || params < 1) {
    throw new RangeError(`Invalid params "${params}"`);
  }
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) {
    throw new RangeError(`Invalid chunk size "${chunkSize}"`);
  }
  const handler = options.handler ?? "ttg.sweep";
  const args = options.args ?? {};
  const createdAt = options.createdAt ?? new Date().toISOString();
  const totalChunks = Math.ceil(params / chunkSize);
  const priority = options.priority ?? 0;
  const divisible = options.divisible ?? true;
  const task = (i: number): ChunkTask => ({
    jobId,
    chunkId: formatChunkId(i),
    handler,
    start: i * chunkSize,
    end: Math.min(params, (i + 1) * chunkSize),
    totalParams: params,
    totalChunks,
    priority,
    createdAt,
    args,
    divisible,
  });
  let all: ChunkTask[] | undefined;
  function* batches(size: number): Iterable<ChunkTask[]> {
    for (let from = 0; from < totalChunks; from += size) {
      const to = Math.min(totalChunks, from + size);
      const batch: ChunkTask[] = new Array(to - from);
      for (let i = from; i < to; i++) batch[i - from] = task(i);
      yield batch;
    }
  }
  return {
    record: {
      jobId,
      handler,
      totalParams: params,
      totalChunks,
      chunkSize,
      createdAt,
      args,
      ...(options.module ? { module: options.module } : {}),
      ...(options.maxInFlight ? { maxInFlight: options.maxInFlight } : {}),
      ...(options.ttlSeconds ? { ttlSeconds: options.ttlSeconds } : {}),
    },
    get tasks() {
      return all ??= [...batches(totalChunks)].flat();
    },
    batches,
  };
}
