/**
 * The failure policy, decided once for every broker: what becomes of a chunk whose handler failed,
 * whose lease was lost, or whose message cannot be read. Pure functions (no I/O, `now` passed in):
 * each broker turns a plan into one atomic step of its own (an SQL transaction, a Lua script, a
 * confirmed publish followed by an ack) and decides nothing itself.
 *
 * Two budgets, because they measure different things:
 * - **attempts** count the chunk's own failures (a thrown error, a timeout). The last failed
 *   attempt bisects the chunk (a poison chunk ends as the minimal failing ranges) or, when it
 *   cannot be split, dead-letters it.
 * - **crashes** count leases lost without an answer (the worker died, froze or was cut off). A
 *   crash never spends an attempt, so a storm of worker deaths cannot dead-letter healthy work; a
 *   chunk that keeps killing its workers exhausts the crash budget and is bisected the same way,
 *   so only the parameters that kill end as dead letters (kind `expired`).
 *
 * @module
 */
import type {
  AttemptRecord,
  CancelPlan,
  ChunkState,
  DeadPlan,
  ExpiryPlan,
  LetterFields,
  NackPlan,
  NackReason,
  SplitPlan,
} from "./plans.ts";
import { REASONS } from "./plans.ts";
import type { ChunkTask } from "./task.ts";

export type {
  AttemptKind,
  AttemptRecord,
  CancelPlan,
  ChunkState,
  DeadPlan,
  ExpiryPlan,
  LetterFields,
  NackKind,
  NackPlan,
  NackReason,
  SplitPlan,
} from "./plans.ts";
export { REASONS } from "./plans.ts";

/** Retries with exponential backoff, bisection, and the two budgets of a chunk. */
export interface RetryPolicy {
  /** Failed attempts in all (the first included) before the chunk is bisected or dead-lettered. @default 4 */
  readonly maxAttempts: number;
  /** Delay before the first retry. @default 1000 */
  readonly baseDelayMs: number;
  /** Growth of the delay per retry. @default 2 */
  readonly factor: number;
  /** Upper bound of a delay. @default 30000 */
  readonly maxDelayMs: number;
  /**
   * Leases a chunk may lose (its worker died or froze while holding it) before it is bisected, or
   * dead-lettered as `expired` when it cannot be split. @default 6
   */
  readonly maxCrashes: number;
  /** Smallest range, in parameters, bisection splits down to. @default 1 */
  readonly minSplit: number;
}

/** Defaults of {@linkcode RetryPolicy}. */
export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  maxAttempts: 4,
  baseDelayMs: 1000,
  factor: 2,
  maxDelayMs: 30_000,
  maxCrashes: 6,
  minSplit: 1,
});

/**
 * Delay before retrying after failed attempt number `attempt` (1-based).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_RETRY, retryDelayMs } from "./policy.ts";
 * assert.equal(retryDelayMs(DEFAULT_RETRY, 1), 1000);
 * assert.equal(retryDelayMs(DEFAULT_RETRY, 3), 4000);
 * ```
 */
export function retryDelayMs(policy: RetryPolicy, attempt: number): number {
  const delay = policy.baseDelayMs * policy.factor ** Math.max(0, attempt - 1);
  return Math.min(policy.maxDelayMs, Math.round(delay));
}

/** Bounds of {@linkcode reconnectDelayMs}. */
export interface BackoffOptions {
  /** Delay after the first failure. @default 50 */
  readonly baseMs?: number;
  /** Upper bound. @default 2000 */
  readonly maxMs?: number;
  /** Source of jitter in [0, 1). @default Math.random */
  readonly random?: () => number;
}

/**
 * Delay before trying again after `failures` failed tries of a connection or a broker call:
 * doubling from `baseMs` up to `maxMs`, with up to 20% jitter so a fleet does not retry in step.
 * The one backoff of brokers (reconnects) and the worker (pulls and commits that failed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reconnectDelayMs } from "./policy.ts";
 * assert.equal(reconnectDelayMs(1, { random: () => 0 }), 50);
 * assert.equal(reconnectDelayMs(20, { random: () => 0 }), 2000);
 * ```
 */
