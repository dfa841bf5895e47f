import assert from "node:assert/strict";
import {
  agedPriority,
  bisect,
  type ChunkState,
  DEFAULT_RETRY,
  isLastAttempt,
  malformedLetter,
  planExpiry,
  planNack,
  REASONS,
  reconnectDelayMs,
  retryDelayMs,
  type RetryPolicy,
} from "../brokers/policy.ts";
import { makeTasks } from "./conformance.ts";

const NOW = Date.parse("2026-12-01T12:00:00Z");
const policy: RetryPolicy = { ...DEFAULT_RETRY, maxAttempts: 3, maxCrashes: 2, minSplit: 1 };

function state(overrides: Partial<ChunkState> = {}, size = 10): ChunkState {
  const [task] = makeTasks("job", 1, {}, size);
  return { task: task!, attempt: 1, crashes: 0, history: [], ...overrides };
}

const failed = { kind: "failed", reason: "boom", workerId: "w1" } as const;

Deno.test("policy: a failure before the last attempt is retried after the backoff of its attempt", () => {
  const plan = planNack(state({ attempt: 2 }), failed, policy, NOW);
  assert.equal(plan.action, "retry");
  if (plan.action !== "retry") return;
  assert.equal(plan.delayMs, retryDelayMs(policy, 2));
  assert.equal(plan.attempt, 3);
  assert.deepEqual(plan.history, [{
    attempt: 2,
    kind: "failed",
    reason: "boom",
    workerId: "w1",
    at: "2026-12-01T12:00:00.000Z",
  }]);
});

Deno.test("policy: the last failed attempt bisects a divisible chunk, else dead-letters it", () => {
  const divisible = planNack(state({ attempt: 3 }), failed, policy, NOW);
  assert.equal(divisible.action, "split");
  if (divisible.action === "split") {
    assert.deepEqual(divisible.parts.map((p) => [p.chunkId, p.start, p.end]), [
      ["00000.0", 0, 5],
      ["00000.1", 5, 10],
    ]);
    assert.equal(divisible.history.length, 1);
  }
  const [task] = makeTasks("job", 1, { divisible: false });
  const whole = planNack(state({ task: task!, attempt: 3 }), failed, policy, NOW);
  assert.equal(whole.action, "dead");
  if (whole.action === "dead") {
    assert.deepEqual(
      [whole.letter.kind, whole.letter.reason, whole.letter.attempts],
      ["failed", "boom", 3],
    );
  }
  const single = planNack(state({ attempt: 3 }, 1), failed, policy, NOW);
  assert.equal(single.action, "dead", "one parameter cannot be split");
  const coarse = planNack(state({ attempt: 3 }), failed, { ...policy, minSplit: 6 }, NOW);
  assert.equal(coarse.action, "dead", "halves would be smaller than minSplit");
});

Deno.test("policy: unrecoverable dead-letters at once; a release spends nothing", () => {
  const dead = planNack(state(), { ...failed, kind: "unrecoverable" }, policy, NOW);
  assert.equal(dead.action, "dead");
  assert.deepEqual(planNack(state({ attempt: 3 }), { ...failed, kind: "released" }, policy, NOW), {
    action: "release",
  });
  const timeout = planNack(state(), { ...failed, kind: "timeout" }, policy, NOW);
  assert.equal(timeout.action, "retry", "a timeout is a failed attempt");
});

Deno.test("policy: a lost lease spends a crash, never an attempt; the crash budget bisects", () => {
  const cause = { holder: "w9", reason: REASONS.leaseExpired(3000) };
  const first = planExpiry(state({ attempt: 2 }), cause, policy, NOW);
  assert.deepEqual(first, {
    action: "requeue",
    attempt: 2,
    crashes: 1,
    history: [{
      attempt: 2,
      kind: "expired",
      reason: "Lease expired: no heartbeat for 3000 ms",
      workerId: "w9",
      at: "2026-12-01T12:00:00.000Z",
    }],
  });
  const spent = planExpiry(state({ attempt: 2, crashes: 1 }), cause, policy, NOW);
  assert.equal(spent.action, "split");
  const last = planExpiry(state({ crashes: 1 }, 1), cause, policy, NOW);
  assert.equal(last.action, "dead");
  if (last.action === "dead") {
    assert.equal(last.letter.kind, "expired");
    assert.equal(last.letter.attempts, 1);
    assert.match(last.letter.reason, /2 leases lost in all/);
  }
});

Deno.test("policy: the last-attempt rule, backoffs, aging and bisection", () => {
  assert.deepEqual([1, 2, 3].map((a) => isLastAttempt(policy, a)), [false, false, true]);
  assert.deepEqual([1, 2, 3, 9].map((a) => retryDelayMs(DEFAULT_RETRY, a)), [
    1000,
    2000,
    4000,
    30_000,
  ]);
  assert.equal(reconnectDelayMs(3, { baseMs: 100, maxMs: 5000, random: () => 0 }), 400);
  assert.equal(reconnectDelayMs(30, { baseMs: 100, maxMs: 5000, random: () => 0.999 }), 5999);
  assert.equal(agedPriority(0, 59_999, 30_000), 1);
  assert.equal(bisect(makeTasks("j", 1, { divisible: false })[0]!, 1), undefined);
});

Deno.test("policy: a malformed message's dead letter records no attempt", () => {
  const letter = malformedLetter("message is not JSON", "w1", NOW);
  assert.deepEqual(letter, {
    kind: "malformed",
    reason: "message is not JSON",
    attempts: 0,
    history: [{
      attempt: 0,
      kind: "malformed",
      reason: "message is not JSON",
      workerId: "w1",
      at: "2026-12-01T12:00:00.000Z",
    }],
    at: "2026-12-01T12:00:00.000Z",
  });
});
