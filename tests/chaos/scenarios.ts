/**
 * The chaos scenarios: faults injected into real worker processes and real brokers, each ended
 * by the checker (checker.ts). Every scenario takes a size (`small` in CI, `large` = 10× by
 * hand) and ends every process it started, within a deadline.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Broker } from "../../brokers/broker.ts";
import { submitPlan } from "../../workers/run.ts";
import { planSweep } from "../../workers/plan.ts";
import { fails } from "../fixtures/chaos_job.ts";
import { spawnTtg, ttg, until } from "../helpers.ts";
import { checkJob, type Expectation } from "./checker.ts";
import { Fleet, sleep } from "./fleet.ts";
import { FaultProxy } from "./proxy.ts";
import type { Backend, ChaosStore } from "./stores.ts";

const CHAOS_JOB = new URL("../fixtures/chaos_job.ts", import.meta.url).pathname;

/** How big a scenario runs: `small` in CI, `large` (10×) with `deno task chaos --size large`. */
export type Size = "small" | "large";

/** A scenario: its name, where it runs, and what it does on one store. */
export interface ChaosScenario {
  readonly name: string;
  /** Backends it applies to, with the reason for the others. */
  readonly backends: Partial<Record<Backend, true | string>>;
  /** Needs a private server it may crash. */
  readonly crashes?: boolean;
  run(store: ChaosStore, size: Size): Promise<void>;
}

function scale(size: Size, small: number): number {
  return size === "large" ? small * 10 : small;
}

function jobId(kind: string): string {
  return `chaos-${kind}-${crypto.randomUUID().slice(0, 6)}`;
}

/** Flags of every chaos worker: the chaos job, no idle exit, quick retries, quiet logs. */
function workerFlags(job: string, extra: readonly string[] = []): string[] {
  return [
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
    "ERROR",
    "--retry-base-ms",
    "100",
    ...extra,
  ];
}

/** Submits the chaos job and returns its plan. */
async function submit(
  observer: Broker,
  job: string,
  params: number,
  chunkSize: number,
  args: Record<string, unknown>,
) {
  const plan = planSweep({ jobId: job, handler: "test.chaos", params, chunkSize, args });
  assert.ok(await submitPlan(observer, plan), "the job existed already");
  return { totalParams: params, chunkSize };
}

/** Waits until nothing of the job is left to do (twice in a row: bisection changes counts). */
async function drained(observer: Broker, job: string, timeoutMs: number): Promise<void> {
  let quiet = 0;
  await until(
    async () => {
      const s = await observer.stats(job).catch(() => undefined);
      quiet = s && s.ready + s.inFlight + s.delayed === 0 && s.completed > 0 ? quiet + 1 : 0;
      return quiet >= 3 || undefined;
    },
    timeoutMs,
    `job "${job}" to drain`,
  );
}

/** Waits until at least `fraction` of the planned chunks are completed. */
async function progressed(observer: Broker, job: string, chunks: number, fraction: number) {
  await until(
    async () =>
      ((await observer.stats(job).catch(() => undefined))?.completed ?? 0) >= chunks * fraction ||
      undefined,
    120_000,
    `${Math.round(fraction * 100)}% of job "${job}"`,
  );
}

/** The parameters a 1‰-per-mille fault rate poisons in [0, params). */
function failing(params: number, perMille: number): Set<number> {
  const set = new Set<number>();
  for (let p = 0; p < params; p++) if (fails(p, perMille)) set.add(p);
  return set;
}

/** Runs `fn` with a broker handle on the store and the fleet; stops and closes both after. */
async function withFleet(
  store: ChaosStore,
  fleet: Fleet,
  job: string,
  fn: (observer: Broker) => Promise<void>,
): Promise<void> {
  const observer = await store.open("chaos-observer");
  try {
    await fn(observer);
  } finally {
    await fleet.stop();
    await observer.reset(job).catch(() => {});
    await observer.close();
  }
}

