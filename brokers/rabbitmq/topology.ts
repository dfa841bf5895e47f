/**
 * Names and declarations of the RabbitMQ broker's exchanges and queues.
 *
 * The job whose id equals the name prefix (`ttg` by default) uses the Python predecessor's names
 * exactly: `ttg.tasks.exchange` → `ttg.tasks` (routing key `ttg.tasks`), `ttg.retry.exchange` →
 * `ttg.tasks.retry` (TTL, dead-lettering back to the task exchange), `ttg.dlq.exchange` →
 * `ttg.tasks.dlq`, `ttg.results.exchange` → `ttg.results`. Other jobs are namespaced:
 * `<prefix>.<jobId>.tasks`, `<prefix>.<jobId>.results`, …
 *
 * Those four queues are declared only when missing, and then with exactly the predecessor's
 * arguments for the legacy job, so a Python worker's `queue_declare` never meets an inequivalent
 * queue (PRECONDITION_FAILED) and ours never fails on one it declared: the legacy task queue
 * therefore has no `x-max-priority` (priorities are ignored for that job). Namespaced task queues
 * get `x-max-priority: 10` (classic) or `x-queue-type: quorum` with `x-delivery-limit`.
 *
 * TTG adds, per job: one delay queue per backoff step (`<tasks>.retry.<ms>ms`, its TTL the step,
 * dead-lettering back to the task exchange, expiring a minute after its last use), `<base>.job`
 * (the job record: at most one message, `reject-publish`), `<base>.stats` (counter events),
 * `<base>.consumers` (never holds a message: each live consumer of the job consumes it, so its
 * consumer count is the job's live consumers), `<base>.lock` (its exclusive consumer holds the
 * job's dead-letter lock) and a fanout exchange `<base>.control` (census).
 *
 * @module
 */
import { retryDelayMs, type RetryPolicy } from "../policy.ts";
import type { AdminChannels } from "./connection.ts";

/** Queue type of the task queue. */
export type QueueType = "classic" | "quorum";

/** The predecessor's fixed retry delay (RABBITMQ_RETRY_DELAY_MS default). */
export const LEGACY_RETRY_TTL_MS = 5000;
/** Highest priority of a task queue. */
export const MAX_PRIORITY = 10;

/** Every name of one job. */
export interface JobNames {
  readonly jobId: string;
  /** True for the job that uses the predecessor's names. */
  readonly legacy: boolean;
  readonly taskExchange: string;
  readonly tasks: string;
  readonly retryExchange: string;
  readonly retry: string;
  readonly retryKey: string;
  readonly dlqExchange: string;
  readonly dlq: string;
  readonly resultsExchange: string;
  readonly results: string;
  readonly job: string;
  readonly stats: string;
  readonly presence: string;
  /** A queue whose exclusive consumer is the job's dead-letter lock (lock.ts). */
  readonly lock: string;
  readonly control: string;
}

/** The names of job `jobId` under `prefix`. */
export function jobNames(prefix: string, jobId: string): JobNames {
  const legacy = jobId === prefix;
  const base = legacy ? prefix : `${prefix}.${jobId}`;
  return {
    jobId,
    legacy,
    taskExchange: `${base}.tasks.exchange`,
    tasks: `${base}.tasks`,
    retryExchange: `${base}.retry.exchange`,
    retry: `${base}.tasks.retry`,
    retryKey: `${base}.tasks.retry`,
    dlqExchange: `${base}.dlq.exchange`,
    dlq: `${base}.tasks.dlq`,
    resultsExchange: `${base}.results.exchange`,
    results: `${base}.results`,
    job: `${base}.job`,
    stats: `${base}.stats`,
    presence: `${base}.consumers`,
    lock: `${base}.lock`,
    control: `${base}.control`,
  };
}

/** The backoff steps of a retry policy (each has its delay queue). */
export function backoffSteps(policy: RetryPolicy): number[] {
  const out = new Set<number>();
  for (let a = 1; a < policy.maxAttempts; a++) out.add(retryDelayMs(policy, a));
  return [...out];
}

/** Name of the delay queue of one backoff step. */
export function delayQueue(names: JobNames, delayMs: number): string {
  return `${names.retry}.${delayMs}ms`;
}

/** How the task queue is declared. */
export interface TopologyOptions {
  readonly queueType: QueueType;
  /**
   * Quorum queues: deliveries of one message before RabbitMQ dead-letters it. A backstop above
   * the crash budget: the broker turns each redelivery into a fresh copy on receipt, so only a
   * message whose receivers keep dying before they can copy it reaches the limit.
   */
  readonly deliveryLimit: number;
  /**
   * The job has a `maxInFlight` cap: one consumer at a time receives its chunks
   * (`x-single-active-consumer`), with a prefetch window of the cap, so no more are in flight.
   * @default false
   */
  readonly singleActiveConsumer?: boolean;
}

