/**
 * deploy/ in fleet mode: the config's checks (each bad field one problem naming it and its
 * value), the fleet's Deployment and what reads it (workers/settings.ts, the glob of
 * workers/job_catalog.ts), and KEDA's ScaledObject with its backlog query, evaluated by the real
 * `promtool` on synthetic series. The golden files of fleet mode are in tests/deploy_test.ts,
 * with the checks every variant passes (labels, hardening, credentials, documented variables).
 */
import "../tasks/node_warnings.ts";
import assert from "node:assert/strict";
import type { IContainer, IEnvVar, IPodSpec } from "kubernetes-models/v1";
import { type DeploymentProps, resolveConfig } from "../deploy/config.ts";
import { globRegex, servesJob } from "../deploy/job_glob.ts";
import { fleetBacklogQuery, ScaledObject } from "../deploy/keda_fleet.ts";
import type { KubeObject } from "../deploy/object.ts";
import { objectProblems, plain, synth } from "../deploy/synth.ts";
import { yamlText } from "../deploy/yaml.ts";
import { globMatcher } from "../workers/job_catalog.ts";
import { cliSettings } from "./cli_settings.ts";
import { tempDir } from "./helpers.ts";

const SECRET = "fleet-test-not-a-secret-01";

function problemsOf(props: DeploymentProps) {
  return resolveConfig(props, { randomSecret: () => SECRET }).problems;
}

Deno.test("fleet mode resolves with its defaults: every job, the image's /jobs, no submit Job", () => {
  const { config, problems } = resolveConfig({ mode: "fleet" }, { randomSecret: () => SECRET });
  assert.deepEqual(problems, []);
  assert.deepEqual(config.fleet, { jobs: undefined, jobsDir: "/jobs", submit: false });
  assert.equal(config.workers.idleTimeoutSeconds, 0);
  assert.equal(config.observability.exporter.enabled, true, "a fleet has a broker to export");
  assert.equal(config.observability.grafanaDashboard, true);
  assert.equal(config.keda.prometheusUrl, "http://prometheus-operated.monitoring.svc:9090");
});

