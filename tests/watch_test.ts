/**
 * What `ttg monitor`, `ttg exporter` and the dashboard read and show, on a real SQLite broker:
 * snapshots of one job or all, trends, the screen, the plain lines, the JSON, and the exporter's
 * gauges (linted by promtool where it is installed).
 */
import assert from "node:assert/strict";
import { openBroker } from "../brokers/open.ts";
import { History, sparkline } from "../workers/watch/history.ts";
import { renderPlain, renderScreen, snapshotJson } from "../workers/watch/render.ts";
import { readSnapshot } from "../workers/watch/snapshot.ts";
import { createExporter } from "../workers/watch/exporter.ts";
import { planSweep } from "../workers/plan.ts";
import { submitPlan } from "../workers/run.ts";
import { makeTasks } from "./conformance.ts";

async function broker() {
  return await openBroker({ backend: "sqlite", sqlitePath: ":memory:", consumerId: "w1" });
}

const IDENTITY = {
  host: "h1",
  pod: "",
  node: "node-a",
  pid: 1,
  version: "0.1.0",
  startedAt: new Date().toISOString(),
  params: 0,
  inFlight: 1,
  running: ["00000"],
  failures: 0,
  timeouts: 0,
  heartbeatMs: 1000,
};

Deno.test("a snapshot reads every job of the broker, with its state, counters and fleet", async () => {
  await using b = await broker();
  await submitPlan(b, planSweep({ jobId: "one", params: 100, chunkSize: 10 }));
  await submitPlan(b, planSweep({ jobId: "two", params: 30, chunkSize: 10 }));
  await b.control("two", "pause");
  const [d] = await b.pull({ jobId: "one", max: 1, waitMs: 0 });
  await b.ack([{
    delivery: d!,
    result: { value: {}, params: 10, workerId: "w1", durationMs: 1, completedAt: "" },
  }]);
  await b.fleet.report({ ...IDENTITY, workerId: "w1", jobId: "one", state: "busy", chunks: 1 });
  const snapshot = await readSnapshot(b, { all: true });
  assert.deepEqual(snapshot.jobs.map((j) => [j.jobId, j.state, j.stats.completed]), [
    ["one", "running", 1],
    ["two", "paused", 0],
  ]);
  assert.deepEqual(snapshot.jobs[0]!.workers.map((w) => w.workerId), ["w1"]);
  await assert.rejects(() => readSnapshot(b, { jobId: "nope" }), { code: "NOT_FOUND" });
  const json = snapshotJson(snapshot, "sqlite") as { jobs: Record<string, unknown>[] };
  assert.deepEqual(
    [
      json.jobs[0]!.job_id,
      json.jobs[0]!.state,
      json.jobs[0]!.completed,
      json.jobs[0]!.completed_params,
    ],
    ["one", "running", 1, 10],
  );
  assert.deepEqual((json.jobs[0]!.workers as Record<string, unknown>[])[0]!.id, "w1");
});

Deno.test("the screen fits the terminal and shows progress, counters, trend and fleet; plain lines one per job", async () => {
  await using b = await broker();
  await b.publish(makeTasks("j", 10));
  await b.createJob({
    jobId: "j",
    handler: "ttg.sweep",
    totalParams: 100,
    totalChunks: 10,
    chunkSize: 10,
    createdAt: new Date().toISOString(),
    args: {},
  });
  await b.fleet.report({
    ...IDENTITY,
    workerId: "w-long-name-of-a-worker",
    jobId: "j",
    state: "busy",
    chunks: 0,
  });
  const history = new History();
  history.add(await readSnapshot(b, { jobId: "j" }));
  const deliveries = await b.pull({ jobId: "j", max: 5, waitMs: 0 });
  await b.ack(
    deliveries.map((delivery) => ({
      delivery,
      result: { value: {}, params: 10, workerId: "w1", durationMs: 1, completedAt: "" },
    })),
  );
  const later = await readSnapshot(b, { jobId: "j" });
  history.add({ ...later, at: later.at + 1000 });
  const lines = renderScreen({ ...later, at: later.at + 1000 }, history, {
    width: 80,
    backend: "sqlite",
  });
  assert.ok(lines.every((l) => [...l].length <= 80), lines.join("\n"));
  const screen = lines.join("\n");
  assert.match(screen, /Job "j" {2}running {2}ttg\.sweep/);
  assert.match(screen, /50% {2}chunks 5\/10 {2}parameters 50\/100/);
  assert.match(screen, /ready 5 {2}in flight 0/);
  assert.match(screen, /5\.0 chunks\/s now/);
  assert.match(screen, /w-long-name-of-a-wo…/);
  const plain = renderPlain(later, history);
  assert.equal(plain.length, 1);
  assert.match(plain[0]!, / j running 5\/10 chunks \(50%\) ready 5 /);
  assert.equal(sparkline([1, 1, 1], 2), "██");
});

Deno.test("the exporter serves one gauge set per job, from one stats read per scrape window", async () => {
  await using b = await broker();
  await submitPlan(b, planSweep({ jobId: "x", params: 50, chunkSize: 10, priority: 3 }));
  await b.fleet.report({ ...IDENTITY, workerId: "w1", jobId: "x", state: "idle", chunks: 0 });
  const exporter = createExporter(b, 60_000);
  const text = await exporter.metrics();
  for (
    const line of [
      'ttg_queue_ready{job_id="x",backend="sqlite"} 5',
      'ttg_job_chunks{job_id="x",backend="sqlite"} 5',
      'ttg_job_info{job_id="x",state="running",backend="sqlite"} 1',
      'ttg_workers{job_id="x",state="idle",backend="sqlite"} 1',
    ]
  ) assert.ok(text.includes(line), `missing ${line} in\n${text}`);
  assert.match(
    text,
    /ttg_queue_oldest_ready_age_seconds\{job_id="x",priority="3",backend="sqlite"\} /,
  );
  assert.equal(exporter.notReady(), undefined);
  // Within the cache window a scrape reads nothing new.
  const [d] = await b.pull({ jobId: "x", max: 1, waitMs: 0 });
  assert.ok(d);
  assert.ok((await exporter.metrics()).includes('ttg_queue_ready{job_id="x",backend="sqlite"} 5'));
});