export function reconnectDelayMs(failures: number, options: BackoffOptions = {}): number {
  const { baseMs = 50, maxMs = 2000, random = Math.random } = options;
  const base = Math.min(maxMs, baseMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
  return Math.round(base * (1 + 0.2 * random()));
}

/**
 * Priority of a task that has waited `waitedMs`, for ordering: one level more per `agingMs`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { agedPriority } from "./policy.ts";
 * assert.equal(agedPriority(2, 65_000, 30_000), 4);
 * ```
 */
export function agedPriority(priority: number, waitedMs: number, agingMs: number): number {
  return priority + Math.floor(Math.max(0, waitedMs) / agingMs);
}

/**
 * The halves of `task`, or undefined when it must not be split (indivisible, or a half would be
 * smaller than `minSize` parameters).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bisect } from "./policy.ts";
 * const task = { jobId: "j", chunkId: "00012", handler: "ttg.sweep", start: 1200, end: 1300,
 *   totalParams: 10000, totalChunks: 100, priority: 0, createdAt: "", args: {}, divisible: true };
 * const halves = bisect(task, 1)!;
 * assert.equal(halves[0]!.chunkId, "00012.0");
 * assert.equal(halves[1]!.start, 1250);
 * ```
 */
export function bisect(task: ChunkTask, minSize: number): ChunkTask[] | undefined {
  const size = task.end - task.start;
  if (!task.divisible || size < 2 * Math.max(1, minSize)) return undefined;
  const middle = task.start + Math.floor(size / 2);
  return [
    { ...task, chunkId: `${task.chunkId}.0`, end: middle },
    { ...task, chunkId: `${task.chunkId}.1`, start: middle },
  ];
}

/** True when a failure on `attempt` leaves no attempt: the chunk is bisected or dead-lettered. */
export function isLastAttempt(policy: RetryPolicy, attempt: number): boolean {
  return attempt >= policy.maxAttempts;
}

/**
 * True when losing one more lease spends the chunk's crash budget (`crashes` so far): its expiry
 * then splits or dead-letters it instead of queueing it again.
 */
export function isLastCrash(policy: RetryPolicy, crashes: number): boolean {
  return crashes + 1 >= policy.maxCrashes;
}

function iso(now: number): string {
  return new Date(now).toISOString();
}

/** The budget is spent: split when the chunk can be split, else dead-letter it with `record`. */
function splitOrDead(
  state: ChunkState,
  record: AttemptRecord,
  policy: RetryPolicy,
  now: number,
): SplitPlan | DeadPlan {
  const history = [...state.history, record];
  const parts = bisect(state.task, policy.minSplit);
  if (parts) return { action: "split", parts, history };
  return {
    action: "dead",
    letter: {
      kind: record.kind,
      reason: record.reason,
      attempts: state.attempt,
      history,
      at: iso(now),
    },
  };
}

/**
 * What becomes of a delivery its worker gave back: released at once (no attempt spent), retried
 * after a backoff, bisected after its last attempt, or dead-lettered (at once when unrecoverable,
 * or after its last attempt when it cannot be split).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_RETRY, planNack } from "./policy.ts";
 * const task = { jobId: "j", chunkId: "00001", handler: "h", start: 0, end: 10, totalParams: 10,
 *   totalChunks: 1, priority: 0, createdAt: "", args: {}, divisible: true };
 * const failed = { kind: "failed", reason: "boom", workerId: "w" } as const;
 * const state = { task, attempt: 1, crashes: 0, history: [] };
 * assert.equal(planNack(state, failed, DEFAULT_RETRY, 0).action, "retry");
 * assert.equal(planNack({ ...state, attempt: 4 }, failed, DEFAULT_RETRY, 0).action, "split");
 * ```
 */
export function planNack(
  state: ChunkState,
  request: NackReason,
  policy: RetryPolicy,
  now: number,
): NackPlan {
  if (request.kind === "released") return { action: "release" };
  const record: AttemptRecord = {
    attempt: state.attempt,
    kind: request.kind,
    reason: request.reason,
    workerId: request.workerId,
    at: iso(now),
  };
  if (request.kind === "unrecoverable") {
    const history = [...state.history, record];
    return {
      action: "dead",
      letter: {
        kind: record.kind,
        reason: record.reason,
        attempts: state.attempt,
        history,
        at: iso(now),
      },
    };
  }
  if (isLastAttempt(policy, state.attempt)) return splitOrDead(state, record, policy, now);
  return {
    action: "retry",
    delayMs: retryDelayMs(policy, state.attempt),
    attempt: state.attempt + 1,
    history: [...state.history, record],
  };
}

/** Who held a lost lease, and why it was lost. */
export interface ExpiryCause {
  /** Consumer that held the lease ("unknown" when the broker cannot tell). */
  readonly holder: string;
  /** Why the lease was lost, one of {@linkcode REASONS}. */
  readonly reason: string;
}

/**
 * What becomes of a chunk whose lease was lost without an answer: back in the queue with the
 * same attempt number and one more crash, or, once the crash budget is spent, bisected (or
 * dead-lettered as `expired` when it cannot be split).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_RETRY, planExpiry } from "./policy.ts";
 * const task = { jobId: "j", chunkId: "00001", handler: "h", start: 0, end: 1, totalParams: 1,
 *   totalChunks: 1, priority: 0, createdAt: "", args: {}, divisible: true };
 * const cause = { holder: "w", reason: "Lease expired" };
 * const plan = planExpiry({ task, attempt: 2, crashes: 0, history: [] }, cause, DEFAULT_RETRY, 0);
 * assert.deepEqual([plan.action, plan.action === "requeue" && plan.attempt], ["requeue", 2]);
 * const last = planExpiry({ task, attempt: 2, crashes: 5, history: [] }, cause, DEFAULT_RETRY, 0);
 * assert.equal(last.action, "dead");
 * ```
 */
export function planExpiry(
  state: ChunkState,
  cause: ExpiryCause,
  policy: RetryPolicy,
  now: number,
): ExpiryPlan {
  const crashes = state.crashes + 1;
  const spent = isLastCrash(policy, state.crashes);
  const record: AttemptRecord = {
    attempt: state.attempt,
    kind: "expired",
    reason: spent ? `${cause.reason} (${REASONS.crashBudget(crashes)})` : cause.reason,
    workerId: cause.holder,
    at: iso(now),
  };
  if (spent) return splitOrDead(state, record, policy, now);
  return {
    action: "requeue",
    attempt: state.attempt,
    crashes,
    history: [...state.history, record],
  };
}

/**
 * A plan as the job's control state has it: in a cancelled job, a chunk that comes back (given
 * back, failed, or its lease lost) is cancelled instead of being queued, split or dead-lettered.
 * Brokers apply it with the control state they read inside the same atomic step.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { underControl } from "./policy.ts";
 * assert.deepEqual(underControl({ action: "release" }, "cancelled"), { action: "cancel" });
 * assert.deepEqual(underControl({ action: "release" }, "paused"), { action: "release" });
 * ```
 */
export function underControl<P extends NackPlan | ExpiryPlan>(
  plan: P,
  control: "running" | "paused" | "cancelled",
): P | CancelPlan {
  return control === "cancelled" ? { action: "cancel" } : plan;
}

/**
 * The dead letter of a message that cannot be read as a chunk: kind `malformed`, no attempt made.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { malformedLetter } from "./policy.ts";
 * const letter = malformedLetter("message is not JSON", "w", 0);
 * assert.deepEqual([letter.kind, letter.attempts, letter.history.length], ["malformed", 0, 1]);
 * ```
 */
export function malformedLetter(reason: string, workerId: string, now: number): LetterFields {
  const record: AttemptRecord = { attempt: 0, kind: "malformed", reason, workerId, at: iso(now) };
  return { kind: "malformed", reason, attempts: 0, history: [record], at: iso(now) };
}

/**
 * Checks a policy; throws a `RangeError` naming the first field out of range.
 */
export function assertRetryPolicy(policy: RetryPolicy): void {
  const whole = (name: keyof RetryPolicy, min: number) => {
    const value = policy[name];
    if (!Number.isSafeInteger(value) || value < min) {
      throw new RangeError(`Invalid retry.${name} "${value}": expected a whole number from ${min}`);
    }
  };
  whole("maxAttempts", 1);
  whole("maxCrashes", 1);
  whole("minSplit", 1);
  for (const name of ["baseDelayMs", "maxDelayMs"] as const) {
    if (!(policy[name] >= 0) || !Number.isFinite(policy[name])) {
      throw new RangeError(`Invalid retry.${name} "${policy[name]}": expected 0 or more`);
    }
  }
  if (!(policy.factor >= 1) || !Number.isFinite(policy.factor)) {
    throw new RangeError(`Invalid retry.factor "${policy.factor}": expected 1 or more`);
  }
}
