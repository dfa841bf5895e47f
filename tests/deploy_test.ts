// deno-lint-ignore-file no-explicit-any -- tests walk the generated objects as plain JSON
/**
 * deploy/: config validation, golden YAML, schema validity, labels, security settings,
 * credentials and the env wiring of every `ttg` container against docs/SETTINGS.md and
 * workers/settings.ts. Regenerate the golden files with `UPDATE_GOLDEN=1 deno test -A tests/deploy_test.ts`.
 */
import "../tasks/node_warnings.ts";
import assert from "node:assert/strict";
import { parse, parseAllDocuments } from "yaml";
import type { IContainer, IEnvVar, IPodSpec } from "kubernetes-models/v1";
import {
  DEFAULT_KEY_PREFIX,
  GROUP as REDIS_GROUP,
  jobKeyBase,
  streamKey,
} from "../brokers/redis/codec.ts";
import { jobNames } from "../brokers/rabbitmq/topology.ts";
import {
  brokerNames,
  type DeploymentProps,
  randomPassword,
  resolveConfig,
} from "../deploy/config.ts";
import { DASHBOARD_FILE } from "../deploy/dashboard.ts";
import { ScaledJob } from "../deploy/keda.ts";
import { kindCluster } from "../deploy/kind.ts";
import { LABEL, ownedSelector } from "../deploy/labels.ts";
import type { KubeObject } from "../deploy/object.ts";
import { NONROOT_UID, TLS_DIR } from "../deploy/pod.ts";
import { RABBITMQ_TLS_CONF } from "../deploy/rabbitmq.ts";
import { SynthError } from "../deploy/problems.ts";
import {
  MANIFEST_STAGES,
  objectProblems,
  plain,
  REQUIRED_LABELS,
  stageObjects,
  synth,
  toYaml,
} from "../deploy/synth.ts";
import { resolveSettings } from "../workers/settings.ts";
import { assertGolden } from "./helpers.ts";

const SECRET = "golden-not-a-real-secret-0001";

/** The deployments every property below is checked on. */
const VARIANTS: Readonly<Record<string, DeploymentProps>> = {
  "redis-queue-job": { backend: "redis" },
  "rabbitmq-queue-job": { backend: "rabbitmq" },
  "redis-queue-pods": { backend: "redis", workers: { controller: "pods", count: 3 } },
  "rabbitmq-queue-deployment": {
    backend: "rabbitmq",
    workers: { controller: "deployment", idleTimeoutSeconds: 0, runtimeClassName: "gvisor" },
  },
  "static": { mode: "static", workers: { count: 4 }, job: { params: 100_000 } },
  "redis-keda": { backend: "redis", keda: { enabled: true, maxReplicas: 20 } },
  "rabbitmq-keda": { backend: "rabbitmq", keda: { enabled: true } },
  "redis-tls-keda": {
    backend: "redis",
    tls: { secretName: "broker-tls" },
    keda: { enabled: true },
  },
  "rabbitmq-tls-quorum": {
    backend: "rabbitmq",
    tls: { secretName: "broker-tls" },
    rabbitmq: { queueType: "quorum" },
    keda: { enabled: true },
  },
  "redis-servicemonitor": {
    backend: "redis",
    observability: {
      prometheusOperator: "servicemonitor",
      monitorLabels: { release: "kube-prometheus-stack" },
    },
  },
  "redis-dashboard": { backend: "redis", dashboard: { enabled: true, allowActions: true } },
  "redis-fleet": { backend: "redis", mode: "fleet" },
  "rabbitmq-fleet-keda": {
    backend: "rabbitmq",
    mode: "fleet",
    fleet: { jobs: "nightly-*", submit: true },
    job: { id: "nightly-1" },
    keda: { enabled: true, maxReplicas: 20 },
    observability: { prometheusOperator: "servicemonitor" },
  },
  "rabbitmq-podmonitor-keda": {
    backend: "rabbitmq",
    keda: { enabled: true },
    observability: {
      prometheusOperator: "podmonitor",
      metricsPort: 9100,
      dashboardNamespace: "monitoring",
      alerts: { runbookUrl: "https://runbooks.example.com/ttg", stuckMinutes: 30 },
    },
  },
};

function setup(props: DeploymentProps = {}) {
  const synthesized = synth(props, { randomSecret: () => SECRET });
  const objects = synthesized.manifests.map((m) => m.object);
  return { ...synthesized, objects, data: objects.map(plain) as Record<string, any>[] };
}

/** Every pod spec of an object (Pod, a workload's template, a ScaledJob's job template). */
function podSpecs(object: Record<string, any>): IPodSpec[] {
  if (object.kind === "Pod") return [object.spec];
  if (object.kind === "ScaledJob") return [object.spec.jobTargetRef.template.spec];
  return object.spec?.template?.spec ? [object.spec.template.spec] : [];
}

function ttgContainers(object: Record<string, any>): IContainer[] {
  return podSpecs(object).flatMap((spec) => spec.containers).filter((c) =>
    c.image?.startsWith("ttg:")
  );
}

