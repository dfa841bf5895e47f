/**
 * Conformance cases: what becomes of a chunk its worker gave back (retry, bisection,
 * dead-lettering, release), dead letters (their shape, replay, purge) and malformed messages.
 *
 * @module
 */
import { allResults } from "../../brokers/results.ts";
import assert from "node:assert/strict";
import type { Broker, DeadLetter, Delivery } from "../../brokers/broker.ts";
import {
  assertAccounted,
  type CaseRegistry,
  eventually,
  makeTasks,
  pullAll,
  resultFor,
} from "./support.ts";

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** Checks a dead letter's shape: the same fields, types and history on every broker. */
export function assertLetterShape(letter: DeadLetter, jobId: string): void {
  assert.equal(typeof letter.id, "string");
  assert.ok(letter.id.length > 0, "a dead letter has an id");
  assert.equal(letter.jobId, jobId);
  assert.ok(letter.reason.length > 0, "a dead letter has a reason");
  assert.match(letter.at, ISO);
  assert.ok(Number.isSafeInteger(letter.attempts) && letter.attempts >= 0);
  assert.ok(letter.history.length >= 1, "the final record is in the history");
  const last = letter.history[letter.history.length - 1]!;
  assert.equal(last.kind, letter.kind, "the history ends with the record that dead-lettered it");
  for (const record of letter.history) {
    assert.deepEqual(Object.keys(record).sort(), ["at", "attempt", "kind", "reason", "workerId"]);
    assert.match(record.at, ISO);
    assert.equal(typeof record.workerId, "string");
  }
  if (letter.kind === "malformed") {
    assert.equal(letter.task, null);
    assert.equal(typeof letter.raw, "string");
    assert.equal(letter.attempts, 0);
  } else {
    assert.ok(letter.task, "a chunk's dead letter holds the chunk");
    assert.equal(letter.task.jobId, jobId);
  }
}

/** Fails one delivery and pulls it again after its backoff, `times` times. */
async function failRepeatedly(
  broker: Broker,
  jobId: string,
  times: number,
): Promise<{ outcomes: string[]; last: Delivery }> {
  const outcomes: string[] = [];
  let last: Delivery | undefined;
  for (let i = 1; i <= times; i++) {
    const [d] = await pullAll(broker, jobId, 1);
    assert.equal(d!.attempt, i, `attempt ${i}`);
    last = d;
    outcomes.push(
      ...await broker.nack([{ delivery: d!, kind: "failed", reason: `boom ${i}`, workerId: "w1" }]),
    );
  }
  return { outcomes, last: last! };
}

