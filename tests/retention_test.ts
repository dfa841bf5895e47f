/**
 * Finished jobs through the CLI: `--ttl`, `ttg jobs` applying it, `ttg retention --default`, and
 * controls that leave a finished job as it is.
 */
import assert from "node:assert/strict";
import { tempDir, ttg } from "./helpers.ts";

Deno.test("a finished job submitted with --ttl is listed with its expiry, then deleted once its time to live passed", async () => {
  await using dir = await tempDir();
  const db = ["--sqlite-path", `${dir.path}/r.db`];
  const submit = await ttg(["submit", ...db, "--job-id", "short", "--params", "20", "--ttl", "1s"]);
  assert.equal(submit.code, 0, submit.stderr);
  assert.equal((await ttg(["submit", ...db, "--job-id", "kept", "--params", "20"])).code, 0);
  for (const job of ["short", "kept"]) {
    const worker = await ttg(["worker", ...db, "--job-id", job, "--idle-timeout", "0.2"]);
    assert.equal(worker.code, 0, worker.stderr);
  }
  const first = await ttg(["jobs", ...db]);
  assert.match(first.stdout, /^short +completed .* in [01](\.\d)?s$/m, first.stdout);
  assert.match(first.stdout, /^kept +completed .* -$/m);
  for (const action of ["cancel", "pause"]) {
    const late = await ttg([action, ...db, "--job-id", "kept"]);
    assert.equal(late.code, 0, late.stderr);
    assert.equal(late.stdout.trim(), `Job "kept" is already completed; nothing to ${action}`);
  }
  // Its status shows the fleet that served it: the one worker, stopped, with its one chunk.
  const status = await ttg(["status", ...db, "--job-id", "kept"]);
  assert.match(status.stdout, /^Workers \(1\)$/m, status.stdout);
  assert.match(status.stdout, /^ {2}\S+ +\S+ +stopped +1 {2}[\d.]+s ago$/m, status.stdout);
  const late = JSON.parse((await ttg(["cancel", ...db, "--job-id", "kept", "--json"])).stdout);
  assert.deepEqual([late.state, late.after, late.cancelled], ["completed", "running", 0]);
  await new Promise((r) => setTimeout(r, 1100));
  const second = await ttg(["jobs", ...db, "--json"]);
  assert.deepEqual(JSON.parse(second.stdout).map((j: { job_id: string }) => j.job_id), ["kept"]);
  assert.equal((await ttg(["status", ...db, "--job-id", "short"])).code, 1, "short is gone");
});

Deno.test("ttg retention shows and sets the broker-wide default; a bad duration is one line and exit 2", async () => {
  await using dir = await tempDir();
  const db = ["--sqlite-path", `${dir.path}/r.db`];
  const set = await ttg(["retention", ...db, "--default", "36h"]);
  assert.equal(set.code, 0, set.stderr);
  assert.match(set.stdout, /kept 36h on sqlite/);
  const shown = await ttg(["retention", ...db, "--json"]);
  assert.equal(JSON.parse(shown.stdout).default_ttl_seconds, 129_600);
  const cleared = await ttg(["retention", ...db, "--default", "none"]);
  assert.match(cleared.stdout, /kept on sqlite until ttg reset/);
  const bad = await ttg(["retention", ...db, "--default", "soon"]);
  assert.deepEqual([bad.code, bad.stderr.trim().split("\n").length], [2, 1]);
  assert.match(bad.stderr, /Invalid --default "soon": expected a duration/);
  const badTtl = await ttg(["submit", ...db, "--ttl", "0"]);
  assert.equal(badTtl.code, 2);
  assert.match(badTtl.stderr, /Invalid --ttl "0"/);
});