const GOLDEN = new URL("./golden/", import.meta.url);

/**
 * The YAML of a variant for its golden file. The dashboard's JSON is the same in every variant
 * and has a golden file of its own (deploy/grafana/ttg-dashboard.json, checked in
 * tests/dashboard_test.ts), so here the ConfigMap names that file in its place.
 */
function goldenYaml(objects: readonly KubeObject[]): string {
  return toYaml(
    objects.map((object) =>
      object.kind === "ConfigMap" && object.metadata?.labels?.grafana_dashboard === "1"
        ? {
          ...plain(object),
          data: { [DASHBOARD_FILE]: `<the content of deploy/grafana/${DASHBOARD_FILE}>` },
        } as unknown as KubeObject
        : object
    ),
  );
}

Deno.test("generated YAML matches the golden files (UPDATE_GOLDEN=1 rewrites them)", async (t) => {
  const cases: [string, string][] = Object.entries(VARIANTS).map((
    [name, props],
  ) => [name, goldenYaml(setup(props).objects)]);
  cases.push(["kind-cluster", toYaml([{ ...kindCluster(), validate() {} } as KubeObject])]);
  for (const [name, yaml] of cases) {
    await t.step(name, () => assertGolden(new URL(`${name}.yaml`, GOLDEN), yaml));
  }
});

Deno.test("synth() is deterministic: same props, same YAML, keys sorted at every level", () => {
  for (const props of Object.values(VARIANTS)) {
    const yaml = toYaml(setup(props).objects);
    assert.equal(yaml, toYaml(setup(props).objects));
    for (const doc of parseAllDocuments(yaml)) {
      const check = (node: unknown): void => {
        if (Array.isArray(node)) return node.forEach(check);
        if (typeof node !== "object" || node === null) return;
        const keys = Object.keys(node);
        assert.deepEqual(keys, [...keys].sort());
        Object.values(node).forEach(check);
      };
      check(doc.toJS());
    }
  }
});

Deno.test("resolveConfig() fills documented defaults from empty props", () => {
  const { config, problems } = resolveConfig({}, { randomSecret: () => SECRET });
  assert.deepEqual(problems, []);
  assert.equal(config.namespace, "ttg");
  assert.equal(config.backend, "redis");
  assert.equal(config.mode, "queue");
  assert.equal(config.workers.count, 3);
  assert.equal(config.workers.controller, "job");
  assert.deepEqual(config.workers.resources, {
    cpuRequest: "100m",
    cpuLimit: "500m",
    memoryRequest: "128Mi",
    memoryLimit: "192Mi",
  });
  assert.equal(config.redis.storage, "1Gi");
  assert.equal(config.rabbitmq.storage, "2Gi");
  assert.equal(config.rabbitmq.username, "ttg");
  assert.equal(config.keda.enabled, false);
  assert.equal(config.networkPolicy.enabled, true);
});

