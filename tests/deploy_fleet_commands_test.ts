/**
 * `deno task deploy --mode fleet`: the exact commands it runs on a cluster (its steps, then with a
 * fake `kubectl` on PATH), and the port-forward and submit commands it prints, down to what
 * workers/settings.ts makes of that submit command.
 */
import "../tasks/node_warnings.ts";
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import type { DeploymentProps } from "../deploy/config.ts";
import { synth } from "../deploy/synth.ts";
import { finishSteps, startSteps, type Step } from "../tasks/deploy_cluster.ts";
import { parseDemoArgs } from "../tasks/demo_kind.ts";
import { fleetGuide, renderSubmitCommand, submitCommand } from "../tasks/fleet_submit.ts";
import { cliSettings } from "./cli_settings.ts";
import { fakeCluster, task } from "./fake_cluster.ts";

const SECRET = "fleet-commands-secret-01";

function setup(props: DeploymentProps = {}) {
  return synth({ mode: "fleet", ...props }, { randomSecret: () => SECRET });
}

function argvOf(steps: readonly Step[]): string[][] {
  return steps.map((s) => (s.kind === "run" ? [...s.argv] : ["<wait-progress>"]));
}

/** The objects each apply step sends, as `Kind/name`. */
function applied(steps: readonly Step[]): string[][] {
  return steps.flatMap((step) => step.kind === "run" && step.stdin ? [step.stdin] : []).map((
    yaml,
  ) => parseAllDocuments(yaml).map((d) => `${d.get("kind")}/${d.getIn(["metadata", "name"])}`));
}

const APPLY = ["kubectl", "apply", "-f", "-"];
const ROLLOUT_REDIS = [
  "kubectl",
  "rollout",
  "status",
  "statefulset/ttg-redis",
  "--namespace=ttg",
  "--timeout=300s",
];
const ROLLOUT_FLEET = [
  "kubectl",
  "rollout",
  "status",
  "deployment/ttg-fleet",
  "--namespace=ttg",
  "--timeout=300s",
];

Deno.test("deploy --mode fleet: apply the infrastructure, wait for the broker, start the fleet, wait for its rollout; it deletes nothing and waits for no job", () => {
  const s = setup();
  assert.deepEqual(argvOf([...startSteps(s), ...finishSteps(s)]), [
    APPLY,
    ROLLOUT_REDIS,
    APPLY,
    ROLLOUT_FLEET,
  ]);
  assert.deepEqual(applied(startSteps(s)), [
    [
      "Namespace/ttg",
      "Secret/ttg-redis-auth",
      "Service/ttg-redis",
      "StatefulSet/ttg-redis",
      "NetworkPolicy/ttg-broker-ingress",
      "Deployment/ttg-exporter",
      "Service/ttg-exporter",
      "ConfigMap/ttg-grafana-dashboard",
    ],
    ["Deployment/ttg-fleet"],
  ]);
  const keda = setup({ keda: { enabled: true } });
  assert.deepEqual(applied(startSteps(keda))[1], [
    "Deployment/ttg-fleet",
    "ScaledObject/ttg-fleet",
  ]);
});

Deno.test("deploy --mode fleet --submit: then replace the submit Job, run it, follow the job's counters and print its report", () => {
  const s = setup({ fleet: { submit: true }, job: { id: "nightly-2" } });
  assert.deepEqual(argvOf([...startSteps(s), ...finishSteps(s)]), [
    APPLY,
    ROLLOUT_REDIS,
    APPLY,
    ROLLOUT_FLEET,
    [
      "kubectl",
      "delete",
      "job",
      "ttg-submit",
      "--namespace=ttg",
      "--ignore-not-found",
      "--wait=true",
    ],
    APPLY,
    [
      "kubectl",
      "wait",
      "--for=condition=complete",
      "job/ttg-submit",
      "--namespace=ttg",
      "--timeout=180s",
    ],
    ["kubectl", "logs", "job/ttg-submit", "--namespace=ttg"],
    ["<wait-progress>"],
    [
      "kubectl",
      "delete",
      "job",
      "ttg-report",
      "--namespace=ttg",
      "--ignore-not-found",
      "--wait=true",
    ],
    APPLY,
    [
      "kubectl",
      "wait",
      "--for=condition=complete",
      "job/ttg-report",
      "--namespace=ttg",
      "--timeout=180s",
    ],
    ["kubectl", "logs", "job/ttg-report", "--namespace=ttg"],
  ]);
  assert.deepEqual(applied([...startSteps(s), ...finishSteps(s)]).slice(1), [
    ["Deployment/ttg-fleet"],
    ["Job/ttg-submit"],
    ["Job/ttg-report"],
  ]);
});