Deno.test("a field fleet mode rules out, or a fleet field in another mode, is one problem naming the field and its value", () => {
  const cases: [DeploymentProps, string, string][] = [
    [
      { mode: "fleet", workers: { controller: "pods" } },
      "workers.controller",
      'expected unset with mode "fleet" (the fleet is a Deployment), got "pods"',
    ],
    [
      { mode: "fleet", workers: { idleTimeoutSeconds: 5 } },
      "workers.idleTimeoutSeconds",
      'expected 0 with mode "fleet" (a fleet worker waits for jobs submitted later), got 5',
    ],
    [
      { mode: "fleet", workers: { backoffLimit: 3 } },
      "workers.backoffLimit",
      `expected unset with mode "fleet" (a Deployment restarts its pods; backoffLimit is a Job's), got 3`,
    ],
    [
      { mode: "fleet", keda: { enabled: true, redisStream: "ttg:nightly:tasks" } },
      "keda.redisStream",
      'expected unset with mode "fleet" (the fleet scales on the backlog of every job it serves), got "ttg:nightly:tasks"',
    ],
    [
      { mode: "fleet", keda: { rabbitmqQueue: "ttg.tasks" } },
      "keda.rabbitmqQueue",
      'expected unset with mode "fleet" (the fleet scales on the backlog of every job it serves), got "ttg.tasks"',
    ],
    [
      { mode: "fleet", fleet: { jobs: "nightly *" } },
      "fleet.jobs",
      'expected a glob on job ids (letters, digits, ".", "_", "-", "*", "?" or [...], at most 63), got "nightly *"',
    ],
    [
      { mode: "fleet", fleet: { jobsDir: "jobs" } },
      "fleet.jobsDir",
      'expected an absolute directory in the image, got "jobs"',
    ],
    [
      { mode: "fleet", fleet: { jobs: "nightly-*", submit: true } },
      "job.id",
      'expected an id that fleet.jobs "nightly-*" matches (fleet.submit submits it to the fleet), got "ttg"',
    ],
    [
      { mode: "fleet", job: { command: ["python3", "/app/sim.py"] } },
      "job.command",
      'expected unset with mode "fleet" (a fleet worker never runs a program that a job record names)',
    ],
    [
      { mode: "fleet", keda: { enabled: true }, observability: { exporter: { enabled: false } } },
      "keda.enabled",
      "expected observability.exporter.enabled true with it (the fleet scales on the exporter's gauges)",
    ],
    [
      { mode: "fleet", keda: { prometheusUrl: "prometheus:9090" } },
      "keda.prometheusUrl",
      'expected an http(s) URL of a Prometheus server, got "prometheus:9090"',
    ],
    [
      { fleet: { jobs: "nightly-*" } },
      "fleet.jobs",
      'expected unset with mode "queue" (it configures mode "fleet"), got "nightly-*"',
    ],
    [
      { mode: "static", fleet: { submit: true } },
      "fleet.submit",
      'expected unset with mode "static" (it configures mode "fleet"), got true',
    ],
    [
      { keda: { enabled: true, prometheusUrl: "http://prometheus:9090" } },
      "keda.prometheusUrl",
      'expected unset with mode "queue" (only the fleet\'s ScaledObject reads Prometheus), got "http://prometheus:9090"',
    ],
    [
      { mode: "static", keda: { enabled: true } },
      "keda.enabled",
      'expected false with mode "static" (KEDA scales queue or fleet workers)',
    ],
  ];
  for (const [props, field, message] of cases) {
    const problems = problemsOf(props);
    assert.deepEqual(problems, [{ field, message }], JSON.stringify(props));
  }
});

Deno.test("what fleet mode allows: idle timeout 0 (its default), KEDA, a submitted job the glob matches, the dashboard and monitors", () => {
  const allowed: DeploymentProps[] = [
    { mode: "fleet", workers: { idleTimeoutSeconds: 0, count: 5 } },
    { mode: "fleet", keda: { enabled: true, minReplicas: 0, maxReplicas: 30 } },
    { mode: "fleet", fleet: { jobs: "nightly-*", submit: true }, job: { id: "nightly-7" } },
    {
      mode: "fleet",
      dashboard: { enabled: true },
      observability: { prometheusOperator: "podmonitor" },
    },
  ];
  for (const props of allowed) assert.deepEqual(problemsOf(props), [], JSON.stringify(props));
});

Deno.test("deploy/'s glob on job ids means what the fleet worker's glob means (workers/job_catalog.ts)", () => {
  const ids = ["nightly-1", "nightly-", "nightly", "adhoc.v2", "adhoc-v2", "a", "ab", "b1", "x[1]"];
  for (const glob of ["*", "nightly-*", "nightly-?", "adhoc.v?", "[ab]*", "a?", "x[1]", "[a-b]1"]) {
    const worker = globMatcher(glob);
    for (const id of ids) {
      assert.equal(servesJob(glob, id), worker(id), `"${glob}" on "${id}"`);
    }
  }
  assert.equal(globRegex("v1.?"), "v1\\..");
  assert.ok(servesJob(undefined, "anything"), "no glob: every job");
});

function setup(props: DeploymentProps = {}) {
  const synthesized = synth({ mode: "fleet", ...props }, { randomSecret: () => SECRET });
  const byName = (kind: string, name: string) => {
    const found = synthesized.manifests.find((m) =>
      m.object.kind === kind && m.object.metadata?.name === name
    );
    assert.ok(found, `${kind} "${name}" is generated`);
    return { stage: found.stage, data: plain(found.object) };
  };
  return { ...synthesized, byName };
}