Deno.test("a bad config value is a problem naming its field", () => {
  const cases: [DeploymentProps, string, RegExp][] = [
    [{ workers: { count: 0 } }, "workers.count", /integer from 1 to 256, got 0/],
    [{ backend: "kafka" as "redis" }, "backend", /one of redis, rabbitmq, got "kafka"/],
    [{ mode: "batch" as "queue" }, "mode", /one of queue, static/],
    [{ job: { faultRate: 2 } }, "job.faultRate", /from 0 to 1, got 2/],
    [{ job: { params: 1.5 } }, "job.params", /integer/],
    [{ job: { id: "bad id!" } }, "job.id", /letters, digits/],
    [{ namespace: "Not_A_Label" }, "namespace", /DNS label/],
    [
      { workers: { resources: { cpuRequest: "lots" } } },
      "workers.resources.cpuRequest",
      /quantity/,
    ],
    [
      { workers: { resources: { memoryRequest: "2Gi" } } },
      "workers.resources.memoryRequest",
      /at most the limit "192Mi"/,
    ],
    [{ redis: { storage: "1 GB" } }, "redis.storage", /quantity/],
    [
      { workers: { controller: "deployment" } },
      "workers.idleTimeoutSeconds",
      /expected 0 with workers.controller "deployment"/,
    ],
    [
      { workers: { leaseMs: 1000, heartbeatMs: 600 } },
      "workers.heartbeatMs",
      /half of workers.leaseMs/,
    ],
    [{ workers: { backoffLimit: 0 } }, "workers.backoffLimit", /from 1/],
    [{ mode: "static", keda: { enabled: true } }, "keda.enabled", /mode "static"/],
    [
      { keda: { enabled: true, minReplicas: 5, maxReplicas: 2 } },
      "keda.minReplicas",
      /at most keda.maxReplicas/,
    ],
    [{ keda: { redisStream: "has space" } }, "keda.redisStream", /expected a name/],
    [{ rabbitmq: { username: "guest" } }, "rabbitmq.username", /other than "guest"/],
    [{ rabbitmq: { password: "guest" } }, "rabbitmq.password", /12 to 128/],
    [{ redis: { password: "short" } }, "redis.password", /12 to 128/],
    [{ workers: { runtimeClassName: "gVisor" } }, "workers.runtimeClassName", /DNS label/],
    [{ worker: { count: 3 } } as DeploymentProps, "worker", /unknown field/],
    [
      { workers: { cnt: 3 } } as DeploymentProps,
      "workers.cnt",
      /unknown field \(expected one of count/,
    ],
    [{ image: "ttg:1" } as unknown as DeploymentProps, "image", /expected an object/],
  ];
  for (const [props, field, message] of cases) {
    const { problems } = resolveConfig(props, { randomSecret: () => SECRET });
    assert.equal(problems.length, 1, `${field}: ${JSON.stringify(problems)}`);
    assert.equal(problems[0]?.field, field);
    assert.match(problems[0]?.message ?? "", message);
  }
});

Deno.test("synth() reports every problem at once in one SynthError", () => {
  let e: SynthError | undefined;
  try {
    synth({ workers: { count: 0, concurrency: -1 }, job: { faultRate: 3 } });
  } catch (error) {
    if (error instanceof SynthError) e = error;
  }
  assert.ok(e, "synth() throws a SynthError");
  assert.deepEqual(e.problems.map((p) => p.field), [
    "job.faultRate",
    "workers.count",
    "workers.concurrency",
  ]);
  assert.match(e.message, /3 problems/);
  assert.equal(e.code, "INVALID_CONFIG");
});

Deno.test("objectProblems() catches a schema error, a missing label and a dangling Secret reference", () => {
  const { objects, data } = setup({ backend: "redis" });
  const worker = objects.find((o) => o.kind === "Job" && o.metadata?.name === "ttg-worker")! as any;
  worker.spec.template.spec.containers[0].ports = [{ containerPort: "http" }];
  delete worker.metadata.labels[LABEL.managedBy];
  worker.spec.template.spec.containers[0].env.push({
    name: "X",
    valueFrom: { secretKeyRef: { name: "nope", key: "k" } },
  });
  const problems = objectProblems(objects).map((p) => `${p.field}: ${p.message}`);
  assert.equal(problems.length, 3, problems.join("\n"));
  assert.match(problems[0]!, /^Job "ttg-worker": .*containerPort must be integer/);
  assert.match(problems[1]!, /missing labels app.kubernetes.io\/managed-by/);
  assert.match(problems[2]!, /Secret "nope" key "k"/);
  assert.ok(data.length > 0);
});

Deno.test("KEDA objects are checked by their own validation, including the Job inside", () => {
  const { objects } = setup(VARIANTS["redis-keda"]);
  const scaled = objects.find((o) => o.kind === "ScaledJob") as ScaledJob;
  scaled.validate();
  const broken = new ScaledJob({
    metadata: scaled.metadata,
    spec: {
      ...scaled.spec,
      minReplicaCount: 3,
      maxReplicaCount: 1,
      triggers: [{ type: "redis-streams", metadata: { address: "x:6379" } }],
      jobTargetRef: { ...scaled.spec.jobTargetRef, parallelism: "one" as unknown as number },
    },
  });
  assert.throws(() => broken.validate(), (e: Error) => {
    assert.match(e.message, /minReplicaCount must not exceed/);
    assert.match(e.message, /metadata.stream is required/);
    assert.match(e.message, /metadata.consumerGroup is required/);
    assert.match(e.message, /jobTargetRef: .*parallelism must be integer/);
    return true;
  });
});

Deno.test("every object of every variant is schema-valid and carries all five app.kubernetes.io labels", () => {
  for (const [name, props] of Object.entries(VARIANTS)) {
    const { objects, data, config } = setup(props);
    // The TLS Secret is the user's (cert-manager's): references to it are not checked.
    const external = config.tls.secretName === undefined ? [] : [config.tls.secretName];
    assert.deepEqual(objectProblems(objects, external), [], name);
    for (const object of data) {
      for (const label of REQUIRED_LABELS) {
        assert.ok(
          object.metadata.labels[label],
          `${name}: ${object.kind} ${object.metadata.name} lacks ${label}`,
        );
      }
      const template = object.spec?.template ?? object.spec?.jobTargetRef?.template;
      for (const label of template ? REQUIRED_LABELS : []) {
        assert.ok(
          template.metadata.labels[label],
          `${name}: pod template of ${object.metadata.name} lacks ${label}`,
        );
      }
      for (const claim of object.spec?.volumeClaimTemplates ?? []) {
        assert.equal(
          claim.metadata.labels[LABEL.managedBy],
          "ttg-deploy",
          "a PVC keeps our labels for cleanup",
        );
      }
    }
  }
});

Deno.test("ownedSelector() matches every generated object and nothing without our labels", () => {
  const matches = (labels: Record<string, string>, selector: string) =>
    selector.split(",").every((term) => {
      const [k, v] = term.split("=");
      return labels[k!] === v;
    });
  for (const props of Object.values(VARIANTS)) {
    for (const object of setup(props).data) {
      assert.ok(matches(object.metadata.labels, ownedSelector()));
      assert.ok(matches(object.metadata.labels, ownedSelector("ttg")));
    }
  }
  assert.ok(!matches({ "app.kubernetes.io/part-of": "ttg" }, ownedSelector()));
});

Deno.test("ttg pods run as UID 65532, read-only root, no capabilities, RuntimeDefault seccomp, with requests and limits", () => {
  for (const [name, props] of Object.entries(VARIANTS)) {
    for (const object of setup(props).data) {
      for (const spec of podSpecs(object)) {
        const isTtg = spec.containers.some((c) => c.image?.startsWith("ttg:"));
        for (const c of spec.containers) {
          const where = `${name}: ${object.kind} ${object.metadata.name} ${c.name}`;
          assert.ok(
            c.resources?.requests?.cpu && c.resources.requests.memory,
            `${where}: requests`,
          );
          assert.ok(c.resources?.limits?.cpu && c.resources.limits.memory, `${where}: limits`);
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false, where);
          assert.deepEqual(c.securityContext?.capabilities?.drop, ["ALL"], where);
          assert.equal(c.securityContext?.runAsNonRoot, true, where);
        }
        assert.equal(spec.securityContext?.seccompProfile?.type, "RuntimeDefault");
        assert.equal(spec.automountServiceAccountToken, false);
        assert.equal(
          spec.enableServiceLinks,
          false,
          "service links would shadow REDIS_PORT and friends",
        );
        if (!isTtg) continue;
        const [c] = spec.containers;
        assert.equal(c!.securityContext?.readOnlyRootFilesystem, true);
        assert.equal(c!.securityContext?.runAsUser, NONROOT_UID);
        assert.equal(spec.securityContext?.runAsUser, NONROOT_UID);
        assert.equal(spec.securityContext?.runAsNonRoot, true);
        assert.deepEqual(c!.args?.slice(0, 1), [
          c!.name === "progress" ? "status" : ROLE_COMMAND[c!.name]!,
        ]);
        assert.equal(c!.command, undefined, "the image's entrypoint (/ttg) runs");
      }
    }
  }
});

