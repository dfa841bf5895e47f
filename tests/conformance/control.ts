/**
 * Conformance cases: the job index, pausing, resuming and cancelling a job (fenced like acks:
 * exactly one outcome per chunk), and the fleet registry.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { JobRecord } from "../../brokers/broker.ts";
import {
  assertAccounted,
  type CaseRegistry,
  eventually,
  makeTasks,
  pullAll,
  resultFor,
} from "./support.ts";

function record(jobId: string, totalChunks: number): JobRecord {
  return {
    jobId,
    handler: "ttg.sweep",
    totalParams: totalChunks * 10,
    totalChunks,
    chunkSize: 10,
    createdAt: new Date().toISOString(),
    args: {},
  };
}

const WORKER = {
  host: "h",
  pod: "",
  node: "",
  pid: 1,
  version: "0.1.0",
  startedAt: new Date().toISOString(),
  chunks: 0,
  params: 0,
  inFlight: 0,
  running: [],
  failures: 0,
  timeouts: 0,
};

/** Registers the control cases. */
export function controlCases(test: CaseRegistry): void {
  test(
    "listJobs",
    "listJobs() lists every recorded job with its control state; reset() removes it",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const other = `${jobId}-b`;
      await broker.createJob(record(jobId, 3));
      await broker.createJob(record(other, 2));
      await broker.control(other, "pause");
      const listed = (await broker.listJobs()).filter((j) => j.jobId.startsWith(jobId));
      assert.deepEqual(listed.map((j) => [j.jobId, j.control, j.record.totalChunks]).sort(), [
        [jobId, "running", 3],
        [other, "paused", 2],
      ]);
      await broker.reset(other);
      assert.deepEqual(
        (await broker.listJobs()).filter((j) => j.jobId.startsWith(jobId)).map((j) => j.jobId),
        [jobId],
      );
    },
  );

  test(
    "jobsVersion",
    "jobsVersion() changes when a job is recorded, paused, resumed, cancelled or reset, and not on its chunks' work",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const seen = [await broker.jobsVersion()];
      const changed = async (what: string) => {
        const version = await broker.jobsVersion();
        assert.ok(!seen.includes(version), `the version changes when ${what}`);
        seen.push(version);
      };
      await broker.createJob(record(jobId, 2));
      await changed("a job is recorded");
      await broker.publish(makeTasks(jobId, 2));
      const held = await pullAll(broker, jobId, 1, { max: 1 });
      await broker.ack(held.map((d) => ({ delivery: d, result: resultFor(d) })));
      assert.equal(await broker.jobsVersion(), seen.at(-1), "publish, pull and ack leave it");
      await broker.control(jobId, "pause");
      await changed("the job is paused");
      await broker.control(jobId, "pause");
      assert.equal(await broker.jobsVersion(), seen.at(-1), "pausing a paused job leaves it");
      await broker.control(jobId, "resume");
      await changed("the job is resumed");
      await broker.control(jobId, "cancel");
      await changed("the job is cancelled");
      await broker.reset(jobId);
      await changed("the job is reset");
    },
  );

  test(
    "pause",
    "a paused job's chunks are not handed out; those in flight finish; resume hands them out again",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      await broker.createJob(record(jobId, 4));
      await broker.publish(makeTasks(jobId, 4));
      const [held] = await pullAll(broker, jobId, 1, { max: 1 });
      assert.deepEqual(await broker.control(jobId, "pause"), {
        before: "running",
        after: "paused",
        cancelled: 0,
      });
      assert.equal((await broker.stats(jobId)).control, "paused");
      assert.deepEqual(
        await broker.pull({ jobId, max: 4, waitMs: 300 }),
        [],
        "a paused job gave out work",
      );
      assert.deepEqual(await broker.extend([held!]), ["extended"]);
      assert.deepEqual(await broker.ack([{ delivery: held!, result: resultFor(held!) }]), [
        "stored",
      ]);
      assert.equal((await broker.control(jobId, "pause")).after, "paused", "pausing twice");
      assert.equal((await broker.control(jobId, "resume")).after, "running");
      const rest = await pullAll(broker, jobId, 3);
      await broker.ack(rest.map((d) => ({ delivery: d, result: resultFor(d) })));
      assert.equal((await broker.stats(jobId)).completed, 4);
    },
  );

  test(
    "cancel",
    "cancel: queued chunks are cancelled at once, a held one learns it and is cancelled when given back, one finishing acks; final and idempotent",
    async ({ setup, jobId }) => {
      const broker = await setup.open({ retry: { baseDelayMs: 60_000 } });
      await broker.createJob(record(jobId, 6));
      await broker.publish(makeTasks(jobId, 6));
      const [running, finishing, failing] = await pullAll(broker, jobId, 3, { max: 3 });
      await broker.nack([{ delivery: failing!, kind: "failed", reason: "x", workerId: "w" }]);
      const outcome = await broker.control(jobId, "cancel");
      assert.equal(outcome.after, "cancelled");
      assert.equal(outcome.cancelled, 4, "three ready and one waiting for its retry");
      assertAccounted(await broker.stats(jobId), 6);
      assert.deepEqual(await broker.pull({ jobId, max: 6, waitMs: 300 }), []);
      assert.deepEqual(await broker.extend([running!, finishing!]), ["cancelled", "cancelled"]);
      assert.deepEqual(
        await broker.ack([{ delivery: finishing!, result: resultFor(finishing!) }]),
        [
          "stored",
        ],
      );
      assert.deepEqual(
        await broker.nack([{
          delivery: running!,
          kind: "released",
          reason: "cancelled",
          workerId: "w",
        }]),
        ["cancelled"],
      );
      const stats = await broker.stats(jobId);
      assert.deepEqual([stats.completed, stats.cancelled, stats.control], [1, 5, "cancelled"]);
      assertAccounted(stats, 6);
      assert.deepEqual(await broker.control(jobId, "cancel"), {
        before: "cancelled",
        after: "cancelled",
        cancelled: 0,
      });
      assert.equal((await broker.control(jobId, "resume")).after, "cancelled", "cancel is final");
    },
  );

  test(
    "controlRace",
    "pauses, resumes and a cancel sent at once from two consumers: the cancel is final whatever their order",
    async ({ setup, jobId }) => {
      const [a, b] = [await setup.open({ consumerId: "a" }), await setup.open({ consumerId: "b" })];
      await a.createJob(record(jobId, 2));
      for (let round = 0; round < 4; round++) {
        const others = Array.from(
          { length: 6 },
          (_, i) => (i % 2 ? a : b).control(jobId, i % 3 === 0 ? "resume" : "pause"),
        );
        const cancel = (round % 2 ? a : b).control(jobId, "cancel");
        const outcomes = await Promise.all([cancel, ...others]);
        assert.equal(outcomes[0]!.after, "cancelled");
        // Both instances come to read it (RabbitMQ's may keep a word for CONTROL_CACHE_MS).
        for (const broker of [a, b]) {
          await eventually(async () => {
            assert.equal((await broker.stats(jobId)).control, "cancelled", `round ${round}`);
          }, 3000);
        }
        // Every outcome that came after the cancel's saw it.
        for (const outcome of outcomes.slice(1)) {
          if (outcome.before === "cancelled") assert.equal(outcome.after, "cancelled");
        }
        await a.reset(jobId);
        await a.createJob(record(jobId, 2));
      }
    },
  );

  test(
    "cancelLapsed",
    "a cancelled job's chunk whose holder dies is cancelled, not queued again",
    async ({ setup, jobId }) => {
      const options = { leaseMs: 400 };
      const live = await setup.open({ ...options, consumerId: "live" });
      await live.createJob(record(jobId, 1));
      await live.publish(makeTasks(jobId, 1));
      const dead = await setup.open({ ...options, consumerId: "dead" });
      await pullAll(dead, jobId, 1);
      await live.control(jobId, "cancel");
      await dead.close();
      await eventually(async () => {
        if (live.capabilities.leases === "extend") await live.reclaim({ jobId });
        else await live.pull({ jobId, max: 1, waitMs: 100 });
        const stats = await live.stats(jobId);
        assert.deepEqual([stats.cancelled, stats.ready + stats.inFlight], [1, 0]);
        assertAccounted(stats, 1);
      });
    },
  );

  test(
    "fleet",
    "the fleet registry keeps each worker's latest report, per job, and shows a silent one as lost",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const other = `${jobId}-b`;
      await broker.fleet.report({
        ...WORKER,
        workerId: `${jobId}-w1`,
        jobId,
        state: "busy",
        chunks: 3,
        heartbeatMs: 1000,
      });
      await broker.fleet.report({
        ...WORKER,
        workerId: `${jobId}-w1`,
        jobId,
        state: "idle",
        chunks: 5,
        heartbeatMs: 1000,
      });
      await broker.fleet.report({
        ...WORKER,
        workerId: `${jobId}-w2`,
        jobId: other,
        state: "stopped",
        heartbeatMs: 1000,
      });
      // Reported with a heartbeat far shorter than the time since: lost.
      await broker.fleet.report({
        ...WORKER,
        workerId: `${jobId}-w3`,
        jobId,
        state: "busy",
        heartbeatMs: 1,
      });
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const mine = await broker.fleet.list({ jobId });
      assert.deepEqual(mine.map((w) => [w.workerId, w.state, w.chunks]), [
        [`${jobId}-w1`, "idle", 5],
        [`${jobId}-w3`, "lost", 0],
      ]);
      assert.ok(Date.now() - Date.parse(mine[0]!.lastSeen) < 10_000);
      const all = await broker.fleet.list();
      assert.ok(all.some((w) => w.workerId === `${jobId}-w2` && w.state === "stopped"));
      await assert.rejects(() => broker.fleet.list({ jobId: "a:b" }), TypeError);
    },
  );

  test(
    "retention",
    "a finished job's data expires its time to live after it finished; a running one is kept",
    async ({ setup, jobId }) => {
      const broker = await setup.open();
      const other = `${jobId}-b`;
      await broker.createJob({ ...record(jobId, 2), ttlSeconds: 5 });
      await broker.createJob(record(other, 2));
      await broker.publish([...makeTasks(jobId, 2), ...makeTasks(other, 2)]);
      const t0 = Date.now();
      assert.deepEqual(await broker.retention.apply(t0), { expired: [], marked: [] }, "running");
      const done = await pullAll(broker, jobId, 2);
      await broker.ack(done.map((d) => ({ delivery: d, result: resultFor(d) })));
      const first = await broker.retention.apply(t0);
      assert.deepEqual(first.marked, [jobId], "seen finished");
      assert.ok((await broker.retention.finished()).has(jobId));
      assert.deepEqual((await broker.retention.apply(t0 + 4_000)).expired, [], "not yet");
      assert.deepEqual((await broker.retention.apply(t0 + 5_000)).expired, [jobId]);
      assert.deepEqual(await setup.traces(jobId), [], "its data is gone");
      assert.equal(await broker.getJob(jobId), null);
      // The broker-wide default applies to a job without its own, once it finished too.
      await broker.retention.setDefaultTtl(1);
      try {
        assert.equal(await broker.retention.defaultTtl(), 1);
        assert.deepEqual((await broker.retention.apply(t0 + 10_000)).expired, [], "other runs");
        assert.equal((await broker.stats(other)).ready, 2);
      } finally {
        await broker.retention.setDefaultTtl(null);
      }
      assert.equal(await broker.retention.defaultTtl(), null);
    },
  );
}
