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
 * import assert from "node:assert/strict";
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
 * for (const batch of plan.batches(10_000)) await broker.publish(batch);
 * const [delivery] = await broker.pull({ jobId: "squares-1", max: 1 });
 * assert.ok(delivery?.task.chunkId === "00000");
 * await broker.close();
 * ```
 *
 * @module
 */
export type {
  AckOutcome,
  AckRequest,
  AttemptKind,
  AttemptRecord,
  Broker,
  BrokerCapabilities,
  BrokerOptions,
  BrokerStats,
  ChunkResult,
  ChunkTask,
  ConnectRetry,
  ControlAction,
  ControlOutcome,
  DeadLetter,
  DeadLetterSelector,
  DeadLetterStore,
  Delivery,
  ExtendOutcome,
  FleetRegistry,
  JobControl,
  JobRecord,
  JobState,
  JobSummary,
  ListOptions,
  NackKind,
  NackOutcome,
  NackRequest,
  PartialBrokerOptions,
  PullOptions,
  ReclaimOptions,
  ResultPage,
  ResultsOptions,
  Retention,
  RetentionOutcome,
  RetryingChunk,
  RetryPolicy,
  StoredResult,
  WorkerActivity,
  WorkerRecord,
  WorkerReportInput,
} from "./brokers/broker.ts";
export { allResults, eachResult } from "./brokers/results.ts";
export { type JobHead, type Share, shareSlots } from "./brokers/share.ts";
export { DEFAULT_HEARTBEAT_MS, DEFAULT_LEASE_MS } from "./brokers/broker.ts";
export { brokerOptions } from "./brokers/guard.ts";
export { type BackoffOptions, DEFAULT_RETRY, retryDelayMs } from "./brokers/policy.ts";
export { formatChunkId, PRIORITY_MAX, PRIORITY_MIN } from "./brokers/task.ts";
export {
  BrokerError,
  type BrokerErrorCode,
  ConfigError,
  TtgError,
  type TtgErrorCode,
} from "./errors.ts";
export { openBroker, type OpenBrokerOptions } from "./brokers/open.ts";
export {
  type Chunk,
  type ChunkContext,
  defineJob,
  type Fold,
  type Job,
  type JobDefinition,
  type JobPermissions,
  type Logger,
  type PermissionGrant,
  unrecoverable,
  UnrecoverableError,
} from "./jobs/define_job.ts";
export {
  type CommandJob,
  commandJob,
  type CommandJobDefinition,
  type CommandSpec,
} from "./jobs/command_job.ts";
export { type ReducerName, REDUCERS } from "./jobs/reducers.ts";
export { planSweep, type SweepPlan, type SweepPlanOptions } from "./workers/plan.ts";
export { combineSweep, computeRange, default as sweepJob, type SweepResult } from "./jobs/sweep.ts";
export { ExactSum, fsum } from "./jobs/exact_sum.ts";
export {
  type FleetOptions,
  type OneJobOptions,
  TtgWorker,
  type WorkerBaseOptions,
  type WorkerCounts,
  type WorkerOptions,
  type WorkerReport,
} from "./workers/worker.ts";
export {
  FleetCatalog,
  type FleetCatalogOptions,
  globMatcher,
  type HandlerFactory,
  type HandlerSpec,
  handlerSpec,
  type JobHandler,
  type JobSource,
  singleJob,
} from "./workers/job_catalog.ts";
export {
  type ChunkExecutor,
  type ExecutionOutcome,
  type ExecutionRequest,
  InlineExecutor,
} from "./workers/executor.ts";
export { ThreadPoolExecutor, type ThreadPoolOptions } from "./workers/thread_pool.ts";
export { ProcessPoolExecutor, type ProcessPoolOptions } from "./workers/process_pool.ts";
export { type Clock, ManualClock, systemClock } from "./workers/clock.ts";
export type { WorkerEvents } from "./workers/counters.ts";
export { WorkerHealth } from "./workers/health.ts";
export type { WorkerIdentity } from "./workers/fleet_report.ts";
