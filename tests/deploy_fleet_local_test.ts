/**
 * `deno task deploy --target local --mode fleet`: the fleet Deployment's pods as local processes,
 * and jobs submitted to them with the submit command the deploy prints. The mapping is checked
 * on its own; then the fleet runs end to end on a SQLite file (its processes' broker settings
 * swapped for SQLite's, everything else as generated), and through the deploy task itself
 * against the local Redis, which needs a Redis driver that pulls across several jobs: without it
 * that test is ignored, with the reason in its name.
 */
import "../tasks/node_warnings.ts";
import assert from "node:assert/strict";
import type { Broker } from "../brokers/broker.ts";
import { openBroker } from "../brokers/open.ts";
import { allResults } from "../brokers/results.ts";
import { openSqliteBroker } from "../brokers/sqlite/sqlite.ts";
import type { IContainer } from "kubernetes-models/v1";
import type { DeploymentProps } from "../deploy/config.ts";
import type { LocalPlan, LocalProcess } from "../deploy/local.ts";
import { plain, synth } from "../deploy/synth.ts";
import { REPO_ROOT } from "../tasks/command.ts";
import { planLocal } from "../tasks/deploy_local.ts";
import { localSubmitText, runLocalFleet } from "../tasks/deploy_local_fleet.ts";
import { submitCommand } from "../tasks/fleet_submit.ts";
import { freePort, listening, tempDir, ttg, until } from "./helpers.ts";

function setup(props: DeploymentProps = {}) {
  return synth({ mode: "fleet", ...props }, { randomSecret: () => "fleet-local-secret-01" });
}

/** A glob and job ids of this run only: the local brokers are shared. */
function jobNames() {
  const tag = `fleet-local-${crypto.randomUUID().slice(0, 8)}`;
  return { tag, glob: `${tag}-*`, sweep: `${tag}-sweep`, module: `${tag}-module` };
}

Deno.test("locally the fleet's pods run its worker command, with the repository for the image's jobs directory", () => {
  const { glob, sweep } = jobNames();
  const ports = [20_100, 20_101];
  const plan = planLocal(
    setup({ workers: { count: 2 }, fleet: { jobs: glob, submit: true }, job: { id: sweep } }),
    "deno",
    () => ports.shift()!,
  );
  assert.deepEqual(plan.workers.map((p) => p.name), ["ttg-fleet-0", "ttg-fleet-1"]);
  assert.deepEqual(plan.workers[0]!.argv.slice(4), [
    "worker",
    "--jobs",
    glob,
    "--jobs-dir",
    REPO_ROOT,
    "--idle-timeout",
    "0",
  ]);
  assert.deepEqual(plan.workers.map((p) => p.env.TTG_METRICS_PORT), ["20100", "20101"]);
  assert.equal(plan.workers[0]!.env.TTG_IDLE_TIMEOUT_SECONDS, undefined);
  for (const p of [...plan.submit, ...plan.report, ...plan.progress]) {
    assert.equal(p.cwd, REPO_ROOT, `${p.name} runs where the fleet resolves module paths`);
  }
  assert.deepEqual(plan.progress[0]!.argv.slice(4), ["status", "--json"]);
  assert.deepEqual(planLocal(setup(), "deno").submit, [], "no submit Job without --submit");
});

Deno.test("the local submit command is the cluster's without the port-forward, with the local brokers' credentials", () => {
  const redis = setup({ job: { id: "nightly-1" } }).config;
  assert.equal(
    localSubmitText(redis),
    "REDIS_PORT=6379 \\\n  deno task ttg submit --backend redis --job-id nightly-1 --params 10000 --chunk-size 100",
  );
  assert.equal(submitCommand(redis, "local").portForward, undefined);
  const rabbit = setup({ backend: "rabbitmq" }).config;
  assert.match(
    localSubmitText(rabbit),
    /^RABBITMQ_PORT=5672 \\\n {2}RABBITMQ_USER=guest \\\n {2}RABBITMQ_PASSWORD=guest \\\n {2}deno task ttg submit --backend rabbitmq /,
  );
});

/** The plan's processes on a SQLite file instead of the generated broker. */
function onSqlite(plan: LocalPlan, db: string): LocalPlan {
  const swap = (p: LocalProcess): LocalProcess => ({
    ...p,
    env: {
      ...Object.fromEntries(
        Object.entries(p.env).filter(([k]) => !/^(TTG_BACKEND|REDIS_|RABBITMQ_)/.test(k)),
      ),
      TTG_BACKEND: "sqlite",
      TTG_SQLITE_PATH: db,
    },
  });
  return {
    submit: plan.submit.map(swap),
    workers: plan.workers.map(swap),
    report: plan.report.map(swap),
    progress: plan.progress.map(swap),
  };
}