/** The one container and the pod spec of a workload's template. */
function podOf(data: Record<string, unknown>): { spec: IPodSpec; container: IContainer } {
  const spec = (data.spec as { template: { spec: IPodSpec } }).template.spec;
  return { spec, container: spec.containers[0]! };
}

Deno.test("the fleet is a Deployment of ttg worker --all-jobs --jobs-dir /jobs --idle-timeout 0, probed on its metrics port, with no job settings", () => {
  const { byName, manifests } = setup({ workers: { count: 4 } });
  const fleet = byName("Deployment", "ttg-fleet");
  assert.equal(fleet.stage, "workers");
  assert.equal((fleet.data.spec as { replicas: number }).replicas, 4);
  const { spec, container } = podOf(fleet.data);
  assert.equal(spec.restartPolicy, "Always");
  assert.equal(container.name, "worker");
  assert.deepEqual(container.args, [
    "worker",
    "--all-jobs",
    "--jobs-dir",
    "/jobs",
    "--idle-timeout",
    "0",
  ]);
  assert.deepEqual(container.readinessProbe?.httpGet, { path: "/readyz", port: "metrics" });
  assert.deepEqual(container.livenessProbe?.httpGet, { path: "/healthz", port: "metrics" });
  const env = (container.env ?? []).map((e) => e.name);
  for (const name of ["TTG_JOB_ID", "TTG_PARAMS", "TTG_IDLE_TIMEOUT_SECONDS", "TTG_JOB_MODULE"]) {
    assert.ok(!env.includes(name), `${name}: each job's settings come from its record`);
  }
  assert.ok(env.includes("TTG_METRICS_PORT") && env.includes("TTG_CONCURRENCY"));
  assert.deepEqual(
    manifests.filter((m) => m.object.kind === "Job").map((m) => m.object.metadata?.name),
    ["ttg-report", "ttg-report-progress"],
    "no submit Job by default, and no worker Job",
  );
});

Deno.test("with fleet.submit a submit Job is generated; the one-off Jobs run in the jobs directory the fleet resolves modules against", () => {
  const { byName } = setup({
    fleet: { jobs: "nightly-*", jobsDir: "/opt/jobs", submit: true },
    job: { id: "nightly-3", module: "sums/sum_job.ts" },
  });
  const submit = byName("Job", "ttg-submit");
  assert.equal(submit.stage, "submit");
  assert.equal(podOf(submit.data).container.workingDir, "/opt/jobs");
  const moduleEnv = podOf(submit.data).container.env?.find((e) => e.name === "TTG_JOB_MODULE");
  assert.equal(moduleEnv?.value, "sums/sum_job.ts", "recorded as given: relative to the jobs dir");
  for (const job of ["ttg-report", "ttg-report-progress"]) {
    assert.equal(podOf(byName("Job", job).data).container.workingDir, "/opt/jobs", job);
  }
  const fleet = podOf(byName("Deployment", "ttg-fleet").data).container;
  assert.deepEqual(fleet.args?.slice(1, 5), ["--jobs", "nightly-*", "--jobs-dir", "/opt/jobs"]);
  assert.equal(fleet.workingDir, undefined);
});

/** A container's env as the kubelet gives it, Secrets from the generated ones. */
function kubeletEnv(objects: readonly KubeObject[], container: IContainer) {
  const secrets = new Map(
    objects.filter((o) => o.kind === "Secret").map((o) => {
      const data = plain(o) as { metadata: { name: string }; stringData: Record<string, string> };
      return [data.metadata.name, data.stringData];
    }),
  );
  const env: Record<string, string> = {};
  for (const e of (container.env ?? []) as IEnvVar[]) {
    const ref = e.valueFrom?.secretKeyRef;
    if (e.value !== undefined) env[e.name] = e.value;
    else if (ref) env[e.name] = secrets.get(ref.name ?? "")?.[ref.key] ?? "";
    else if (e.valueFrom?.fieldRef) env[e.name] = `<${e.valueFrom.fieldRef.fieldPath}>`;
  }
  return env;
}

