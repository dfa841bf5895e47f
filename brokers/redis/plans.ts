/**
 * The failure policy's plans as arguments of the Redis scripts, and the two-phase reclaim: the
 * takeover script takes lapsed entries over and returns them with their holders, each is planned
 * with policy.ts `planExpiry` (or, when it is not a chunk, `malformedLetter`), and the expire
 * script applies the plans to the entries still held under that takeover. The scripts decide
 * nothing: they apply what is planned here, as policy.ts `underControl` has it for the job's
 * control, which they read in the same step (in a cancelled job, every plan is `cancel`).
 *
 * @module
 */
import type { PlannedNack } from "../guard.ts";
import {
  type ExpiryPlan,
  type LetterFields,
  malformedLetter,
  type NackPlan,
  planExpiry,
  REASONS,
  type RetryPolicy,
} from "../policy.ts";
import { decodeTask, encodeTask } from "./codec.ts";

/** Requests of the nack or expire script: per request receipt, [epoch,] action, n, n values. */
type Requests = (string | number)[];

/** The dead-letter values of the scripts: kind, reason, attempts, history, at[, raw]. */
function letterValues(letter: LetterFields, raw?: string): string[] {
  const values = [
    letter.kind,
    letter.reason,
    String(letter.attempts),
    JSON.stringify(letter.history),
    letter.at,
  ];
  return raw === undefined ? values : [...values, raw];
}

/** The action and values of a plan, as the nack and expire scripts read them. */
function planValues(plan: NackPlan | ExpiryPlan): [string, string[]] {
  switch (plan.action) {
    case "release":
      return ["release", []];
    case "cancel":
      return ["cancel", []];
    case "retry":
      return [
        "retry",
        [String(plan.attempt - 1), JSON.stringify(plan.history), String(plan.delayMs)],
      ];
    case "requeue":
      return [
        "requeue",
        [String(plan.attempt - 1), String(plan.crashes), JSON.stringify(plan.history)],
      ];
    case "split":
      return [
        "split",
        plan.parts.flatMap((part) => {
          const fields = encodeTask(part);
          return [String(fields.length), ...fields];
        }),
      ];
    case "dead":
      return ["dead", letterValues(plan.letter)];
  }
}

function request(head: (string | number)[], [action, values]: [string, string[]]): Requests {
  return [...head, action, values.length, ...values];
}

/** The nack script's arguments after base, job and consumer: one request per planned nack. */
export function nackArgs(requests: readonly PlannedNack[]): Requests {
  return requests.flatMap(({ delivery, plan }) =>
    request([delivery.receipt, delivery.epoch], planValues(plan))
  );
}

/** The nack script's request that dead-letters a claimed entry that is not a chunk. */
export function malformedArgs(
  receipt: string,
  epoch: number,
  letter: { reason: string; raw: string },
  consumerId: string,
  now: number,
): Requests {
  const values = letterValues(malformedLetter(letter.reason, consumerId, now), letter.raw);
  return request([receipt, epoch], ["dead", values]);
}

/** An entry the takeover script took over: receipt, holder, cause, fields. */
export type TakenEntry = [
  receipt: string,
  holder: string,
  cause: "lease" | "gone",
  fields: string[],
];

/** What the expire script needs to know of the reclaim. */
export interface ExpiryContext {
  readonly jobId: string;
  readonly leaseMs: number;
  readonly retry: RetryPolicy;
  readonly now: number;
}

/**
 * The expire script's arguments after base, job and consumer: each taken entry with its plan
 * (requeue with one more crash and the same attempt, or split or dead once the crash budget is
 * spent; a message that is not a chunk is dead-lettered as malformed).
 */
export function expireArgs(taken: readonly TakenEntry[], context: ExpiryContext): Requests {
  const { jobId, leaseMs, retry, now } = context;
  return taken.flatMap(([receipt, holder, cause, fields]) => {
    const id = receipt.slice(receipt.indexOf(":") + 1);
    const decoded = decodeTask(jobId, id, fields);
    if (!decoded.ok) {
      const letter = malformedLetter(decoded.reason, holder, now);
      return request([receipt], ["dead", letterValues(letter, decoded.raw)]);
    }
    const state = {
      task: decoded.task,
      attempt: decoded.attempts + 1,
      crashes: decoded.crashes,
      history: decoded.history,
    };
    const reason = cause === "gone" ? REASONS.disconnected(holder) : REASONS.leaseExpired(leaseMs);
    const plan = planExpiry(state, { holder, reason }, retry, now);
    return request([receipt], planValues(plan));
  });
}
