/**
 * What a lone `ttg worker` writes to its log, as an operator tailing it (`kubectl logs`) reads it:
 * the lifecycle in order, and PROGRESS lines on `ttg run`'s plain schedule while it works.
 */
import assert from "node:assert/strict";
import { tempDir, ttg } from "./helpers.ts";

interface LogLine {
  readonly at: number;
  readonly event: string;
  readonly fields: Record<string, string>;
}

/** Parses the text log (`<ISO time> <LEVEL> <EVENT> key=value …`); other lines are dropped. */
function logLines(stderr: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of stderr.split("\n")) {
    const match = /^(\S+Z)\s+[A-Z]+\s+([A-Z]+)\s*(.*)$/.exec(line);
    if (!match) continue;
    const fields = Object.fromEntries(
      [...match[3]!.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]),
    );
    lines.push({ at: Date.parse(match[1]!), event: match[2]!, fields });
  }
  return lines;
}

Deno.test("a lone ttg worker logs its lifecycle in order, and a PROGRESS line every 3 s while it counts chunks", async () => {
  await using dir = await tempDir();
  const db = ["--sqlite-path", `${dir.path}/job.db`, "--job-id", "progress-log"];
  // 20 chunks of 10 parameters at 40 ms each: about 8 s of work on one slot.
  const submit = await ttg([
    "submit",
    ...db,
    "--params",
    "200",
    "--chunk-size",
    "10",
    "--work-ms",
    "40",
  ]);
  assert.equal(submit.code, 0, submit.stderr);
  const run = await ttg([
    "worker",
    ...db,
    "--concurrency",
    "1",
    "--batch",
    "1",
    "--idle-timeout",
    "1",
  ]);
  assert.equal(run.code, 0, run.stderr);
  const lines = logLines(run.stderr);
  const events = lines.map((l) => l.event).filter((e) => e !== "PROGRESS");
  assert.deepEqual(events, ["STARTING", "INITIALIZED", "RUNNING", "COMPLETED"], run.stderr);

  const progress = lines.filter((l) => l.event === "PROGRESS");
  const running = lines.find((l) => l.event === "RUNNING")!;
  const completed = lines.find((l) => l.event === "COMPLETED")!;
  assert.ok(progress.length >= 2, `PROGRESS lines over ~8 s of work:\n${run.stderr}`);
  assert.ok(progress.every((l) => l.at > running.at && l.at < completed.at), run.stderr);
  // One every 3 s at most, each counting more chunks than the one before, never one per chunk.
  const gaps = progress.slice(1).map((l, i) => l.at - progress[i]!.at);
  assert.ok(gaps.every((ms) => ms >= 2950), `gaps between PROGRESS lines: ${gaps}`);
  const chunks = progress.map((l) => Number(l.fields.chunks));
  assert.ok(chunks.every((n, i) => n > (chunks[i - 1] ?? 0) && n <= 20), `chunks: ${chunks}`);
  // Its counts, in the snake_case of every other field.
  assert.deepEqual(
    [completed.fields.chunks, completed.fields.dead_lettered, completed.fields.exit_reason],
    ["20", "0", "idle"],
    run.stderr,
  );
  assert.ok(
    progress.every((l) => l.fields.job_id === "progress-log" && "chunks_per_second" in l.fields),
  );
});