Deno.test("workers/settings.ts reads the fleet's container as a fleet worker of the broker, forever", async () => {
  for (const backend of ["redis", "rabbitmq"] as const) {
    const { byName, manifests } = setup({ backend, fleet: { jobs: "nightly-*" } });
    const { container } = podOf(byName("Deployment", "ttg-fleet").data);
    const objects = manifests.map((m) => m.object);
    const s = await cliSettings(container.args ?? [], kubeletEnv(objects, container));
    assert.equal(s.jobsPattern, "nightly-*");
    assert.equal(s.jobsDir, "/jobs");
    assert.equal(s.idleTimeoutMs, 0);
    assert.equal(s.metricsPort, 9464);
    assert.equal(s.workerId, "<metadata.name>");
    assert.equal(
      s.brokerUrl,
      backend === "redis"
        ? `redis://:${SECRET}@ttg-redis.ttg.svc:6379`
        : `amqp://ttg:${SECRET}@ttg-rabbitmq.ttg.svc:5672`,
    );
  }
  const all = setup();
  const { container } = podOf(all.byName("Deployment", "ttg-fleet").data);
  const s = await cliSettings(
    container.args ?? [],
    kubeletEnv(all.manifests.map((m) => m.object), container),
  );
  assert.equal(s.jobsPattern, "*", "--all-jobs");
});

Deno.test("KEDA in fleet mode: a ScaledObject owns the fleet's replicas and reads Prometheus; no broker access for KEDA", () => {
  const { byName, manifests } = setup({
    backend: "rabbitmq",
    keda: { enabled: true, maxReplicas: 20, targetPerWorker: 50, pollingIntervalSeconds: 15 },
  });
  const fleet = byName("Deployment", "ttg-fleet");
  assert.equal((fleet.data.spec as { replicas?: number }).replicas, undefined);
  const scaled = byName("ScaledObject", "ttg-fleet");
  assert.equal(scaled.stage, "workers");
  assert.deepEqual(scaled.data.spec, {
    scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "ttg-fleet" },
    pollingInterval: 15,
    minReplicaCount: 0,
    maxReplicaCount: 20,
    triggers: [{
      type: "prometheus",
      metadata: {
        serverAddress: "http://prometheus-operated.monitoring.svc:9090",
        query:
          'sum({__name__=~"ttg_queue_ready|ttg_queue_delayed|ttg_queue_in_flight", namespace="ttg", backend="rabbitmq"} and on (namespace, job_id, backend) (ttg_job_info{namespace="ttg", backend="rabbitmq", state="running"} == 1)) or vector(0)',
        threshold: "50",
        activationThreshold: "0",
      },
    }],
  });
  const kinds = manifests.map((m) => m.object.kind);
  assert.ok(!kinds.includes("TriggerAuthentication") && !kinds.includes("ScaledJob"));
  const policy = byName("NetworkPolicy", "ttg-broker-ingress").data as {
    spec: { ingress: { from: unknown[] }[] };
  };
  assert.equal(policy.spec.ingress[0]!.from.length, 1, "only this instance's TTG pods");
});

