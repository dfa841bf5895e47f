/**
 * `deno task deploy --target local`: the generated containers as local processes. Unit tests of
 * the mapping, then end to end against the local Redis and RabbitMQ (each ignored, with its
 * reason, when that broker is not reachable here).
 */
import "../tasks/node_warnings.ts";
import assert from "node:assert/strict";
import { expandReferences, localPlan } from "../deploy/local.ts";
import type { DeploymentProps } from "../deploy/config.ts";
import { synth } from "../deploy/synth.ts";
import { localSecretOverrides, planLocal } from "../tasks/deploy_local.ts";
import { listening, ttg } from "./helpers.ts";
import { computeRange } from "../jobs/sweep.ts";

const ENTRY = ["deno", "run", "-A", "workers/cli.ts"];

function setup(props: DeploymentProps = {}) {
  return synth(props, { randomSecret: () => "local-test-secret-0001" });
}

Deno.test("localPlan() runs each pod a controller would start, with the container's env and args", () => {
  const plan = localPlan(setup({ backend: "redis", workers: { count: 2 } }).manifests, {
    entrypoint: ENTRY,
  });
  assert.deepEqual(plan.submit.map((p) => p.name), ["ttg-submit-0"]);
  assert.deepEqual(plan.workers.map((p) => p.name), ["ttg-worker-0", "ttg-worker-1"]);
  assert.deepEqual(plan.report.map((p) => p.argv), [[...ENTRY, "results"]]);
  const w = plan.workers[1]!;
  assert.deepEqual(w.argv, [...ENTRY, "worker"]);
  assert.equal(w.env.REDIS_HOST, "127.0.0.1", "the Service host name maps to the local address");
  assert.equal(
    w.env.REDIS_PASSWORD,
    "local-test-secret-0001",
    "without an override, the generated Secret's value",
  );
  assert.equal(w.env.POD_NAME, "ttg-worker-1");
  assert.equal(w.env.NODE_NAME, "local");
  assert.equal(w.env.TTG_CONCURRENCY, "4");
});

Deno.test("the explicit override map gives the local brokers' real credentials: no Redis password, guest only on localhost", () => {
  const redis = planLocal(setup({ backend: "redis" }), "deno");
  assert.ok(!("REDIS_PASSWORD" in redis.workers[0]!.env));
  const rabbit = planLocal(setup({ backend: "rabbitmq" }), "deno");
  const env = rabbit.workers[0]!.env;
  assert.deepEqual([env.RABBITMQ_HOST, env.RABBITMQ_USER, env.RABBITMQ_PASSWORD], [
    "127.0.0.1",
    "guest",
    "guest",
  ]);
  assert.deepEqual(localSecretOverrides(setup().config), {
    "ttg-redis-auth/password": null,
    "ttg-rabbitmq-auth/username": "guest",
    "ttg-rabbitmq-auth/password": "guest",
  });
});

Deno.test("locally each worker serves its metrics on a port of its own, and the exporter is not run", () => {
  let next = 20_000;
  const plan = planLocal(setup({ backend: "redis", workers: { count: 3 } }), "deno", () => next++);
  assert.deepEqual(plan.workers.map((p) => p.env.TTG_METRICS_PORT), ["20000", "20001", "20002"]);
  const all = [...plan.submit, ...plan.workers, ...plan.report];
  assert.ok(
    !all.some((p) => p.argv.includes("exporter")),
    "the exporter is infra, like the broker",
  );
  assert.ok(all.every((p) => p.role === "worker" || !("TTG_METRICS_PORT" in p.env)));
  const generated = localPlan(setup().manifests, { entrypoint: ENTRY });
  assert.equal(
    generated.workers[0]!.env.TTG_METRICS_PORT,
    "9464",
    "without the option, the generated port",
  );
});

Deno.test("static mode locally: the Job controller's JOB_COMPLETION_INDEX is set per index, and nothing is submitted", () => {
  const plan = localPlan(setup({ mode: "static", workers: { count: 3 } }).manifests, {
    entrypoint: ENTRY,
  });
  assert.deepEqual(plan.submit, []);
  assert.deepEqual(plan.workers.map((p) => p.env.JOB_COMPLETION_INDEX), ["0", "1", "2"]);
  assert.deepEqual(plan.workers[0]!.argv, [...ENTRY, "static"]);
});