/**
 * The quorum delivery limit for a crash budget: a backstop above it (the broker copies each
 * redelivery afresh on receipt, so a message reaches it only if its receivers keep dying first).
 */
export function deliveryLimit(maxCrashes: number): number {
  return maxCrashes + 2;
}

/** Declares the job's exchanges, queues and bindings; idempotent. */
export async function declareJob(
  admin: AdminChannels,
  names: JobNames,
  options: TopologyOptions,
): Promise<void> {
  await admin.run(async (ch) => {
    for (const exchange of [names.taskExchange, names.retryExchange, names.dlqExchange]) {
      await ch.assertExchange(exchange, "direct", { durable: true });
    }
    await ch.assertExchange(names.resultsExchange, "direct", { durable: true });
    await ch.assertExchange(names.control, "fanout", { durable: true });
  });
  await ensureQueue(admin, names.tasks, taskQueueArguments(names, options));
  await ensureQueue(admin, names.retry, {
    "x-message-ttl": LEGACY_RETRY_TTL_MS,
    "x-dead-letter-exchange": names.taskExchange,
    "x-dead-letter-routing-key": names.tasks,
  });
  await ensureQueue(admin, names.dlq, {});
  await ensureQueue(admin, names.results, {});
  await admin.run(async (ch) => {
    await ch.bindQueue(names.tasks, names.taskExchange, names.tasks);
    await ch.bindQueue(names.retry, names.retryExchange, names.retryKey);
    await ch.bindQueue(names.dlq, names.dlqExchange, names.dlq);
    await ch.bindQueue(names.results, names.resultsExchange, names.results);
    await ch.assertQueue(names.stats, { durable: true });
    await ch.assertQueue(names.presence, { durable: true });
  });
}

/** Declares (again) the delay queue of one backoff step, so it cannot have expired. */
export async function declareDelayQueue(
  admin: AdminChannels,
  names: JobNames,
  delayMs: number,
): Promise<string> {
  const queue = delayQueue(names, delayMs);
  await admin.run(async (ch) => {
    await ch.assertQueue(queue, {
      durable: true,
      arguments: {
        "x-message-ttl": delayMs,
        "x-dead-letter-exchange": names.taskExchange,
        "x-dead-letter-routing-key": names.tasks,
        "x-expires": delayMs + 60_000,
      },
    });
    await ch.bindQueue(queue, names.retryExchange, queue);
  });
  return queue;
}

/** Declares the job-record queue: one message at most, a second publish is refused (nack). */
export async function declareJobRecordQueue(admin: AdminChannels, names: JobNames): Promise<void> {
  await admin.run((ch) =>
    ch.assertQueue(names.job, {
      durable: true,
      arguments: { "x-max-length": 1, "x-overflow": "reject-publish" },
    })
  );
}

/** Deletes every queue and exchange of the job (delay queues of the given steps too). */
export async function deleteJob(
  admin: AdminChannels,
  names: JobNames,
  delaysMs: Iterable<number>,
): Promise<void> {
  await admin.run(async (ch) => {
    const queues = [
      names.tasks,
      names.retry,
      names.dlq,
      names.results,
      names.job,
      names.stats,
      names.presence,
      names.lock,
    ];
    for (const ms of delaysMs) queues.push(delayQueue(names, ms));
    for (const queue of queues) await ch.deleteQueue(queue);
    const exchanges = [
      names.taskExchange,
      names.retryExchange,
      names.dlqExchange,
      names.resultsExchange,
      names.control,
    ];
    for (const exchange of exchanges) await ch.deleteExchange(exchange);
  });
}

/** Arguments of a job's task queue: none for the predecessor's, else priorities or quorum. */
export function taskQueueArguments(
  names: JobNames,
  options: TopologyOptions,
): Record<string, unknown> {
  if (names.legacy) return {};
  const single = options.singleActiveConsumer ? { "x-single-active-consumer": true } : {};
  if (options.queueType === "quorum") {
    return {
      ...single,
      "x-queue-type": "quorum",
      "x-delivery-limit": options.deliveryLimit,
      "x-dead-letter-exchange": names.dlqExchange,
      "x-dead-letter-routing-key": names.dlq,
    };
  }
  return { ...single, "x-max-priority": MAX_PRIORITY };
}

/** Declares `queue` with `args` unless it exists (then it is used as it is). */
async function ensureQueue(
  admin: AdminChannels,
  queue: string,
  args: Record<string, unknown>,
): Promise<void> {
  if (await admin.probe(queue)) return;
  await admin.run((ch) => ch.assertQueue(queue, { durable: true, arguments: args }));
}