/** Registers the failure cases. */
export function failureCases(test: CaseRegistry): void {
  test(
    "retry",
    "nack() retries after the backoff with the next attempt and the failure in history",
    async ({ setup, jobId }) => {
      const broker = await setup.open({
        retry: { maxAttempts: 4, baseDelayMs: 600, factor: 2, maxDelayMs: 10_000 },
      });
      await broker.publish(makeTasks(jobId, 1));
      const [d1] = await pullAll(broker, jobId, 1);
      const [outcome] = await broker.nack([{
        delivery: d1!,
        kind: "timeout",
        reason: "took too long",
        workerId: "w1",
      }]);
      assert.equal(outcome, "retrying");
      const stats = await broker.stats(jobId);
      assert.equal(stats.delayed, 1, "a retrying chunk counts as delayed");
      assert.equal(stats.retried, 1);
      assertAccounted(stats, 1);
      assert.deepEqual(await broker.pull({ jobId, max: 1, waitMs: 0 }), [], "retried early");
      const [d2] = await pullAll(broker, jobId, 1);
      assert.equal(d2!.attempt, 2);
      assert.equal(d2!.crashes, 0);
      assert.ok(d2!.epoch > d1!.epoch, `epoch ${d2!.epoch} should exceed ${d1!.epoch}`);
      assert.deepEqual(
        d2!.history.map((h) => [h.attempt, h.kind, h.reason, h.workerId]),
        [[1, "timeout", "took too long", "w1"]],
      );
    },
  );

  test(
    "poison",
    "an indivisible chunk that fails every attempt is dead-lettered with its reason and history",
    async ({ setup, jobId }) => {
      const broker = await setup.open({ retry: { maxAttempts: 3, baseDelayMs: 50, factor: 1 } });
      await broker.publish(makeTasks(jobId, 1, { divisible: false }));
      const { outcomes } = await failRepeatedly(broker, jobId, 3);
      assert.deepEqual(outcomes, ["retrying", "retrying", "dead_lettered"]);
      assert.deepEqual(await broker.pull({ jobId, max: 1, waitMs: 300 }), []);
      const [letter, ...more] = await broker.deadLetters.list(jobId);
      assert.equal(more.length, 0);
      assertLetterShape(letter!, jobId);
      assert.equal(letter!.task?.chunkId, "00000");
      assert.equal(letter!.reason, "boom 3");
      assert.equal(letter!.kind, "failed");
      assert.equal(letter!.attempts, 3);
      assert.deepEqual(letter!.history.map((h) => h.reason), ["boom 1", "boom 2", "boom 3"]);
      const stats = await broker.stats(jobId);
      assert.equal(stats.deadLettered, 1);
      assertAccounted(stats, 1);
    },
  );

  test(
    "split",
    "a divisible chunk's last failed attempt bisects it: halves with fresh attempts, one step",
    async ({ setup, jobId }) => {
      const broker = await setup.open({ retry: { maxAttempts: 2, baseDelayMs: 50, factor: 1 } });
      await broker.publish(makeTasks(jobId, 1, {}, 100));
      const { outcomes } = await failRepeatedly(broker, jobId, 2);
      assert.deepEqual(outcomes, ["retrying", "split"]);
      const stats = await broker.stats(jobId);
      assert.equal(stats.splits, 1);
      assertAccounted(stats, 1);
      const parts = await pullAll(broker, jobId, 2);
      assert.deepEqual(
        parts.map((p) => [p.task.chunkId, p.task.start, p.task.end]).sort(),
        [["00000.0", 0, 50], ["00000.1", 50, 100]],
      );
      assert.ok(parts.every((p) => p.attempt === 1 && p.crashes === 0 && p.history.length === 0));
      await broker.ack(parts.map((p) => ({ delivery: p, result: resultFor(p) })));
      const results = await allResults(broker, jobId);
      assert.deepEqual(results.map((r) => r.chunkId).sort(), ["00000.0", "00000.1"]);
      assert.equal((await broker.deadLetters.list(jobId)).length, 0);
      assertAccounted(await broker.stats(jobId), 1);
    },
  );

  test(
    "minSplit",
    "bisection stops at minSplit: a chunk whose halves would be smaller is dead-lettered",
    async ({ setup, jobId }) => {
      const broker = await setup.open({
        retry: { maxAttempts: 1, baseDelayMs: 1, factor: 1, minSplit: 6 },
      });
      await broker.publish(makeTasks(jobId, 1, {}, 10));
      const [d] = await pullAll(broker, jobId, 1);
      const outcomes = await broker.nack([{
        delivery: d!,
        kind: "failed",
        reason: "x",
        workerId: "w",
      }]);
      assert.deepEqual(outcomes, ["dead_lettered"]);
      assert.equal((await broker.stats(jobId)).splits, 0);
    },
  );

  test("unrecoverable", "an unrecoverable nack dead-letters at once", async ({ setup, jobId }) => {
    const broker = await setup.open();
    await broker.publish(makeTasks(jobId, 1));
    const [d] = await pullAll(broker, jobId, 1);
    const [outcome] = await broker.nack([{
      delivery: d!,
      kind: "unrecoverable",
      reason: 'Unknown handler "x"',
      workerId: "w1",
    }]);
    assert.equal(outcome, "dead_lettered");
    const [letter] = await broker.deadLetters.list(jobId);
    assertLetterShape(letter!, jobId);
    assert.equal(letter?.kind, "unrecoverable");
    assert.equal(letter?.reason, 'Unknown handler "x"');
    assert.equal(letter?.attempts, 1);
    // A reason that is not well-formed UTF-16 (a lone surrogate, from a handler's message) is
    // stored all the same, with the other dead letter of the same call.
    await broker.publish(makeTasks(jobId, 3).slice(1));
    const more = await pullAll(broker, jobId, 2);
    const outcomes = await broker.nack(more.map((delivery, i) => ({
      delivery,
      kind: "unrecoverable" as const,
      reason: i === 0 ? "plain" : "broken \ud800 text",
      workerId: "w1",
    })));
    assert.deepEqual(outcomes, ["dead_lettered", "dead_lettered"]);
    const letters = await broker.deadLetters.list(jobId);
    assert.equal(letters.length, 3);
    assert.ok(letters.some((l) => l.reason.startsWith("broken ") && l.reason.endsWith(" text")));
    const stats = await broker.stats(jobId);
    assert.equal(stats.deadLettered, 3);
    assertAccounted(stats, 3);
  });

  test(
    "release",
    "a released delivery is back at once without burning an attempt",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      await broker.publish(makeTasks(jobId, 1));
      const [d1] = await pullAll(broker, jobId, 1);
      const [outcome] = await broker.nack([{
        delivery: d1!,
        kind: "released",
        reason: "shutting down",
        workerId: "w1",
      }]);
      assert.equal(outcome, "released");
      const [d2] = await pullAll(broker, jobId, 1, { timeoutMs: 3000 });
      assert.equal(d2!.attempt, 1);
      assert.equal(d2!.crashes, 0);
      assert.deepEqual(d2!.history, []);
      assert.ok(d2!.epoch > d1!.epoch);
      assert.equal((await broker.stats(jobId)).retried, 0);
    },
  );

  test(
    "deadLetters",
    "dead letters can be listed, replayed with fresh attempts and purged",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      await broker.publish(makeTasks(jobId, 2));
      const ds = await pullAll(broker, jobId, 2);
      await broker.nack(
        ds.map((d) => ({
          delivery: d,
          kind: "unrecoverable" as const,
          reason: "bad",
          workerId: "w",
        })),
      );
      const letters = await broker.deadLetters.list(jobId);
      assert.equal(letters.length, 2);
      assert.equal((await broker.deadLetters.list(jobId, { limit: 1 })).length, 1);
      const replayId = letters.find((l) => l.task?.chunkId === "00000")!.id;
      assert.equal(await broker.deadLetters.replay({ jobId, ids: [replayId] }), 1);
      assertAccounted(await broker.stats(jobId), 2);
      const [again] = await pullAll(broker, jobId, 1);
      assert.equal(again?.task.chunkId, "00000");
      assert.equal(again?.attempt, 1);
      assert.equal(again?.crashes, 0);
      assert.deepEqual(await broker.ack([{ delivery: again!, result: resultFor(again!) }]), [
        "stored",
      ]);
      const left = await broker.deadLetters.list(jobId);
      assert.deepEqual(left.map((l) => l.task?.chunkId), ["00001"]);
      assert.equal(
        await broker.deadLetters.replay({ jobId, ids: [replayId] }),
        0,
        "replayed twice",
      );
      assert.equal(await broker.deadLetters.purge({ jobId }), 1);
      assert.equal((await broker.deadLetters.list(jobId)).length, 0);
      const stats = await broker.stats(jobId);
      assert.equal(stats.deadLettered, 0);
      assert.equal(stats.completed, 1);
    },
  );

  test(
    "malformed",
    "malformed messages among good ones are dead-lettered with their reason; the good ones flow",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      await broker.publish(makeTasks(jobId, 2));
      await setup.injectRaw(jobId, "{not json");
      await setup.injectRaw(jobId, JSON.stringify({ jobId, chunkId: "00009" }));
      await broker.publish(makeTasks(jobId, 4).slice(2));
      const got = await pullAll(broker, jobId, 4);
      assert.deepEqual(got.map((d) => d.task.chunkId).sort(), ["00000", "00001", "00002", "00003"]);
      await broker.ack(got.map((d) => ({ delivery: d, result: resultFor(d) })));
      await eventually(async () => {
        const letters = await broker.deadLetters.list(jobId);
        assert.equal(letters.length, 2);
        for (const letter of letters) {
          assertLetterShape(letter, jobId);
          assert.equal(letter.kind, "malformed");
        }
        assert.ok(letters.some((l) => l.raw === "{not json"));
        const stats = await broker.stats(jobId);
        assert.equal(stats.malformed, 2);
        assertAccounted(stats, 4);
      }, 5000);
      assert.equal(await broker.deadLetters.replay({ jobId }), 0, "an unreadable message replayed");
    },
  );
}