const ROLE_COMMAND: Record<string, string> = {
  worker: "worker",
  exporter: "exporter",
  dashboard: "dashboard",
  submit: "submit",
  static: "static",
  report: "results",
};

Deno.test("terminationGracePeriodSeconds is the worker's grace period plus the margin", () => {
  const { data } = setup({ workers: { graceSeconds: 25, terminationMarginSeconds: 7 } });
  const worker = data.find((o) => o.metadata.name === "ttg-worker")!;
  const spec = podSpecs(worker)[0]!;
  assert.equal(spec.terminationGracePeriodSeconds, 32);
  const grace = spec.containers[0]!.env!.find((e) => e.name === "TTG_GRACE_SECONDS");
  assert.equal(grace?.value, "25");
});

Deno.test("POD_NAME and NODE_NAME come from the downward API in every ttg container", () => {
  for (const props of Object.values(VARIANTS)) {
    for (const object of setup(props).data) {
      for (const c of ttgContainers(object)) {
        const env = new Map(c.env!.map((e) => [e.name, e]));
        assert.equal(env.get("POD_NAME")?.valueFrom?.fieldRef?.fieldPath, "metadata.name");
        assert.equal(env.get("NODE_NAME")?.valueFrom?.fieldRef?.fieldPath, "spec.nodeName");
      }
    }
  }
});

Deno.test("runtimeClassName is set only when configured", () => {
  const withRuntime = setup(VARIANTS["rabbitmq-queue-deployment"]).data.find((o) =>
    o.kind === "Deployment" && o.metadata.name === "ttg-worker"
  )!;
  assert.equal(podSpecs(withRuntime)[0]!.runtimeClassName, "gvisor");
  const without = setup({}).data.find((o) => o.metadata.name === "ttg-worker")!;
  assert.equal(podSpecs(without)[0]!.runtimeClassName, undefined);
});

Deno.test("no default credentials anywhere: never guest, passwords only in Secrets and via secretKeyRef", () => {
  for (const [name, props] of Object.entries(VARIANTS)) {
    const { data } = setup(props);
    const generated = setup(props).objects;
    const realYaml = toYaml(synth(props).manifests.map((m) => m.object));
    assert.doesNotMatch(realYaml, /guest/i, name);
    for (const object of data) {
      const text = JSON.stringify(object);
      if (object.kind !== "Secret") {
        assert.ok(!text.includes(SECRET), `${name}: ${object.kind} holds the password`);
      }
      for (const spec of podSpecs(object)) {
        for (const c of spec.containers) {
          for (const e of (c.env ?? []) as IEnvVar[]) {
            if (/PASS|USER/.test(e.name)) {
              assert.ok(
                e.valueFrom?.secretKeyRef,
                `${name}: ${c.name} ${e.name} must come from a Secret`,
              );
            }
          }
        }
      }
    }
    assert.ok(generated.length > 0);
  }
});