Deno.test("the printed port-forward and submit commands: a local port 10000 above the broker's, the password read from the Secret", () => {
  const redis = submitCommand(
    setup({ job: { id: "nightly-1", params: 5000 } }).config,
    "port-forward",
  );
  assert.deepEqual(redis.portForward, [
    "kubectl",
    "port-forward",
    "service/ttg-redis",
    "16379:6379",
    "--namespace=ttg",
  ]);
  assert.equal(
    renderSubmitCommand(redis, "ttg"),
    [
      "REDIS_PORT=16379 \\",
      '  REDIS_PASSWORD="$(kubectl get secret ttg-redis-auth --namespace=ttg --output=jsonpath={.data.password} | base64 -d)" \\',
      "  deno task ttg submit --backend redis --job-id nightly-1 --params 5000 --chunk-size 100",
    ].join("\n"),
  );
  const rabbit = submitCommand(
    setup({
      backend: "rabbitmq",
      namespace: "sweeps",
      rabbitmq: { vhost: "jobs", queueType: "quorum" },
      job: { module: "sums/sum_job.ts", workMs: 0 },
    }).config,
    "port-forward",
  );
  assert.deepEqual(rabbit.portForward, [
    "kubectl",
    "port-forward",
    "service/ttg-rabbitmq",
    "15672:5672",
    "--namespace=sweeps",
  ]);
  assert.deepEqual(rabbit.env, [
    { name: "RABBITMQ_PORT", value: "15672" },
    { name: "RABBITMQ_USER", secret: "ttg-rabbitmq-auth", key: "username" },
    { name: "RABBITMQ_PASSWORD", secret: "ttg-rabbitmq-auth", key: "password" },
    { name: "RABBITMQ_VHOST", value: "jobs" },
  ]);
  assert.deepEqual(rabbit.argv.slice(4), [
    "--backend",
    "rabbitmq",
    "--job-id",
    "ttg",
    "--params",
    "10000",
    "--chunk-size",
    "100",
    "--work-ms",
    "0",
    "--job",
    "sums/sum_job.ts",
    "--rabbitmq-queue-type",
    "quorum",
  ]);
});

Deno.test("the printed submit command reaches the forwarded broker with the Secret's credentials (workers/settings.ts)", async () => {
  for (const backend of ["redis", "rabbitmq"] as const) {
    const { config } = setup({ backend, job: { id: "nightly-4", chunkSize: 50 } });
    const command = submitCommand(config, "port-forward");
    const secrets: Record<string, string> = { password: SECRET, username: "ttg" };
    const env = Object.fromEntries(
      command.env.map((v) => [v.name, "value" in v ? v.value : secrets[v.key]!]),
    );
    assert.deepEqual(command.argv.slice(0, 3), ["deno", "task", "ttg"]);
    const s = await cliSettings(command.argv.slice(3), env);
    assert.equal(
      s.brokerUrl,
      backend === "redis"
        ? `redis://:${SECRET}@127.0.0.1:16379`
        : `amqp://ttg:${SECRET}@127.0.0.1:15672`,
    );
    assert.deepEqual([s.jobId, s.params, s.chunkSize], ["nightly-4", 10_000, 50]);
  }
});

