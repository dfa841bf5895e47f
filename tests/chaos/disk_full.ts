/**
 * The disk-full scenario (SQLite): the database lives on a tmpfs of a few MB that fills up mid-job.
 * Workers meet "database or disk is full" as an unavailable broker (clear errors, retries, no
 * crash); once space is back (the tmpfs is grown) the job finishes, every parameter counted once,
 * and the database passes SQLite's integrity check.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { openBroker } from "../../brokers/open.ts";
import { checkJob } from "./checker.ts";
import { Fleet, sleep } from "./fleet.ts";
import type { Size } from "./scenarios.ts";
import { submitPlan } from "../../workers/run.ts";
import { planSweep } from "../../workers/plan.ts";
import { until } from "../helpers.ts";

const CHAOS_JOB = new URL("../fixtures/chaos_job.ts", import.meta.url).pathname;

async function run(command: string, args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
}

/** Why a small file system cannot be mounted here (undefined when it can). */
export async function diskFullProblem(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "tmpfs mounts need Linux";
  if (Deno.uid() !== 0) return "mounting a tmpfs needs root";
  const dir = await Deno.makeTempDir({ prefix: "ttg-tmpfs-probe-" });
  try {
    const out = await run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir]);
    if (!out.success) {
      return `mount -t tmpfs failed: ${new TextDecoder().decode(out.stderr).trim()}`;
    }
    await run("umount", [dir]);
    return undefined;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Runs the scenario: a job that does not fit, then space given back. */
export async function diskFull(size: Size): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ttg-diskfull-" });
  const mounted = await run("mount", ["-t", "tmpfs", "-o", "size=3m", "tmpfs", dir]);
  assert.ok(mounted.success, new TextDecoder().decode(mounted.stderr));
  const path = `${dir}/ttg.db`;
  const job = `chaos-disk-${crypto.randomUUID().slice(0, 6)}`;
  const chunks = size === "large" ? 20_000 : 2_000;
  const full = /database or disk is full/;
  const fleet = new Fleet({
    watch: [full],
    args: [
      "--backend",
      "sqlite",
      "--sqlite-path",
      path,
      "--job",
      CHAOS_JOB,
      "--job-id",
      job,
      "--idle-timeout",
      "0",
      "--report-json",
      "--log-format",
      "json",
      "--log-level",
      "WARNING",
    ],
  });
  const observer = await openBroker({
    backend: "sqlite",
    sqlitePath: path,
    consumerId: "observer",
  });
  const t0 = Date.now();
  try {
    // Each result carries ~2 KB of padding: the job needs several times the 3 MB it is given.
    const plan = planSweep({
      jobId: job,
      handler: "test.chaos",
      params: chunks,
      chunkSize: 1,
      args: { pad: 2000 },
    });
    assert.ok(await submitPlan(observer, plan));
    fleet.start(2);
    // The file system fills: workers meet the full disk, keep running, and complete nothing more.
    await until(
      async () => (await stalled(observer, job)) || undefined,
      120_000,
      "the disk to fill up",
    );
    assert.equal(fleet.running.length, 2, "a worker died of the full disk");
    const grown = await run("mount", ["-o", "remount,size=256m", dir]);
    assert.ok(grown.success, new TextDecoder().decode(grown.stderr));
    await until(
      async () => {
        const s = await observer.stats(job).catch(() => undefined);
        return (s && s.ready + s.inFlight + s.delayed === 0) || undefined;
      },
      240_000,
      "the job to finish once space is back",
    );
    await checkJob(observer, job, { totalParams: chunks, chunkSize: 1 }, { poisoned: new Set() }, {
      scenario: "disk-full",
      backend: "sqlite",
      startedAt: t0,
    });
    assert.ok(fleet.seen(full) > 0, "the workers never said why their commits failed");
    const db = new DatabaseSync(path);
    try {
      const check = db.prepare("PRAGMA integrity_check").all().map((row) => row.integrity_check);
      assert.deepEqual(check, ["ok"]);
    } finally {
      db.close();
    }
  } finally {
    await fleet.stop();
    await observer.close().catch(() => {});
    await run("umount", ["-l", dir]);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** True when the job has work left but completed nothing for two seconds. */
async function stalled(observer: Awaited<ReturnType<typeof openBroker>>, job: string) {
  const before = await observer.stats(job).catch(() => undefined);
  await sleep(2000);
  const after = await observer.stats(job).catch(() => undefined);
  if (!before || !after) return true; // the observer itself meets the full disk: full
  return after.completed === before.completed && after.ready + after.inFlight > 0;
}