Deno.test("a password is generated at synth time when none is given: random, 32 characters, never a default", () => {
  const a = synth({ backend: "rabbitmq" }).config.rabbitmq.password;
  const b = synth({ backend: "rabbitmq" }).config.rabbitmq.password;
  assert.notEqual(a, b);
  assert.match(a, /^[A-Za-z0-9_-]{32}$/);
  assert.match(randomPassword(), /^[A-Za-z0-9_-]{32}$/);
  const given = synth({ backend: "redis", redis: { password: "a-given-long-password" } });
  const secret = plain(given.manifests.find((m) => m.object.kind === "Secret")!.object) as any;
  assert.equal(secret.stringData.password, "a-given-long-password");
});

/** Env variable names documented in docs/SETTINGS.md. */
async function documentedEnv(): Promise<Set<string>> {
  const text = await Deno.readTextFile(new URL("../docs/SETTINGS.md", import.meta.url));
  return new Set([...text.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!));
}

Deno.test("every environment variable of a ttg container is a name documented in docs/SETTINGS.md", async () => {
  const documented = await documentedEnv();
  for (const [name, props] of Object.entries(VARIANTS)) {
    for (const object of setup(props).data) {
      for (const c of ttgContainers(object)) {
        for (const e of c.env ?? []) {
          assert.ok(
            documented.has(e.name),
            `${name}: ${c.name} sets ${e.name}, which docs/SETTINGS.md does not name`,
          );
        }
      }
    }
  }
});

/** A container's env as the kubelet would give it (Secrets from the generated Secrets). */
function containerEnv(
  objects: Record<string, any>[],
  c: IContainer,
  extra: Record<string, string> = {},
) {
  const secrets = new Map(
    objects.filter((o) => o.kind === "Secret").map((o) => [o.metadata.name, o.stringData]),
  );
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) {
      env[e.name] = secrets.get(e.valueFrom.secretKeyRef.name)[e.valueFrom.secretKeyRef.key];
    } else if (e.valueFrom?.fieldRef) env[e.name] = `<${e.valueFrom.fieldRef.fieldPath}>`;
  }
  return { ...env, ...extra };
}

Deno.test("workers/settings.ts reads the generated env as the config meant it (Redis)", () => {
  const { data } = setup({
    backend: "redis",
    job: { params: 5000, chunkSize: 50, workMs: 2, faultRate: 0.1, maxAttempts: 6 },
    workers: {
      concurrency: 8,
      batch: 32,
      graceSeconds: 20,
      idleTimeoutSeconds: 9,
      leaseMs: 4000,
      heartbeatMs: 1000,
    },
  });
  const worker = ttgContainers(data.find((o) => o.metadata.name === "ttg-worker")!)[0]!;
  const env = containerEnv(data, worker);
  const s = resolveSettings({}, (k) => env[k]);
  assert.equal(s.backend, "redis");
  assert.equal(s.brokerUrl, `redis://:${SECRET}@ttg-redis.ttg.svc:6379`);
  assert.equal(s.jobId, "ttg");
  assert.equal(s.params, 5000);
  assert.equal(s.chunkSize, 50);
  assert.equal(s.workMs, 2);
  assert.equal(s.faultRate, 0.1);
  assert.equal(s.maxAttempts, 6);
  assert.equal(s.concurrency, 8);
  assert.equal(s.batch, 32);
  assert.equal(s.graceMs, 20_000);
  assert.equal(s.idleTimeoutMs, 9_000);
  assert.equal(s.leaseMs, 4000);
  assert.equal(s.heartbeatMs, 1000);
  assert.equal(s.workerId, "<metadata.name>");
  assert.equal(s.podName, "<metadata.name>");
  assert.equal(s.nodeName, "<spec.nodeName>");
  assert.equal(s.logFormat, "json");
});

Deno.test("workers/settings.ts reads the generated env as the config meant it (RabbitMQ, no guest fallback)", () => {
  const { data } = setup({ backend: "rabbitmq", rabbitmq: { vhost: "sweeps" } });
  for (const name of ["ttg-worker", "ttg-submit", "ttg-report"]) {
    const c = ttgContainers(data.find((o) => o.metadata.name === name)!)[0]!;
    const s = resolveSettings({}, (k) => containerEnv(data, c)[k]);
    assert.equal(s.backend, "rabbitmq");
    assert.equal(s.brokerUrl, `amqp://ttg:${SECRET}@ttg-rabbitmq.ttg.svc:5672/sweeps`);
  }
});

