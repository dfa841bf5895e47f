/**
 * Process-level scenarios through the real `ttg` program, one table run on SQLite, Redis and
 * RabbitMQ: the fault demo, a fault-free run, poison-chunk bisection, dead letters through the
 * CLI, SIGTERM with and without time to finish, a malformed message, and the stall scenarios.
 *
 * @module
 */
import { allResults } from "../brokers/results.ts";
import assert from "node:assert/strict";
import { spawnTtg, ttg, until } from "./helpers.ts";
import {
  assertBusyHandlerKeepsItsLease,
  assertPausedWorkerCannotCommit,
} from "./stall_scenarios.ts";
import { type TargetRun, targets, targetTest } from "./targets.ts";

const POISON_JOB = new URL("./fixtures/poison_job.ts", import.meta.url).pathname;

function jobId(kind: string): string {
  return `sc-${kind}-${crypto.randomUUID().slice(0, 6)}`;
}

function lastJson(text: string): Record<string, unknown> {
  return JSON.parse(text.trim().split("\n").pop()!);
}

/** Runs `fn` with an observer on the run's store; resets `job` and closes the observer after. */
async function observed(
  run: TargetRun,
  job: string,
  fn: (observer: Awaited<ReturnType<TargetRun["open"]>>) => Promise<void>,
): Promise<void> {
  const observer = await run.open("observer");
  try {
    await fn(observer);
  } finally {
    await observer.reset(job).catch(() => {});
    await observer.close();
  }
}

type Scenario = [name: string, fn: (run: TargetRun) => Promise<void>];

