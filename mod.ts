/**
 * TTG: a distributed job runner. A sweep over many parameters is split into chunks; a coordinator
 * publishes them to a broker (embedded SQLite, Redis Streams or RabbitMQ); a fleet of identical,
 * stateless workers pulls chunks, runs a handler, stores each chunk's result and acknowledges it,
 * until every chunk has exactly one counted result, even while workers crash.
 *
 * A job is a plain module with a handler:
 *
 * @example
 * ```ts
 * import { defineJob, openBroker, planSweep } from "./mod.ts";
 *
 * const squares = defineJob({
 *   name: "squares",
 *   run: (chunk) => {
 *     let sum = 0;
 *     for (let p = chunk.start; p < chunk.end; p++) sum += p * p;
 *     return { sum };
 *   },
 *   reduce: (results) => ({ sum: results.reduce((s, r) => s + r.sum, 0) }),
 * });
 *
 * const broker = await openBroker({ backend: "sqlite", sqlitePath: ":memory:" });
 * const plan = planSweep({ jobId: "squares-1", handler: squares.name, params: 1000, chunkSize: 100 });
 * await broker.createJob(plan.record);
 * await broker.publish(plan.tasks);
 * const [delivery] = await broker.pull({ jobId: "squares-1", max: 1 });
 * console.assert(delivery?.task.chunkId === "00000");
 * await broker.close();
 * ```
 *
 * @module
 */
export type {
  AckOutcome,
  AckRequest,
  AttemptRecord,
  Broker,
  BrokerCapabilities,
  BrokerOptions,
  BrokerStats,
  ChunkResult,
  ChunkTask,
  DeadLetter,
  DeadLetterSelector,
  DeadLetterStore,
  Delivery,
  ExtendOutcome,
  JobRecord,
  NackKind,
  NackOutcome,
  NackRequest,
  PullOptions,
  ReclaimOptions,
  RetryPolicy,
  StoredResult,
} from "./brokers/contract.ts";
export {
  brokerOptions,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_LEASE_MS,
  DEFAULT_RETRY,
  formatChunkId,
  PRIORITY_MAX,
  PRIORITY_MIN,
  retryDelayMs,
} from "./brokers/contract.ts";
export {
  BrokerError,
  type BrokerErrorCode,
  ConfigError,
  TtgError,
  type TtgErrorCode,
} from "./brokers/errors.ts";
export { openBroker, type OpenBrokerOptions } from "./brokers/open.ts";
export {
  type Chunk,
  type ChunkContext,
  defineJob,
  type Job,
  type JobDefinition,
  type Logger,
  unrecoverable,
  UnrecoverableError,
} from "./jobs/define_job.ts";
export { planSweep, type SweepPlan, type SweepPlanOptions } from "./jobs/plan.ts";
export { combineSweep, computeRange, default as sweepJob, type SweepResult } from "./jobs/sweep.ts";
export {
  TtgWorker,
  type WorkerCounts,
  type WorkerOptions,
  type WorkerReport,
} from "./workers/worker.ts";
export {
  type ChunkExecutor,
  type ExecutionOutcome,
  type ExecutionRequest,
  InlineExecutor,
} from "./workers/executor.ts";
export { ThreadPoolExecutor, type ThreadPoolOptions } from "./workers/thread_pool.ts";