Deno.test("static mode: an Indexed Job with no broker; JOB_COMPLETION_INDEX is left to the Job controller", () => {
  const { data } = setup(VARIANTS.static);
  assert.deepEqual(data.map((o) => o.kind), ["Namespace", "Job"]);
  const job = data[1]!;
  assert.equal(job.spec.completionMode, "Indexed");
  assert.equal(job.spec.completions, 4);
  assert.equal(job.spec.parallelism, 4);
  const c = ttgContainers(job)[0]!;
  const names = c.env!.map((e) => e.name);
  assert.ok(!names.includes("JOB_COMPLETION_INDEX"));
  const s = resolveSettings({}, (k) => containerEnv(data, c, { JOB_COMPLETION_INDEX: "3" })[k]);
  assert.equal(s.workers, 4);
  assert.equal(s.params, 100_000);
  assert.equal(s.completionIndex, 3);
});

Deno.test("queue workers: a work-queue Job (parallelism, no completions, backoffLimit never 0), Pods or a Deployment", () => {
  const job = setup({ workers: { count: 5 } }).data.find((o) => o.metadata.name === "ttg-worker")!;
  assert.equal(job.kind, "Job");
  assert.equal(job.spec.parallelism, 5);
  assert.equal(job.spec.completions, undefined);
  assert.ok(job.spec.backoffLimit > 0);
  const pods = setup(VARIANTS["redis-queue-pods"]).data.filter((o) => o.kind === "Pod");
  assert.deepEqual(pods.map((p) => p.metadata.name), [
    "ttg-worker-0",
    "ttg-worker-1",
    "ttg-worker-2",
  ]);
  assert.ok(pods.every((p) => p.spec.restartPolicy === "Never"));
  const deployment = setup(VARIANTS["rabbitmq-queue-deployment"]).data.find((o) =>
    o.kind === "Deployment" && o.metadata.name === "ttg-worker"
  )!;
  assert.equal(deployment.spec.replicas, 3);
  assert.equal(
    podSpecs(deployment)[0]!.containers[0]!.env!.find((e) => e.name === "TTG_IDLE_TIMEOUT_SECONDS")
      ?.value,
    "0",
  );
});

Deno.test("brokers: Redis with AOF and a required password; RabbitMQ with AMQP and management ports; both with probes and a volume", () => {
  const redis = setup({ backend: "redis" }).data;
  const sts = redis.find((o) => o.kind === "StatefulSet")!;
  const c = podSpecs(sts)[0]!.containers[0]!;
  assert.deepEqual(c.args, [
    "--appendonly",
    "yes",
    "--dir",
    "/data",
    "--requirepass",
    "$(REDIS_PASSWORD)",
  ]);
  assert.ok(c.readinessProbe?.exec && c.livenessProbe?.exec);
  assert.equal(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage, "1Gi");
  const rabbit = setup({ backend: "rabbitmq" }).data;
  const service = rabbit.find((o) => o.kind === "Service")!;
  assert.deepEqual(service.spec.ports.map((p: { port: number }) => p.port), [5672, 15672]);
  const rc = podSpecs(rabbit.find((o) => o.kind === "StatefulSet")!)[0]!.containers[0]!;
  assert.deepEqual(rc.livenessProbe?.exec?.command, ["rabbitmq-diagnostics", "-q", "ping"]);
  assert.deepEqual(
    rc.env!.map((e) => e.valueFrom?.secretKeyRef?.key ?? e.value),
    ["username", "password", "/"],
  );
});