Deno.test("the guide names the jobs the fleet serves; with TLS it sends submitters to --submit (a forward cannot verify the certificate)", () => {
  const guide = fleetGuide(
    setup({ fleet: { jobs: "nightly-*" }, job: { id: "nightly-1" } }).config,
  );
  assert.match(guide, /^The fleet "ttg-fleet" serves the jobs whose id matches "nightly-\*"\.$/m);
  assert.match(guide, /^ {2}kubectl port-forward service\/ttg-redis 16379:6379 --namespace=ttg$/m);
  assert.match(guide, /a new --job-id for each job that "nightly-\*" matches/);
  const tls = fleetGuide(setup({ tls: { secretName: "broker-tls" } }).config);
  assert.doesNotMatch(tls, /kubectl port-forward/);
  assert.match(tls, /submit from inside the cluster by running this deploy again with --submit/);
});

Deno.test("with a fake kubectl, deno task deploy --mode fleet runs exactly its steps and ends with the port-forward and submit commands", async () => {
  await using fake = await fakeCluster();
  const { code, stdout, stderr } = await task("deploy.ts", ["--mode", "fleet"], fake.env);
  assert.equal(code, 0, stderr);
  assert.deepEqual(await fake.calls(), [
    "get --raw /readyz --request-timeout=5s",
    "get secret ttg-redis-auth --namespace=ttg --ignore-not-found --output=jsonpath={.data}",
    "get secret ttg-rabbitmq-auth --namespace=ttg --ignore-not-found --output=jsonpath={.data}",
    "get namespace ttg --ignore-not-found --output=jsonpath={.metadata.labels}",
    "apply -f -",
    "rollout status statefulset/ttg-redis --namespace=ttg --timeout=300s",
    "apply -f -",
    "rollout status deployment/ttg-fleet --namespace=ttg --timeout=300s",
  ]);
  assert.match(await fake.stdin(0), /password: existing-cluster-password/);
  assert.match(await fake.stdin(1), /name: ttg-fleet\n/);
  assert.ok(stdout.trimEnd().endsWith(fleetGuide(setup().config)), stdout);
});

Deno.test("with a fake kubectl, deno task deploy --mode fleet --submit submits with a Job, follows the job and prints its report", async () => {
  await using fake = await fakeCluster();
  const { code, stdout, stderr } = await task(
    "deploy.ts",
    ["--mode", "fleet", "--submit"],
    fake.env,
  );
  assert.equal(code, 0, stderr);
  const calls = await fake.calls();
  assert.deepEqual(calls.slice(7, 12), [
    "rollout status deployment/ttg-fleet --namespace=ttg --timeout=300s",
    "delete job ttg-submit --namespace=ttg --ignore-not-found --wait=true",
    "apply -f -",
    "wait --for=condition=complete job/ttg-submit --namespace=ttg --timeout=180s",
    "logs job/ttg-submit --namespace=ttg",
  ]);
  assert.ok(calls.includes("logs job/ttg-report-progress --namespace=ttg"), "follows the job");
  assert.equal(calls.at(-1), "logs job/ttg-report --namespace=ttg");
  assert.match(stdout, /40\/100 chunks done[\s\S]*100\/100 chunks done/);
  assert.match(stdout, /REPORT 100\/100 completed/);
});

Deno.test("deploy --mode fleet --dry-run prints the steps, then the guide as comments, and needs no cluster", async () => {
  const { code, stdout, stderr } = await task("deploy.ts", ["--mode", "fleet", "--dry-run"], {
    PATH: "/nonexistent",
  });
  assert.equal(code, 0, stderr);
  assert.match(
    stdout,
    /^# 4\. Wait for the fleet's rollout\nkubectl rollout status deployment\/ttg-fleet/m,
  );
  assert.match(
    stdout,
    /^# {3}kubectl port-forward service\/ttg-redis 16379:6379 --namespace=ttg$/m,
  );
});

Deno.test("the Kind demo refuses --mode fleet with one line pointing to the fleet deploy", () => {
  assert.throws(
    () => parseDemoArgs(["--mode", "fleet", "--fault-demo"]),
    /^UsageError: Invalid "--mode": the demo runs one sweep on worker pods of its own, got "fleet" \(deploy a fleet with `deno task deploy --mode fleet`\)$/,
  );
});