/** Runs the generated local submit command (`deno task ttg submit …`) with its variables. */
async function submitAsPrinted(props: DeploymentProps, broker: readonly string[]) {
  const command = submitCommand(setup(props).config, "local");
  const env = Object.fromEntries(
    command.env.flatMap((v) => "value" in v ? [[v.name, v.value]] : []),
  );
  const argv = [...command.argv];
  argv.splice(argv.indexOf("--backend"), 2, ...broker);
  assert.deepEqual(argv.slice(0, 3), ["deno", "task", "ttg"]);
  const out = await new Deno.Command(Deno.execPath(), {
    args: argv.slice(1),
    cwd: REPO_ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

/** Answers of a worker's probe endpoint. */
async function probe(port: number, path: string): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  await response.body?.cancel();
  return response.status;
}

Deno.test("a local fleet serves two jobs submitted with the printed command, a built-in and a module under its jobs directory, and drains on stop", async () => {
  await using dir = await tempDir();
  const db = `${dir.path}/fleet.db`;
  const { glob, sweep, module } = jobNames();
  const ports: number[] = [];
  const synthesized = setup({ workers: { count: 2 }, fleet: { jobs: glob } });
  const plan = planLocal(synthesized, undefined, () => {
    ports.push(freePort());
    return ports.at(-1)!;
  });
  const stop = new AbortController();
  const running = runLocalFleet(onSqlite(plan, db), synthesized.config, {
    signal: stop.signal,
    timeoutSeconds: 60,
  });
  try {
    const broker = ["--backend", "sqlite", "--sqlite-path", db];
    assert.match(
      await submitAsPrinted({ job: { id: sweep, params: 3000 } }, broker),
      /Submitted job ".*": 30 chunks/,
    );
    await submitAsPrinted(
      { job: { id: module, params: 400, module: "tests/fixtures/quirky_job.ts" } },
      broker,
    );
    for (const [jobId, chunks] of [[sweep, 30], [module, 4]] as const) {
      const s = await until(
        async () => {
          const b = await openSqliteBroker({ path: db });
          try {
            const stats = await b.stats(jobId);
            return stats.completed === chunks ? stats : undefined;
          } finally {
            await b.close();
          }
        },
        60_000,
        `job "${jobId}" to complete`,
      );
      assert.equal(s.deadLettered, 0);
      assert.equal(s.duplicates, 0);
    }
    const results = await ttg(["results", "--sqlite-path", db, "--job-id", module, "--json"]);
    assert.equal(JSON.parse(results.stdout).handler, "test.quirky", "the module's own handler");
    // The generated probes' paths answer on every local fleet worker's metrics port.
    const fleet = synthesized.manifests.find((m) => m.object.metadata?.name === "ttg-fleet")!;
    const spec = plain(fleet.object).spec as { template: { spec: { containers: IContainer[] } } };
    const container = spec.template.spec.containers[0]!;
    for (const port of ports) {
      assert.equal(await probe(port, String(container.readinessProbe?.httpGet?.path)), 200);
      assert.equal(await probe(port, String(container.livenessProbe?.httpGet?.path)), 200);
    }
  } finally {
    stop.abort();
  }
  assert.deepEqual(
    await running,
    { code: 0, outcome: "" },
    "every fleet worker drained and exited 0",
  );
});

Deno.test("deploy --mode fleet --submit locally submits with the generated Job, follows the job and reports it", async () => {
  await using dir = await tempDir();
  const db = `${dir.path}/fleet.db`;
  const { glob, sweep } = jobNames();
  const synthesized = setup({
    workers: { count: 2 },
    fleet: { jobs: glob, submit: true },
    job: { id: sweep, params: 2000 },
  });
  const { code, outcome } = await runLocalFleet(
    onSqlite(planLocal(synthesized), db),
    synthesized.config,
    { signal: new AbortController().signal, timeoutSeconds: 60, intervalMs: 200 },
  );
  assert.equal(code, 0);
  assert.match(outcome, new RegExp(`Job "${sweep}" \\(ttg\\.sweep on sqlite\\)`));
  assert.match(outcome, /chunks\s+20 planned → 20 completed, 0 dead-lettered/);
});

/**
 * Why the local Redis cannot do what a test needs here (undefined when it can): `probe` makes
 * the calls the test relies on, against job ids of nobody's.
 */
async function redisProblem(
  what: string,
  probe: (broker: Broker, jobIds: readonly string[]) => Promise<unknown>,
): Promise<string | undefined> {
  if (!(await listening(6379))) return "no Redis on 127.0.0.1:6379";
  const { tag } = jobNames();
  try {
    const broker = await openBroker({ backend: "redis", url: "redis://127.0.0.1:6379" });
    try {
      await probe(broker, [`${tag}-a`, `${tag}-b`]);
    } finally {
      await broker.close();
    }
  } catch (error) {
    const code = (error as { code?: string }).code;
    return `the Redis driver cannot ${what} yet: ${code ? `${code}: ` : ""}${
      (error as Error).message
    }`;
  }
  return undefined;
}

const REDIS_FLEET_PROBLEM = await redisProblem("serve a fleet of several jobs", async (b, ids) => {
  await b.listJobs();
  await b.pull({ jobIds: ids, waitMs: 0 });
});
const REDIS_REPORT_PROBLEM = await redisProblem(
  "serve a fleet and report a job",
  async (b, ids) => {
    await b.listJobs();
    await allResults(b, ids[0]!);
  },
);

Deno.test({
  name:
    `deploy --target local --mode fleet serves two jobs submitted with its printed command on the local Redis, and stops on SIGTERM${
      REDIS_FLEET_PROBLEM ? ` (ignored: ${REDIS_FLEET_PROBLEM})` : ""
    }`,
  ignore: REDIS_FLEET_PROBLEM !== undefined,
  fn: async () => {
    const { glob, sweep, module } = jobNames();
    const task = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${REPO_ROOT}/tasks/deploy.ts`, "--target", "local", "--mode", "fleet"]
        .concat(["--jobs", glob, "--workers", "2"]),
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const lines: string[] = [];
    const reading = (async () => {
      for await (const chunk of task.stdout.pipeThrough(new TextDecoderStream())) {
        lines.push(...chunk.split("\n"));
      }
    })();
    try {
      await until(
        () => lines.some((l) => l.includes("Ctrl-C stops it")) || undefined,
        30_000,
        "the fleet",
      );
      const printed = lines.join("\n");
      assert.ok(
        printed.includes(
          localSubmitText(setup({ fleet: { jobs: glob } }).config).replace(/\n/g, "\n  "),
        ),
      );
      await submitAsPrinted({ job: { id: sweep, params: 3000 } }, ["--backend", "redis"]);
      await submitAsPrinted(
        { job: { id: module, params: 400, module: "tests/fixtures/quirky_job.ts" } },
        ["--backend", "redis"],
      );
      for (const [jobId, chunks] of [[sweep, 30], [module, 4]] as const) {
        await until(
          async () => {
            const status = await ttg(["status", "--backend", "redis", "--job-id", jobId, "--json"]);
            return JSON.parse(status.stdout || "{}").stats?.completed === chunks || undefined;
          },
          60_000,
          `job "${jobId}" to complete`,
        );
      }
      task.kill("SIGTERM");
      assert.equal((await task.status).code, 0, "the fleet drained and the task exited 0");
    } finally {
      try {
        task.kill("SIGKILL");
      } catch { /* exited */ }
      await reading;
      await task.status;
      for (const jobId of [sweep, module]) {
        await ttg(["reset", "--backend", "redis", "--job-id", jobId]);
      }
    }
  },
});

Deno.test({
  name:
    `deploy --target local --mode fleet --submit on the local Redis: the task submits with the generated Job, the fleet serves it, the task reports it and stops the fleet${
      REDIS_REPORT_PROBLEM ? ` (ignored: ${REDIS_REPORT_PROBLEM})` : ""
    }`,
  ignore: REDIS_REPORT_PROBLEM !== undefined,
  fn: async () => {
    // The glob matches this job alone, so the fleet pulls from one job at a time.
    const { glob, sweep } = jobNames();
    try {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${REPO_ROOT}/tasks/deploy.ts`, "--target", "local", "--mode", "fleet"]
          .concat(["--submit", "--jobs", glob, "--job-id", sweep, "--params", "2000"])
          .concat(["--workers", "2"]),
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr.slice(-2000));
      assert.match(stdout, new RegExp(`\\[ttg-submit-0\\] Submitted job "${sweep}": 20 chunks`));
      assert.match(stdout, /^ {2}20\/20 chunks done, 0 dead-lettered$/m);
      assert.match(stdout, /chunks\s+20 planned → 20 completed, 0 dead-lettered/);
      for (const pod of ["ttg-fleet-0", "ttg-fleet-1"]) {
        assert.match(
          stderr,
          new RegExp(`^\\[${pod}\\] .*"message":"STOPPED"`, "m"),
          `${pod} drained`,
        );
      }
    } finally {
      await ttg(["reset", "--backend", "redis", "--job-id", sweep]);
    }
  },
});