Deno.test("TLS: the broker speaks TLS only with the given Secret; TTG pods mount its CA alone and verify the broker", () => {
  const redis = setup(VARIANTS["redis-tls-keda"]!).data;
  const sts = redis.find((o) => o.kind === "StatefulSet")!;
  const spec = podSpecs(sts)[0]!;
  const c = spec.containers[0]!;
  const args = c.args!.join(" ");
  assert.match(args, /--port 0 --tls-port 6379 /);
  assert.match(args, new RegExp(`--tls-key-file ${TLS_DIR}/tls.key`));
  for (const probe of [c.readinessProbe, c.livenessProbe]) {
    assert.match(
      probe!.exec!.command!.join(" "),
      /redis-cli --tls --cacert \/etc\/ttg\/tls\/ca.crt ping/,
    );
  }
  // The broker's key is readable by the broker's group only (0440 with fsGroup 999).
  assert.deepEqual(spec.volumes, [
    { name: "tls", secret: { secretName: "broker-tls", defaultMode: 0o440 } },
  ]);
  assert.ok(c.volumeMounts!.some((m) => m.mountPath === TLS_DIR && m.readOnly));

  const flags = { "redis-tls-keda": "REDIS_TLS", "rabbitmq-tls-quorum": "RABBITMQ_TLS" };
  for (const [variant, flag] of Object.entries(flags)) {
    const { data } = setup(VARIANTS[variant]!);
    const ttgPods = data.filter((o) => ttgContainers(o).length > 0);
    assert.ok(ttgPods.length >= 3, variant);
    for (const object of ttgPods) {
      const pod = podSpecs(object)[0]!;
      const env = containerEnv(data, pod.containers[0]!);
      assert.equal(env[flag], "true", `${variant} ${object.metadata.name}`);
      assert.equal(env.TTG_TLS_CA_FILE, `${TLS_DIR}/ca.crt`);
      // Only the CA reaches TTG pods, never the broker's key.
      assert.deepEqual(pod.volumes!.find((v) => v.name === "tls"), {
        name: "tls",
        secret: { secretName: "broker-tls", items: [{ key: "ca.crt", path: "ca.crt" }] },
      });
    }
    // KEDA verifies the broker with the same CA, and learns TLS is on from the broker Secret.
    const auth = data.find((o) => o.kind === "TriggerAuthentication")!;
    const refs = auth.spec.secretTargetRef.map((r: any) => `${r.parameter}=${r.name}/${r.key}`);
    assert.ok(refs.includes("ca=broker-tls/ca.crt"), refs.join(" "));
    const tlsRef = auth.spec.secretTargetRef.find((r: any) => r.parameter === "tls");
    const secret = data.find((o) => o.kind === "Secret" && o.metadata.name === tlsRef.name)!;
    assert.equal(secret.stringData[tlsRef.key], "enable");
  }

  // What the worker settings make of the generated env: rediss:// and amqps:// on 5671.
  const worker = (data: Record<string, any>[]) =>
    ttgContainers(data.find((o) => o.kind === "ScaledJob")!)[0]!;
  const read = (data: Record<string, any>[]) => {
    const env = containerEnv(data, worker(data));
    return resolveSettings({}, (k) => env[k], {}, () => "-----BEGIN CERTIFICATE-----\n");
  };
  const r = read(redis);
  assert.equal(r.brokerUrl, `rediss://:${SECRET}@ttg-redis.ttg.svc:6379`);
  assert.equal(r.tlsFiles.ca, `${TLS_DIR}/ca.crt`);
  const rabbit = setup(VARIANTS["rabbitmq-tls-quorum"]!).data;
  const q = read(rabbit);
  assert.equal(q.brokerUrl, `amqps://ttg:${SECRET}@ttg-rabbitmq.ttg.svc:5671`);
  assert.equal(q.queueType, "quorum");
  const amqpUrl = rabbit.find((o) => o.kind === "Secret")!.stringData["amqp-url"];
  assert.match(amqpUrl, /^amqps:\/\/ttg:.*@ttg-rabbitmq\.ttg\.svc:5671\//);

  // RabbitMQ: the plain listener off, TLS on 5671 and management over HTTPS on 15671, from a
  // labelled ConfigMap in conf.d.
  const config = rabbit.find((o) => o.kind === "ConfigMap")!;
  assert.match(config.data["tls.conf"], /^listeners\.tcp = none\nlisteners\.ssl\.default = 5671\n/);
  assert.match(config.data["tls.conf"], /\nmanagement\.ssl\.port = 15671\n/);
  const rc = podSpecs(rabbit.find((o) => o.kind === "StatefulSet")!)[0]!.containers[0]!;
  assert.ok(
    rc.volumeMounts!.some((m) => m.mountPath === RABBITMQ_TLS_CONF && m.subPath === "tls.conf"),
  );
  assert.deepEqual(rc.ports!.map((p) => p.containerPort), [5671, 15671]);
  const service = rabbit.find((o) => o.kind === "Service")!;
  assert.deepEqual(service.spec.ports.map((p: { port: number }) => p.port), [5671, 15671]);
  const policy = rabbit.find((o) => o.kind === "NetworkPolicy")!;
  assert.deepEqual(policy.spec.ingress[0].ports.map((p: { port: number }) => p.port), [
    5671,
    15671,
  ]);

  // Without TLS nothing of it is generated; static mode has no broker to secure.
  const plainRabbit = setup({ backend: "rabbitmq" }).data;
  assert.ok(
    !plainRabbit.some((o) => o.kind === "ConfigMap" && o.metadata.name === "ttg-rabbitmq-tls"),
  );
  assert.ok(!JSON.stringify(plainRabbit).includes("TLS"));
  const { problems } = resolveConfig({ mode: "static", tls: { secretName: "broker-tls" } });
  assert.deepEqual(problems.map((p) => p.field), ["tls.secretName"]);
});

Deno.test("the Namespace is generated (and labelled as ours) unless it is default or turned off", () => {
  assert.deepEqual(setup({}).data[0]?.kind, "Namespace");
  for (const props of [{ namespace: "default" }, { namespace: "prod", createNamespace: false }]) {
    const { data } = setup(props);
    assert.ok(!data.some((o) => o.kind === "Namespace"));
    assert.ok(data.every((o) => o.metadata.namespace === props.namespace));
  }
});

Deno.test("NetworkPolicy admits only this instance's TTG pods to the broker, plus KEDA's namespace when on", () => {
  const policy = setup({}).data.find((o) => o.kind === "NetworkPolicy")!;
  assert.deepEqual(policy.spec.policyTypes, ["Ingress"]);
  assert.deepEqual(policy.spec.podSelector.matchLabels[LABEL.component], "broker");
  assert.deepEqual(policy.spec.ingress[0].from, [{
    podSelector: { matchLabels: { [LABEL.instance]: "ttg", [LABEL.partOf]: "ttg" } },
  }]);
  assert.deepEqual(policy.spec.ingress[0].ports, [{ port: 6379, protocol: "TCP" }]);
  const keda = setup(VARIANTS["rabbitmq-keda"]).data.find((o) => o.kind === "NetworkPolicy")!;
  assert.deepEqual(keda.spec.ingress[0].from[1], {
    namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "keda" } },
  });
  assert.equal(
    setup({ networkPolicy: { enabled: false } }).data.some((o) => o.kind === "NetworkPolicy"),
    false,
  );
});