Deno.test("a ScaledObject is checked by its own validation, and must scale a generated Deployment", () => {
  const { manifests } = setup({ keda: { enabled: true } });
  const objects = manifests.map((m) => m.object);
  const scaled = objects.find((o) => o instanceof ScaledObject) as ScaledObject;
  scaled.validate();
  const broken = new ScaledObject({
    metadata: scaled.metadata,
    spec: {
      ...scaled.spec,
      scaleTargetRef: { ...scaled.spec.scaleTargetRef, name: "ttg-elsewhere" },
      minReplicaCount: 3,
      maxReplicaCount: 2,
      triggers: [{
        type: "prometheus",
        metadata: {
          serverAddress: "prometheus:9090",
          query: "",
          threshold: "ten",
          activationThreshold: "0",
        },
      }],
    },
  });
  assert.throws(() => broken.validate(), (e: Error) => {
    assert.match(e.message, /minReplicaCount must not exceed/);
    assert.match(e.message, /serverAddress must be an http\(s\) URL/);
    assert.match(e.message, /metadata.query is required/);
    assert.match(e.message, /metadata.threshold must be a number in a string, got ten/);
    return true;
  });
  const dangling = objects.map((o) => (o === scaled ? broken : o));
  const problems = objectProblems(dangling).map((p) => `${p.field}: ${p.message}`);
  assert.ok(
    problems.includes(
      'ScaledObject "ttg-fleet": scales Deployment "ttg-elsewhere", which is not generated',
    ),
    problems.join("\n"),
  );
});

const PROMTOOL = (() => {
  try {
    return new Deno.Command("promtool", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

/** The series of the backlog test: jobs the query must count, and jobs it must leave out. */
function backlogSeries(): { series: string; values: string }[] {
  const job = (labels: string, ready: number, state = "running", delayed = 0, inFlight = 0) => [
    { series: `ttg_queue_ready{${labels}}`, values: `${ready}x3` },
    { series: `ttg_queue_delayed{${labels}}`, values: `${delayed}x3` },
    { series: `ttg_queue_in_flight{${labels}}`, values: `${inFlight}x3` },
    { series: `ttg_queue_dead_lettered{${labels}}`, values: "1000x3" },
    ...["running", "paused", "completed"].map((s) => ({
      series: `ttg_job_info{${labels},state="${s}"}`,
      values: `${s === state ? 1 : 0}x3`,
    })),
  ];
  const at = (namespace: string, backend: string, jobId: string) =>
    `namespace="${namespace}",backend="${backend}",job_id="${jobId}"`;
  return [
    ...job(at("ttg", "redis", "nightly-1"), 5, "running", 2, 3), // 10
    ...job(at("ttg", "redis", "nightly-2"), 40, "running"), // 40
    ...job(at("ttg", "redis", "nightly-3"), 7, "paused"), // paused: not served
    ...job(at("ttg", "redis", "nightly-4"), 0, "completed"),
    ...job(at("ttg", "redis", "adhoc"), 100, "running"), // not matched by "nightly-*"
    ...job(at("other", "redis", "nightly-5"), 50, "running"), // another deployment's
    ...job(at("ttg", "rabbitmq", "nightly-6"), 9, "running"), // another broker's
  ];
}

Deno.test({
  name:
    `promtool: the fleet's backlog is ready + delayed + in flight of the running jobs it serves, in its namespace, 0 without any${
      PROMTOOL ? "" : " (ignored: promtool is not on PATH)"
    }`,
  ignore: !PROMTOOL,
  fn: async () => {
    await using dir = await tempDir();
    const query = (props: DeploymentProps) =>
      fleetBacklogQuery(resolveConfig({ mode: "fleet", ...props }).config);
    const sample = (expr: string, value: number) => ({
      expr,
      eval_time: "2m",
      exp_samples: [{ labels: "{}", value }],
    });
    const tests = {
      rule_files: [],
      evaluation_interval: "1m",
      tests: [{
        interval: "1m",
        input_series: backlogSeries(),
        promql_expr_test: [
          sample(query({ fleet: { jobs: "nightly-*" } }), 50),
          sample(query({}), 150),
          sample(query({ fleet: { jobs: "nightly-[2-9]" } }), 40),
          sample(query({ namespace: "empty" }), 0),
        ],
      }],
    };
    await Deno.writeTextFile(`${dir.path}/backlog.yaml`, yamlText(tests));
    const out = await new Deno.Command("promtool", {
      args: ["test", "rules", "backlog.yaml"],
      cwd: dir.path,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
  },
});