const killStorm: ChaosScenario = {
  name: "kill storm: a random worker SIGKILLed every 300–800 ms for the whole run",
  backends: { sqlite: true, redis: true, rabbitmq: true },
  async run(store, size) {
    const job = jobId("storm");
    const chunks = scale(size, 2000);
    const params = chunks * 10;
    const hang = 4243;
    // 1‰ of the parameters throw in CI (20), 1% at the large size; one hangs past its timeout.
    const perMille = size === "large" ? 10 : 1;
    const budgets = ["--max-attempts", "3", "--max-crashes", "3", "--chunk-timeout", "2"];
    const leases = ["--lease-ms", "2000", "--heartbeat-ms", "500"];
    const fleet = new Fleet({
      args: [...store.args, ...workerFlags(job, [...budgets, ...leases])],
    });
    const t0 = Date.now();
    await withFleet(store, fleet, job, async (observer) => {
      const plan = await submit(observer, job, params, 10, {
        fail_per_mille: perMille,
        hang: [hang],
      });
      fleet.start(4);
      const calm = new AbortController();
      const storm = fleet.storm(calm.signal, 300, 800, async () =>
        new Set(
          (await observer.fleet.list({ jobId: job })).filter((w) => w.state === "busy")
            .map((w) => w.workerId),
        ));
      try {
        await drained(observer, job, size === "large" ? 1_800_000 : 240_000);
      } finally {
        calm.abort();
        await storm;
      }
      assert.ok(fleet.kills >= 5, `only ${fleet.kills} workers were killed`);
      const poisoned = failing(params, perMille).add(hang);
      await checkJob(observer, job, plan, { poisoned }, {
        scenario: "kill-storm",
        backend: store.backend,
        startedAt: t0,
      });
    });
  },
};

const brokerCrash: ChaosScenario = {
  name: "broker crash: the broker process killed mid-job and restarted; workers reconnect",
  backends: {
    redis: true,
    rabbitmq: true,
    sqlite: "SQLite has no server process: the database is a file (see disk full)",
  },
  crashes: true,
  async run(store, size) {
    const job = jobId("crash");
    const chunks = scale(size, 600);
    const fleet = new Fleet({ args: [...store.args, ...workerFlags(job)] });
    const t0 = Date.now();
    await withFleet(store, fleet, job, async (observer) => {
      const plan = await submit(observer, job, chunks * 10, 10, { work_ms: 1 });
      fleet.start(3);
      await progressed(observer, job, chunks, 0.25);
      if (store.bounce) {
        await store.bounce(500);
        await progressed(observer, job, chunks, 0.55);
      }
      await store.crash!(1000);
      await drained(observer, job, 240_000);
      await checkJob(observer, job, plan, { poisoned: new Set() }, {
        scenario: "broker-crash",
        backend: store.backend,
        startedAt: t0,
      });
    });
  },
};

const partition: ChaosScenario = {
  name:
    "partition: latency on every link, then one worker cut off past its lease while it computes",
  backends: { redis: true, rabbitmq: true, sqlite: "SQLite is a local file: no network to cut" },
  async run(store, size) {
    const job = jobId("partition");
    const chunks = scale(size, 400);
    const proxies = [0, 1, 2].map(() => new FaultProxy(store.endpoint!));
    const slowChunk = /"message":"slow chunk"/;
    const fleet = new Fleet({
      args: workerFlags(job, ["--lease-ms", "2000", "--heartbeat-ms", "500"]),
      // The worker cut off logs its chunks' starts (INFO): the cut comes while one computes.
      argsFor: (i) => [
        ...store.argsVia(proxies[i % proxies.length]!.port),
        ...(i === 0 ? ["--log-level", "INFO"] : []),
      ],
      watch: [slowChunk],
    });
    const t0 = Date.now();
    try {
      await withFleet(store, fleet, job, async (observer) => {
        // Worker 0's chunks take 3 s: it is surely holding one when it is cut off, which it
        // commits or extends only once its lease is gone (with short chunks it may hold none).
        const plan = await submit(observer, job, chunks * 10, 10, {
          work_ms: 3,
          slow_worker: "chaos-0",
          slow_ms: 3000,
        });
        for (const proxy of proxies) proxy.latency(20);
        fleet.start(3);
        await progressed(observer, job, chunks, 0.2);
        const seen = fleet.seen(slowChunk);
        await until(() => fleet.seen(slowChunk) > seen || undefined, 30_000, "a slow chunk");
        const before = (await observer.stats(job)).zombies;
        proxies[0]!.partition();
        await sleep(6000); // three leases: the others take its chunks over
        proxies[0]!.heal();
        await drained(observer, job, 240_000);
        const line = await checkJob(observer, job, plan, { poisoned: new Set() }, {
          scenario: "partition",
          backend: store.backend,
          startedAt: t0,
        });
        // The cut-off worker's commit or heartbeat of the chunk it held reaches the broker once
        // its lease is gone (possibly after the others drained the job): each is a zombie.
        const zombies = line.zombies > before ? line.zombies : await until(
          async () => {
            const now = (await observer.stats(job)).zombies;
            return now > before ? now : undefined;
          },
          30_000,
          "the cut-off worker's late commits to be rejected as zombies",
        );
        assert.ok(zombies > before);
      });
    } finally {
      for (const proxy of proxies) await proxy.close();
    }
  },
};