Deno.test("KEDA: a ScaledJob from zero on the Redis group's lag or the RabbitMQ queue length, credentials from the Secret", () => {
  const redis = setup(VARIANTS["redis-keda"]).data;
  const scaled = redis.find((o) => o.kind === "ScaledJob")!;
  assert.equal(scaled.spec.minReplicaCount, 0);
  assert.equal(scaled.spec.maxReplicaCount, 20);
  assert.deepEqual(scaled.spec.triggers[0], {
    type: "redis-streams",
    metadata: {
      address: "ttg-redis.ttg.svc:6379",
      stream: "ttg:tasks",
      consumerGroup: "ttg-workers",
      lagCount: "10",
      activationLagCount: "0",
    },
    authenticationRef: { name: "ttg-keda-auth" },
  });
  assert.equal(redis.some((o) => o.kind === "Job" && o.metadata.name === "ttg-worker"), false);
  const auth = redis.find((o) => o.kind === "TriggerAuthentication")!;
  assert.deepEqual(auth.spec.secretTargetRef, [{
    parameter: "password",
    name: "ttg-redis-auth",
    key: "password",
  }]);
  const rabbit = setup(VARIANTS["rabbitmq-keda"]).data;
  const trigger = rabbit.find((o) => o.kind === "ScaledJob")!.spec.triggers[0];
  assert.equal(trigger.metadata.queueName, "ttg.tasks");
  assert.equal(trigger.metadata.mode, "QueueLength");
  const secret = rabbit.find((o) => o.kind === "Secret")!;
  assert.equal(secret.stringData["amqp-url"], `amqp://ttg:${SECRET}@ttg-rabbitmq.ttg.svc:5672/%2F`);
});

Deno.test("KEDA watches the queue the brokers name after the job id", () => {
  for (const jobId of ["ttg", "nightly-7"]) {
    const names = brokerNames(jobId);
    assert.equal(names.redisStream, streamKey(jobKeyBase(DEFAULT_KEY_PREFIX, jobId), "0"));
    assert.equal(names.redisConsumerGroup, REDIS_GROUP);
    assert.equal(names.rabbitmqQueue, jobNames("ttg", jobId).tasks);
  }
});

Deno.test("the manifests hold infra, submit and workers; report and progress Jobs are kept for the tasks", () => {
  const synthesized = setup({});
  const kinds = (stages: readonly string[]) =>
    synthesized.manifests.filter((m) => stages.includes(m.stage)).map((m) =>
      `${m.object.kind}/${m.object.metadata?.name}`
    );
  // Namespace, Secret, Service + StatefulSet (Redis), NetworkPolicy, Deployment + Service
  // (exporter), dashboard ConfigMap, submit Job, worker Job.
  assert.deepEqual(stageObjects(synthesized, MANIFEST_STAGES).length, 10);
  assert.deepEqual(kinds(["report", "progress"]), ["Job/ttg-report", "Job/ttg-report-progress"]);
});

Deno.test("kubectl parses the generated YAML offline into the same objects (kubectl kustomize)", {
  ignore: !hasKubectl(),
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const [name, props] of Object.entries(VARIANTS)) {
      const objects = setup(props).objects;
      await Deno.writeTextFile(`${dir}/all.yaml`, toYaml(objects));
      await Deno.writeTextFile(`${dir}/kustomization.yaml`, "resources:\n  - all.yaml\n");
      const out = await new Deno.Command("kubectl", {
        args: ["kustomize", dir],
        stdout: "piped",
        stderr: "piped",
      })
        .output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const parsed = parseAllDocuments(new TextDecoder().decode(out.stdout)).map((d) => d.toJS());
      const key = (o: any) => `${o.kind}/${o.metadata.name}`;
      const byKey = new Map(parsed.map((o) => [key(o), o]));
      for (const object of objects.map(plain)) {
        assert.deepEqual(
          byKey.get(key(object)),
          parse(JSON.stringify(object)),
          `${name}: ${key(object)}`,
        );
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function hasKubectl(): boolean {
  try {
    return new Deno.Command("kubectl", {
      args: ["version", "--client"],
      stdout: "null",
      stderr: "null",
    })
      .outputSync().success;
  } catch {
    return false;
  }
}
