/** The job report: what `ttg run`, `ttg results` and the deploy report print. */
import assert from "node:assert/strict";
import { type DeadLetter, EMPTY_STATS, type StoredResult } from "../brokers/broker.ts";
import { defineJob } from "../jobs/define_job.ts";
import sweep, { computeRange } from "../jobs/sweep.ts";
import { planSweep } from "../workers/plan.ts";
import {
  buildReport,
  compareChunkIds,
  deadLettersInReport,
  formatReport,
  type ReportSource,
} from "../workers/report.ts";

function stored(chunkId: string, value: unknown, params = 1): StoredResult {
  return {
    chunkId,
    value,
    params,
    workerId: "w",
    durationMs: 1,
    completedAt: "2026-12-01T00:00:00Z",
  };
}

function deadLetter(chunkId: string, start: number, end: number): DeadLetter {
  const task = planSweep({ jobId: "j", params: 10_000, chunkSize: 100 }).tasks[42]!;
  return {
    id: "1",
    jobId: "j",
    task: { ...task, chunkId, start, end },
    kind: "failed",
    reason: "poison",
    attempts: 1,
    history: [],
    at: "2026-12-01T00:00:00Z",
  };
}

function setup(overrides: Partial<ReportSource> = {}): ReportSource {
  return { record: null, stats: EMPTY_STATS, results: [], deadLetters: [], ...overrides };
}

Deno.test("compareChunkIds() orders chunk ids naturally: a chunk, then its bisected parts, then the next", () => {
  const ids = ["00003", "00002.1", "00010", "00002", "00002.0", "00002.0.1", "00002.10", "00002.2"];
  assert.deepEqual(ids.sort(compareChunkIds), [
    "00002",
    "00002.0",
    "00002.0.1",
    "00002.1",
    "00002.2",
    "00002.10",
    "00003",
    "00010",
  ]);
  assert.ok(compareChunkIds("99999", "100000") < 0, "numeric segments compare as numbers");
  assert.equal(compareChunkIds("00004", "00004"), 0);
});

Deno.test("the report hands results to the job's reduce in chunk order, whatever order they completed in", async () => {
  const order = defineJob({
    name: "test.order",
    run: (chunk) => chunk.chunkId,
    reduce: (results: readonly string[]) => results.join(" "),
  });
  const ids = ["00003", "00001.1", "00000", "00002", "00001.0"];
  const report = await buildReport(setup({ results: ids.map((id) => stored(id, id)) }), {
    jobId: "j",
    backend: "sqlite",
    job: order,
  });
  assert.equal(report.aggregate, "00000 00001.0 00001.1 00002 00003");
});

Deno.test("the sweep's aggregate is exact and prints with 6 decimals; counts print as integers", async () => {
  const results = [];
  for (let i = 0; i < 100; i++) {
    results.push(stored(String(i).padStart(5, "0"), computeRange(i * 100, (i + 1) * 100), 100));
  }
  const report = await buildReport(setup({ results: results.reverse() }), {
    jobId: "j",
    backend: "sqlite",
    job: sweep,
  });
  assert.deepEqual(report.aggregate, {
    sum: 5000355,
    count: 10_000,
    min: 0.41,
    max: 999.98,
    avg: 500.0355,
  });
  const text = formatReport(report);
  assert.match(text, /^ {2}sum +5000355\.000000$/m);
  assert.match(text, /^ {2}count +10000$/m);
  assert.match(text, /^ {2}avg +500\.035500$/m);
});

Deno.test("the report counts parameters, which add up, and shows bisected parts apart from the planned chunks", async () => {
  // 100 chunks of 100; chunk 00042 was bisected down to parameter 4242, which is dead-lettered.
  const results = [];
  for (let i = 0; i < 100; i++) {
    if (i === 42) continue;
    results.push(stored(String(i).padStart(5, "0"), computeRange(i * 100, i * 100 + 100), 100));
  }
  let [start, end, id, splits] = [4200, 4300, "00042", 0];
  while (end - start > 1) {
    const mid = Math.floor((start + end) / 2);
    const [bad, good] = 4242 < mid
      ? [[start, mid, 0], [mid, end, 1]]
      : [[mid, end, 1], [start, mid, 0]];
    results.push(stored(`${id}.${good[2]}`, computeRange(good[0]!, good[1]!), good[1]! - good[0]!));
    [start, end, id, splits] = [bad[0]!, bad[1]!, `${id}.${bad[2]}`, splits + 1];
  }
  assert.deepEqual([start, end, splits], [4242, 4243, 7]);
  const report = await buildReport(
    setup({
      record: {
        jobId: "j",
        handler: "ttg.sweep",
        totalParams: 10_000,
        totalChunks: 100,
        chunkSize: 100,
        createdAt: "2026-12-01T00:00:00Z",
        args: {},
      },
      stats: { ...EMPTY_STATS, completed: results.length, deadLettered: 1, splits: 7 },
      results,
      deadLetters: [deadLetter(id, 4242, 4243)],
    }),
    { jobId: "j", backend: "sqlite", job: sweep },
  );
  assert.deepEqual(report.parameters, {
    total: 10_000,
    accounted: 10_000,
    counted: 9_999,
    dead_lettered: 1,
  });
  assert.deepEqual(
    { ...report.chunks },
    {
      total: 100,
      planned: 100,
      bisected: 7,
      parts: 14,
      completed: 106,
      dead_lettered: 1,
      pending: 0,
      cancelled: 0,
      malformed: 0,
      params_completed: 9_999,
      params_dead_lettered: 1,
    },
  );
  const lines = formatReport(report).split("\n");
  assert.deepEqual(lines.slice(1, 3), [
    "  parameters 10000/10000 accounted: 9,999 counted, 1 dead-lettered",
    "  chunks     100 planned, 7 bisected into 14 parts → 106 completed, 1 dead-lettered",
  ]);
  assert.equal(deadLettersInReport(lines.join("\n")), 1);
});

Deno.test("a report read mid-run shows what is pending, and unreadable messages apart from chunks", async () => {
  const report = await buildReport(
    setup({
      stats: { ...EMPTY_STATS, completed: 1, ready: 2, inFlight: 1, deadLettered: 2, malformed: 2 },
      results: [stored("00000", computeRange(0, 1000), 1000)],
      deadLetters: [],
    }),
    { jobId: "legacy", backend: "redis" },
  );
  const text = formatReport(report);
  assert.match(text, /^ {2}parameters 1000\/1000 accounted: 1,000 counted, 0 dead-lettered$/m);
  assert.match(
    text,
    /^ {2}chunks {5}4 planned → 1 completed, 0 dead-lettered, 3 pending, 2 unreadable messages dead-lettered$/m,
  );
  assert.equal(deadLettersInReport(text), 2);
});

Deno.test("a cancelled job's report counts its cancelled chunks apart, in the text and the JSON", async () => {
  const report = await buildReport(
    setup({
      stats: { ...EMPTY_STATS, completed: 1, cancelled: 3, control: "cancelled" },
      results: [stored("00000", computeRange(0, 1000), 1000)],
      deadLetters: [],
    }),
    { jobId: "stopped", backend: "sqlite" },
  );
  assert.equal(report.chunks.cancelled, 3);
  assert.match(
    formatReport(report),
    /^ {2}chunks {5}4 planned → 1 completed, 0 dead-lettered, 3 cancelled$/m,
  );
});