const poisonMix: ChaosScenario = {
  name:
    "poison mix: throwing, hanging, thread-crashing and unstorable parameters, malformed messages",
  backends: { sqlite: true, redis: true, rabbitmq: true },
  async run(store, size) {
    const job = jobId("poison");
    const chunks = scale(size, 300);
    const params = chunks * 10;
    const [hang, crash, bigint] = [1017, 2023, 2531];
    const fleet = new Fleet({
      args: [
        ...store.args,
        ...workerFlags(job, ["--chunk-timeout", "1.5", "--max-attempts", "2"]),
      ],
    });
    const t0 = Date.now();
    await withFleet(store, fleet, job, async (observer) => {
      const plan = await submit(observer, job, params, 10, {
        fail_per_mille: 10,
        hang: [hang],
        crash: [crash],
        bigint: [bigint],
      });
      for (const raw of ["{not json", "[1,2,3]", JSON.stringify({ jobId: job, chunkId: "x" })]) {
        await store.injectRaw(job, raw);
      }
      fleet.start(2);
      await drained(observer, job, 240_000);
      const failingSet = failing(params, 10);
      const expect: Expectation = {
        poisoned: new Set([...failingSet, hang, crash, bigint]),
        malformed: 3,
        kinds: (p) => p === hang ? ["timeout"] : ["failed"],
      };
      await checkJob(observer, job, plan, expect, {
        scenario: "poison-mix",
        backend: store.backend,
        startedAt: t0,
      });
      const letters = await observer.deadLetters.list(job);
      const reason = (p: number) => letters.find((l) => l.task?.start === p)?.reason ?? "";
      assert.match(reason(crash), /thread crashed/);
      assert.match(reason(bigint), /cannot be stored as JSON/);
      assert.match(reason(hang), /timed out/);
    });
  },
};

const burst: ChaosScenario = {
  name: "burst: a large job enqueued while the fleet is already running",
  backends: { sqlite: true, redis: true, rabbitmq: true },
  async run(store, size) {
    const job = jobId("burst");
    const chunks = scale(size, 20_000);
    const fleet = new Fleet({ args: [...store.args, ...workerFlags(job, ["--batch", "256"])] });
    const t0 = Date.now();
    await withFleet(store, fleet, job, async (observer) => {
      fleet.start(3);
      await sleep(1500); // the fleet is up and polling an empty queue
      const plan = await submit(observer, job, chunks, 1, {});
      await drained(observer, job, 240_000);
      await checkJob(observer, job, plan, { poisoned: new Set(), faultFree: true }, {
        scenario: "burst",
        backend: store.backend,
        startedAt: t0,
      });
    });
  },
};

const coordinatorCrash: ChaosScenario = {
  name: "coordinator crash: ttg run SIGKILLed mid-job, run again with the same job id, resumes",
  backends: { sqlite: true, redis: true, rabbitmq: true },
  async run(store, size) {
    const job = jobId("coord");
    const params = scale(size, 3000);
    const flags = [...store.args, "--job-id", job, "--params", String(params), "--chunk-size"]
      .concat(["10", "--work-ms", "3", "--workers", "2", "--json"]);
    const observer = await store.open("chaos-observer");
    const t0 = Date.now();
    try {
      const first = spawnTtg(["run", ...flags]);
      await progressed(observer, job, params / 10, 0.2);
      // Its workers see their stdin close and drain; they may still finish a few chunks.
      first.kill("SIGKILL");
      await first.output();
      const again = await ttg(["run", ...flags]);
      assert.equal(again.code, 0, again.stderr);
      const report = JSON.parse(again.stdout);
      assert.equal(report.aggregate.count, params);
      // Resumed, not enqueued again: the plan's chunks once each, and nothing else queued.
      const chunks = params / 10;
      assert.deepEqual(
        [report.chunks.planned, report.chunks.completed, report.chunks.pending],
        [chunks, chunks, 0],
        JSON.stringify(report.chunks),
      );
      assert.equal((await observer.getJob(job))?.totalChunks, chunks);
      assert.match(again.stderr, new RegExp(`Job "${job}" exists: resuming it, nothing enqueued`));
      await checkJob(
        observer,
        job,
        { totalParams: params, chunkSize: 10 },
        { poisoned: new Set() },
        {
          scenario: "coordinator-crash",
          backend: store.backend,
          startedAt: t0,
        },
      );
    } finally {
      await observer.reset(job).catch(() => {});
      await observer.close();
    }
  },
};

/** Every scenario but disk full (tests/chaos/disk_full.ts), in the order they run. */
export const SCENARIOS: readonly ChaosScenario[] = [
  killStorm,
  brokerCrash,
  partition,
  poisonMix,
  burst,
  coordinatorCrash,
];