const SCENARIOS: Scenario[] = [
  [
    "ttg run --fault-demo: a worker SIGKILLed at ~30% loses nothing; its chunks are reclaimed and counted once",
    async (run) => {
      const job = jobId("fault");
      await observed(run, job, async () => {
        const out = await ttg([
          "run",
          ...run.args,
          "--job-id",
          job,
          "--fault-demo",
          "--json",
          "--workers",
          "3",
          "--work-ms",
          "2",
        ]);
        assert.equal(out.code, 0, out.stderr);
        const report = JSON.parse(out.stdout);
        assert.equal(report.aggregate.sum, 5000355, "the correctly rounded sum");
        assert.equal(report.aggregate.count, 10_000);
        assert.equal(report.chunks.completed, 100);
        assert.equal(report.chunks.dead_lettered, 0);
        assert.equal(report.faults.workers_killed, 1);
        assert.ok(report.faults.chunks_reclaimed >= 1, "the killed worker held no chunk");
        assert.equal(report.zombie_completions, 0);
        assert.match(out.stderr, /Fault demo: SIGKILLed worker-1/);
      });
    },
  ],
  [
    "a fault-free run of 20,000 chunks counts no zombie, no duplicate and reclaims nothing",
    async (run) => {
      const job = jobId("clean");
      await observed(run, job, async () => {
        const out = await ttg([
          "run",
          ...run.args,
          "--job-id",
          job,
          "--json",
          "--workers",
          "3",
          "--params",
          "20000",
          "--chunk-size",
          "1",
          "--work-ms",
          "0",
          "--batch",
          "256",
        ]);
        assert.equal(out.code, 0, out.stderr);
        const report = JSON.parse(out.stdout);
        assert.equal(report.chunks.completed, 20_000);
        assert.equal(report.zombie_completions, 0);
        assert.equal(report.duplicates_discarded, 0);
        assert.equal(report.faults.chunks_reclaimed, 0);
      });
    },
  ],
  [
    "poison-chunk bisection dead-letters exactly the failing parameters and counts the rest",
    async (run) => {
      const job = jobId("poison");
      await observed(run, job, async (observer) => {
        const out = await ttg([
          "run",
          ...run.args,
          "--job-id",
          job,
          "--job",
          POISON_JOB,
          "--args",
          JSON.stringify({ poison: [1234, 5678] }),
          "--json",
          "--allow-dead-letters",
          "--workers",
          "2",
          "--max-attempts",
          "2",
          "--retry-base-ms",
          "10",
        ]);
        assert.equal(out.code, 0, out.stderr);
        const report = JSON.parse(out.stdout);
        assert.equal(report.aggregate.count, 9_998);
        const letters = await observer.deadLetters.list(job);
        assert.deepEqual(
          letters.map((l) => [l.task?.start, l.task?.end, l.reason]).sort(),
          [[1234, 1235, "parameter 1234 is poison"], [5678, 5679, "parameter 5678 is poison"]],
        );
      });
    },
  ],
  [
    "dead letters through the CLI: dlq list, replay of one id, purge of the rest",
    async (run) => {
      const job = jobId("dlq");
      const base = [...run.args, "--job-id", job];
      await observed(run, job, async () => {
        const submit = await ttg([
          "submit",
          ...base,
          "--job",
          POISON_JOB,
          "--args",
          JSON.stringify({ poison: [5, 25] }),
          "--params",
          "40",
          "--chunk-size",
          "10",
        ]);
        assert.equal(submit.code, 0, submit.stderr);
        const failing = ["--job", POISON_JOB, "--max-attempts", "1", "--min-split", "100"];
        const work = async () => {
          const out = await ttg(["worker", ...base, ...failing, "--idle-timeout", "0.5"]);
          assert.equal(out.code, 0, out.stderr);
        };
        await work();
        const list = await ttg(["dlq", "list", ...base, "--json"]);
        assert.equal(list.code, 0, list.stderr);
        const letters = JSON.parse(list.stdout) as { id: string }[];
        assert.equal(letters.length, 2, list.stdout);
        const replay = await ttg(["dlq", "replay", ...base, "--id", letters[0]!.id]);
        assert.equal(replay.code, 0, replay.stderr);
        assert.match(replay.stdout, /Replayed 1 dead letter/);
        await work(); // still poison: dead-lettered again
        assert.equal(JSON.parse((await ttg(["dlq", "list", ...base, "--json"])).stdout).length, 2);
        const purge = await ttg(["dlq", "purge", ...base]);
        assert.match(purge.stdout, /Purged 2 dead letter/);
        const status = JSON.parse((await ttg(["status", ...base, "--json"])).stdout);
        assert.equal(status.stats.dead_lettered, 0);
        assert.equal(status.stats.completed, 2);
      });
    },
  ],
  [
    "SIGTERM with time to finish: the running chunk completes within the grace period",
    async (run) => {
      const job = jobId("grace");
      const base = [...run.args, "--job-id", job];
      await observed(run, job, async (observer) => {
        const submit = await ttg(["submit", ...base, "--params", "10", "--chunk-size", "10"]
          .concat(["--work-ms", "100"]));
        assert.equal(submit.code, 0, submit.stderr);
        const worker = spawnTtg(["worker", ...base, "--grace", "10", "--report-json"]);
        await until(
          async () => (await observer.stats(job)).inFlight === 1 || undefined,
          20_000,
          "the worker to take the chunk",
        );
        worker.kill("SIGTERM");
        const out = await worker.output();
        assert.equal(lastJson(new TextDecoder().decode(out.stdout)).chunks, 1);
        const stats = await observer.stats(job);
        assert.equal(stats.completed, 1);
        assert.equal(stats.inFlight + stats.ready, 0);
      });
    },
  ],
  [
    "SIGTERM without time to finish: the chunk is released at once, unspent, and nothing partial is published",
    async (run) => {
      const job = jobId("release");
      const base = [...run.args, "--job-id", job];
      await observed(run, job, async (observer) => {
        const submit = await ttg(["submit", ...base, "--params", "10", "--chunk-size", "10"]
          .concat(["--work-ms", "1000"]));
        assert.equal(submit.code, 0, submit.stderr);
        const worker = spawnTtg(["worker", ...base, "--grace", "0.2", "--report-json"]);
        await until(
          async () => (await observer.stats(job)).inFlight === 1 || undefined,
          20_000,
          "the worker to take the chunk",
        );
        const t0 = Date.now();
        worker.kill("SIGTERM");
        const out = await worker.output();
        assert.ok(Date.now() - t0 < 5000, "the worker did not stop promptly");
        const report = lastJson(new TextDecoder().decode(out.stdout));
        assert.deepEqual([report.chunks, report.released], [0, 1]);
        await until(
          async () => (await observer.stats(job)).ready === 1 || undefined,
          10_000,
          "the released chunk back in the queue",
        );
        assert.equal((await allResults(observer, job)).length, 0, "a partial result was published");
        const [again] = await observer.pull({ jobId: job, max: 1, waitMs: 2000 });
        assert.equal(again?.attempt, 1, "the release spent an attempt");
        assert.equal(again?.crashes, 0);
      });
    },
  ],
  [
    "a malformed message among the chunks is dead-lettered with its reason; the worker serves the rest",
    async (run) => {
      const job = jobId("malformed");
      const base = [...run.args, "--job-id", job];
      await observed(run, job, async (observer) => {
        const submit = await ttg(["submit", ...base, "--params", "100", "--chunk-size", "10"]);
        assert.equal(submit.code, 0, submit.stderr);
        await run.injectRaw(job, "{not json at all");
        const out = await ttg(["worker", ...base, "--idle-timeout", "0.5", "--report-json"]);
        assert.equal(out.code, 0, out.stderr);
        assert.equal(lastJson(out.stdout).chunks, 10);
        await until(
          async () => (await observer.stats(job)).malformed === 1 || undefined,
          10_000,
          "the malformed message in the dead letters",
        );
        const [letter] = await observer.deadLetters.list(job);
        assert.equal(letter?.kind, "malformed");
        assert.equal(letter?.raw, "{not json at all");
      });
    },
  ],
  [
    "ttg pause, resume and cancel steer a running job; ttg jobs and ttg status show its state",
    async (run) => {
      const job = jobId("control");
      const base = [...run.args, "--job-id", job];
      await observed(run, job, async (observer) => {
        const submit = await ttg(["submit", ...base, "--params", "3000", "--chunk-size", "10"]
          .concat(["--work-ms", "10"]));
        assert.equal(submit.code, 0, submit.stderr);
        const worker = spawnTtg(["worker", ...base, "--idle-timeout", "1", "--report-json"]);
        try {
          await until(
            async () => (await observer.stats(job)).completed >= 3 || undefined,
            20_000,
            "the worker to complete some chunks",
          );
          const paused = await ttg(["pause", ...base]);
          assert.equal(paused.code, 0, paused.stderr);
          assert.match(paused.stdout, /Paused job/);
          // Held chunks finish; then nothing more completes while paused.
          await until(
            async () => (await observer.stats(job)).inFlight === 0 || undefined,
            20_000,
            "the paused job's chunks in flight to finish",
          );
          const held = (await observer.stats(job)).completed;
          await new Promise((r) => setTimeout(r, 1500));
          assert.equal((await observer.stats(job)).completed, held, "a paused job kept running");
          const state = JSON.parse((await ttg(["status", ...base, "--json"])).stdout).state;
          assert.equal(state, "paused");
          assert.match((await ttg(["resume", ...base])).stdout, /Resumed job/);
          await until(
            async () => (await observer.stats(job)).completed > held + 2 || undefined,
            20_000,
            "the resumed job to move again",
          );
          const cancelled = await ttg(["cancel", ...base, "--json"]);
          assert.equal(cancelled.code, 0, cancelled.stderr);
          const outcome = JSON.parse(cancelled.stdout);
          assert.equal(outcome.after, "cancelled");
          assert.ok(outcome.cancelled > 0, cancelled.stdout);
          const out = await worker.output(); // idle once nothing of the job is left
          assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
          const stats = await observer.stats(job);
          assert.equal(stats.ready + stats.inFlight + stats.delayed, 0);
          assert.equal(
            stats.completed + stats.cancelled,
            300,
            "each chunk completed or cancelled, once",
          );
          const jobs = JSON.parse((await ttg(["jobs", ...run.args, "--json"])).stdout);
          assert.equal(jobs.find((j: { job_id: string }) => j.job_id === job)?.state, "cancelled");
          assert.match(
            (await ttg(["cancel", ...base])).stdout,
            /cancelled already: cancelling is final/,
          );
        } finally {
          try {
            worker.kill("SIGTERM");
          } catch { /* it ended on its own */ }
          await worker.status;
        }
      });
    },
  ],
  [
    "a handler thread spinning for 3× the lease keeps its chunk: completed once, never reclaimed",
    async (run) => {
      const job = jobId("busy");
      await observed(run, job, (observer) =>
        assertBusyHandlerKeepsItsLease({
          brokerArgs: [...run.args, "--job-id", job],
          jobId: job,
          observer,
          leaseMs: 1000,
        }));
    },
  ],
  [
    "a worker paused past its lease (SIGSTOP) cannot commit after SIGCONT: a counted zombie",
    async (run) => {
      const job = jobId("paused");
      await observed(run, job, (observer) =>
        assertPausedWorkerCannotCommit({
          brokerArgs: [...run.args, "--job-id", job],
          jobId: job,
          observer,
          leaseMs: 1000,
        }));
    },
  ],
];

for (const target of await targets()) {
  for (const [name, fn] of SCENARIOS) targetTest(target, name, fn);
}