Deno.test("$(VAR) references expand as the kubelet expands them", () => {
  assert.equal(
    expandReferences("--requirepass $(PW) $(MISSING) $$(PW)", { PW: "s3cret" }),
    "--requirepass s3cret $(MISSING) $(PW)",
  );
});

Deno.test("a Secret key that is neither generated nor overridden is an error naming the variable", () => {
  const { manifests } = setup({ backend: "redis" });
  const withoutSecret = manifests.filter((m) => m.object.kind !== "Secret");
  assert.throws(
    () => localPlan(withoutSecret, { entrypoint: ENTRY }),
    /Cannot resolve REDIS_PASSWORD of "ttg-submit-0": Secret key "ttg-redis-auth\/password" is not generated/,
  );
});

function fileExists(path: string): boolean {
  try {
    return Deno.statSync(new URL(path, import.meta.url)).isFile;
  } catch {
    return false;
  }
}

const redisUp = await listening(6379);
const rabbitUp = await listening(5672);
const rabbitBroker = fileExists("../brokers/rabbitmq/rabbitmq.ts");

async function deployLocal(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../tasks/deploy.ts", import.meta.url).pathname,
      "--target",
      "local",
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

async function e2e(backend: "redis" | "rabbitmq") {
  const jobId = `deploy-local-${backend}-${crypto.randomUUID().slice(0, 8)}`;
  const flags = [
    "--backend",
    backend,
    "--job-id",
    jobId,
    "--params",
    "3000",
    "--chunk-size",
    "100",
    "--workers",
    "3",
  ];
  const brokerEnv: Record<string, string> = backend === "rabbitmq"
    ? { AMQP_URL: "amqp://guest:guest@127.0.0.1:5672" }
    : {};
  try {
    const first = await deployLocal([...flags, "--idle-timeout", "1", "--work-ms", "0"]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /\[ttg-submit-0\] Submitted job ".*": 30 chunks/);
    assert.match(first.stdout, /chunks\s+30 planned → 30 completed, 0 dead-lettered/);
    for (const pod of ["ttg-worker-0", "ttg-worker-1", "ttg-worker-2"]) {
      assert.match(
        first.stderr + first.stdout,
        new RegExp(`"pod_name":"${pod}"`),
        `${pod} ran with its POD_NAME`,
      );
    }
    const second = await deployLocal([...flags, "--idle-timeout", "1"]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(
      second.stdout,
      /was already submitted; nothing enqueued/,
      "the submit Job is idempotent",
    );
    const results = await ttg(
      ["results", "--backend", backend, "--job-id", jobId, "--json"],
      brokerEnv,
    );
    const report = JSON.parse(results.stdout);
    assert.equal(report.chunks.completed, 30);
    assert.equal(report.chunks.total, 30);
    assert.equal(report.aggregate.count, 3000);
  } finally {
    await ttg(["reset", "--backend", backend, "--job-id", jobId], brokerEnv);
  }
}

Deno.test({
  name:
    `deploy --target local runs the generated submit, worker and report containers against the local Redis${
      redisUp ? "" : " (ignored: no Redis on 127.0.0.1:6379)"
    }`,
  ignore: !redisUp,
  fn: () => e2e("redis"),
});

Deno.test({
  name: `deploy --target local runs the generated containers against the local RabbitMQ${
    !rabbitBroker
      ? " (ignored: brokers/rabbitmq/rabbitmq.ts is not written yet)"
      : rabbitUp
      ? ""
      : " (ignored: no RabbitMQ on 127.0.0.1:5672)"
  }`,
  ignore: !rabbitBroker || !rabbitUp,
  fn: () => e2e("rabbitmq"),
});

Deno.test("deploy --target local --mode static: each index computes its own share, together the whole sweep", async () => {
  const { code, stdout, stderr } = await deployLocal([
    "--mode",
    "static",
    "--workers",
    "4",
    "--params",
    "1001",
  ]);
  assert.equal(code, 0, stderr);
  const lines = stdout.trim().split("\n");
  const total = lines.pop();
  const shares = lines.map((line) => JSON.parse(line.replace(/^\[ttg-static-\d\] /, "")));
  assert.deepEqual(shares.map((s) => s.index).sort(), [0, 1, 2, 3]);
  assert.equal(shares.reduce((n, s) => n + s.result.count, 0), 1001);
  const sum = computeRange(0, 1001).sum.toFixed(6);
  assert.match(
    total ?? "",
    new RegExp(`^Total: 4/4 pods, 1001 parameters, sum ${sum}, count 1001,`),
  );
});
