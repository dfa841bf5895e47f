/**
 * Conformance cases of a shared fleet: a pull across jobs takes the highest aged priority first
 * (even mid-run of a lower job), ages a waiting low job past fresh high ones, shares equal jobs,
 * keeps a job under its `maxInFlight` over every consumer, sees a job's chunks published after
 * the pull began, and keeps each job's results its own.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Broker, Delivery, JobRecord } from "../../brokers/broker.ts";
import { type CaseRegistry, makeTasks, resultFor, sleep } from "./support.ts";

function record(jobId: string, totalChunks: number, maxInFlight?: number): JobRecord {
  return {
    jobId,
    handler: "ttg.sweep",
    totalParams: totalChunks * 10,
    totalChunks,
    chunkSize: 10,
    createdAt: new Date().toISOString(),
    args: {},
    ...(maxInFlight === undefined ? {} : { maxInFlight }),
  };
}

/** Records and publishes a job of `count` chunks at `priority`. */
async function submit(
  broker: Broker,
  jobId: string,
  count: number,
  priority: number,
  maxInFlight?: number,
): Promise<void> {
  await broker.createJob(record(jobId, count, maxInFlight));
  await broker.publish(makeTasks(jobId, count, { priority }));
}

/** Pulls across `jobIds` until `count` deliveries came (or fails after a few seconds). */
async function pullAcross(
  broker: Broker,
  jobIds: readonly string[],
  count: number,
  max = 1,
): Promise<Delivery[]> {
  const out: Delivery[] = [];
  const deadline = Date.now() + 10_000;
  while (out.length < count) {
    assert.ok(Date.now() < deadline, `pulled only ${out.length} of ${count} chunks across jobs`);
    out.push(...await broker.pull({ jobIds, max: Math.min(max, count - out.length), waitMs: 200 }));
  }
  return out;
}

/** Acks every delivery with its result. */
async function ackAll(broker: Broker, deliveries: readonly Delivery[]): Promise<void> {
  const outcomes = await broker.ack(deliveries.map((d) => ({ delivery: d, result: resultFor(d) })));
  assert.deepEqual(new Set(outcomes), new Set(["stored"]));
}

/** Registers the fleet cases. */
export function fleetCases(test: CaseRegistry): void {
  test(
    "across-priority",
    "a pull across jobs takes the high-priority job's chunks first, even mid-run of a low one",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const [low, high] = [jobId, `${jobId}-b`];
      await submit(broker, low, 30, 0);
      const early = await pullAcross(broker, [low, high], 4, 2);
      assert.ok(early.every((d) => d.task.jobId === low));
      await ackAll(broker, early);
      await submit(broker, high, 6, 9);
      const next = await pullAcross(broker, [low, high], 6, 2);
      assert.deepEqual(next.map((d) => d.task.jobId), Array(6).fill(high));
      const after = await pullAcross(broker, [low, high], 2, 2);
      assert.deepEqual(after.map((d) => d.task.jobId), [low, low]);
      await ackAll(broker, [...next, ...after]);
    },
  );

  test(
    "across-aging",
    "a low-priority job that waited long enough is taken before fresh high-priority chunks",
    async ({ setup, jobId }) => {
      const broker = await setup.open({ priorityAgingMs: 40 });
      const [low, high] = [jobId, `${jobId}-b`];
      await submit(broker, low, 5, 0);
      await sleep(600); // 15 aging intervals: the low chunks now rank above a fresh 10
      await submit(broker, high, 20, 10);
      const first = await pullAcross(broker, [high, low], 3, 3);
      assert.ok(
        first.some((d) => d.task.jobId === low),
        `the first pulls were ${first.map((d) => d.task.jobId).join(", ")}`,
      );
      await ackAll(broker, first);
    },
  );

  test(
    "across-fair",
    "jobs of equal priority share a pull across them instead of one waiting for the other",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const [a, b] = [jobId, `${jobId}-b`];
      await submit(broker, a, 40, 3);
      await submit(broker, b, 40, 3);
      const held = await pullAcross(broker, [a, b], 20, 4);
      const ofA = held.filter((d) => d.task.jobId === a).length;
      assert.ok(Math.abs(ofA - (20 - ofA)) <= 4, `job a got ${ofA} of 20, job b ${20 - ofA}`);
      await ackAll(broker, held);
    },
  );

  test(
    "max-in-flight",
    "a job's maxInFlight bounds its chunks in flight over every consumer, pulled alone or across",
    async ({ setup, jobId }) => {
      const [one, two] = [await setup.open(), await setup.open()];
      const other = `${jobId}-b`;
      await submit(one, jobId, 12, 0, 3);
      await submit(one, other, 4, 0);
      const first = await one.pull({ jobId, max: 10, waitMs: 500 });
      const second = await two.pull({ jobIds: [jobId, other], max: 10, waitMs: 500 });
      const capped = [...first, ...second].filter((d) => d.task.jobId === jobId);
      assert.equal(capped.length, 3, "three of the capped job in flight");
      assert.equal(second.filter((d) => d.task.jobId === other).length, 4);
      assert.deepEqual(await two.pull({ jobId, max: 5, waitMs: 100 }), []);
      await ackAll(one, first);
      await ackAll(two, second);
      // Room for three again once they completed (a broker may hand them over in more than one
      // pull), and for no more.
      const more = await pullAcross(two, [jobId, other], 3, 10);
      assert.deepEqual(await two.pull({ jobIds: [jobId, other], max: 5, waitMs: 100 }), []);
      await ackAll(two, more);
    },
  );

  test(
    "across-late",
    "a pull across jobs waiting for work takes a chunk published after it began",
    async ({ setup, jobId }) => {
      const [worker, producer] = [await setup.open(), await setup.open()];
      const [a, b] = [jobId, `${jobId}-b`];
      await worker.createJob(record(a, 1));
      const waiting = worker.pull({ jobIds: [a, b], max: 2, waitMs: 3000 });
      await sleep(150);
      await submit(producer, b, 1, 0);
      const got = await waiting;
      assert.deepEqual(got.map((d) => d.task.jobId), [b]);
      await ackAll(worker, got);
    },
  );

  test(
    "across-results",
    "deliveries of several jobs acked in one batch store each result under its own job",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const [a, b] = [jobId, `${jobId}-b`];
      await submit(broker, a, 3, 0);
      await submit(broker, b, 2, 0);
      const held = await pullAcross(broker, [a, b], 5, 5);
      await ackAll(broker, held);
      for (const [id, n] of [[a, 3], [b, 2]] as const) {
        const page = await broker.results(id);
        assert.equal(page.results.length, n);
        assert.equal((await broker.stats(id)).completed, n);
      }
    },
  );
}
