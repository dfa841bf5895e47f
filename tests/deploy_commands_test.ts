/**
 * The command lines the Kubernetes tasks run (exact argv arrays: kubectl, kind, docker), the
 * deploy steps, the flags, and how the tasks end when a program or the cluster is missing.
 */
import "../tasks/node_warnings.ts";
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { rulesFile } from "../deploy/alerts.ts";
import { dashboardJson } from "../deploy/dashboard.ts";
import {
  applyArgv,
  deleteJobArgv,
  deleteNamespacesArgv,
  getSecretDataArgv,
  KEDA_KINDS,
  kedaResourcesArgv,
  killPodArgv,
  listBySelectorArgv,
  logsArgv,
  logsBySelectorArgv,
  MONITORING_KINDS,
  monitoringResourcesArgv,
  OWNED_KINDS,
  podNamesArgv,
  readyzArgv,
  rolloutStatusArgv,
  waitJobCompleteArgv,
  waitPodsSucceededArgv,
} from "../deploy/kubectl.ts";
import {
  kindCluster,
  kindCreateArgv,
  kindDeleteArgv,
  kindGetClustersArgv,
  kindLoadImageArgv,
} from "../deploy/kind.ts";
import { componentSelector, ownedSelector } from "../deploy/labels.ts";
import { SynthError } from "../deploy/problems.ts";
import { synth } from "../deploy/synth.ts";
import { cleanupCommands } from "../tasks/cleanup.ts";
import {
  describeFailure,
  EnvironmentError,
  firstLine,
  shellQuote,
  UsageError,
} from "../tasks/command.ts";
import { PROJECT_VERSION, propsFromFlags } from "../tasks/config_flags.ts";
import {
  describeSteps,
  finishSteps,
  isDone,
  parseProgress,
  runKinds,
  startSteps,
  type Step,
} from "../tasks/deploy_cluster.ts";
import { assertFaultLands, verdict } from "../tasks/demo_kind.ts";
import { runStatic } from "../workers/static_mode.ts";
import { fakeCluster, task } from "./fake_cluster.ts";

const SEL = "app.kubernetes.io/managed-by=ttg-deploy,app.kubernetes.io/part-of=ttg";
const RUN_SEL =
  `${SEL},app.kubernetes.io/instance=ttg,app.kubernetes.io/component in (submit,worker,static,report)`;

function setup(props: Parameters<typeof synth>[0] = {}) {
  return synth(props, { randomSecret: () => "commands-test-secret-01" });
}

function argvOf(steps: readonly Step[]): string[][] {
  return steps.map((s) => (s.kind === "run" ? [...s.argv] : ["<wait-progress>"]));
}

Deno.test("kubectl command lines are exact argv arrays", () => {
  assert.deepEqual(applyArgv(), ["kubectl", "apply", "-f", "-"]);
  assert.deepEqual(readyzArgv(), ["kubectl", "get", "--raw", "/readyz", "--request-timeout=5s"]);
  assert.deepEqual(kedaResourcesArgv(), [
    "kubectl",
    "api-resources",
    "--api-group=keda.sh",
    "--output=name",
  ]);
  assert.deepEqual(monitoringResourcesArgv(), [
    "kubectl",
    "api-resources",
    "--api-group=monitoring.coreos.com",
    "--output=name",
  ]);
  assert.deepEqual(rolloutStatusArgv("ttg-redis", "ttg", 300), [
    "kubectl",
    "rollout",
    "status",
    "statefulset/ttg-redis",
    "--namespace=ttg",
    "--timeout=300s",
  ]);
  assert.deepEqual(waitJobCompleteArgv("ttg-submit", "ttg", 180), [
    "kubectl",
    "wait",
    "--for=condition=complete",
    "job/ttg-submit",
    "--namespace=ttg",
    "--timeout=180s",
  ]);
  assert.deepEqual(waitPodsSucceededArgv("a=b", "ttg", 60), [
    "kubectl",
    "wait",
    "--for=jsonpath={.status.phase}=Succeeded",
    "pods",
    "--selector=a=b",
    "--namespace=ttg",
    "--timeout=60s",
  ]);
  assert.deepEqual(logsArgv("ttg-report", "ttg"), [
    "kubectl",
    "logs",
    "job/ttg-report",
    "--namespace=ttg",
  ]);
  assert.deepEqual(logsBySelectorArgv("a=b", "ttg"), [
    "kubectl",
    "logs",
    "--selector=a=b",
    "--namespace=ttg",
    "--prefix",
    "--tail=-1",
  ]);
  assert.deepEqual(podNamesArgv("a=b", "ttg"), [
    "kubectl",
    "get",
    "pods",
    "--selector=a=b",
    "--namespace=ttg",
    "--field-selector=status.phase=Running",
    "--output=jsonpath={.items[*].metadata.name}",
  ]);
  assert.deepEqual(killPodArgv("ttg-worker-0", "ttg"), [
    "kubectl",
    "delete",
    "pod",
    "ttg-worker-0",
    "--namespace=ttg",
    "--grace-period=0",
    "--force",
  ]);
  assert.deepEqual(deleteJobArgv("ttg-report", "ttg"), [
    "kubectl",
    "delete",
    "job",
    "ttg-report",
    "--namespace=ttg",
    "--ignore-not-found",
    "--wait=true",
  ]);
  assert.deepEqual(getSecretDataArgv("ttg-redis-auth", "ttg"), [
    "kubectl",
    "get",
    "secret",
    "ttg-redis-auth",
    "--namespace=ttg",
    "--ignore-not-found",
    "--output=jsonpath={.data}",
  ]);
});

Deno.test("label selectors select exactly ours: all objects, one instance, or one instance's components", () => {
  assert.equal(ownedSelector(), SEL);
  assert.equal(ownedSelector("demo"), `${SEL},app.kubernetes.io/instance=demo`);
  assert.equal(
    componentSelector("ttg", "worker"),
    `${SEL},app.kubernetes.io/instance=ttg,app.kubernetes.io/component=worker`,
  );
  assert.equal(componentSelector("ttg", "submit", "worker", "static", "report"), RUN_SEL);
});

Deno.test("cleanup deletes only labelled objects in every namespace, then our namespaces; --dry-run lists them", () => {
  const kinds = OWNED_KINDS.join(",");
  assert.deepEqual(cleanupCommands({ keda: false, dryRun: false, keepNamespaces: false }), [
    [
      "kubectl",
      "delete",
      kinds,
      `--selector=${SEL}`,
      "--all-namespaces",
      "--ignore-not-found",
      "--wait=true",
    ],
    ["kubectl", "delete", "namespaces", `--selector=${SEL}`, "--ignore-not-found", "--wait=true"],
  ]);
  assert.deepEqual(
    cleanupCommands({
      instance: "demo",
      keda: true,
      monitoring: true,
      dryRun: false,
      keepNamespaces: true,
    }),
    [
      [
        "kubectl",
        "delete",
        `scaledjobs.keda.sh,scaledobjects.keda.sh,triggerauthentications.keda.sh,${
          MONITORING_KINDS.join(",")
        },${kinds}`,
        `--selector=${SEL},app.kubernetes.io/instance=demo`,
        "--all-namespaces",
        "--ignore-not-found",
        "--wait=true",
      ],
    ],
  );
  assert.deepEqual(cleanupCommands({ keda: false, dryRun: true, keepNamespaces: false }), [
    listBySelectorArgv([...OWNED_KINDS, "namespaces"], SEL),
  ]);
  assert.deepEqual(listBySelectorArgv(["pods"], SEL), [
    "kubectl",
    "get",
    "pods",
    `--selector=${SEL}`,
    "--all-namespaces",
    "--ignore-not-found",
    "--output=custom-columns=KIND:.kind,NAMESPACE:.metadata.namespace,NAME:.metadata.name",
  ]);
  assert.deepEqual(deleteNamespacesArgv(SEL)[2], "namespaces");
  assert.ok(OWNED_KINDS.includes("persistentvolumeclaims"), "broker volumes go too");
  // Every kind any deployment generates is one that cleanup deletes.
  const resource = (kind: string, apiVersion: string) => {
    const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
    const plural = kind.toLowerCase().endsWith("y")
      ? `${kind.toLowerCase().slice(0, -1)}ies`
      : `${kind.toLowerCase()}s`;
    return group ? `${plural}.${group}` : plural;
  };
  const variants = [
    { backend: "redis" as const, keda: { enabled: true }, tls: { secretName: "t" } },
    {
      backend: "rabbitmq" as const,
      tls: { secretName: "t" },
      workers: { controller: "pods" as const },
    },
    {
      backend: "rabbitmq" as const,
      workers: { controller: "deployment" as const, idleTimeoutSeconds: 0 },
    },
    { mode: "static" as const },
    { observability: { prometheusOperator: "servicemonitor" as const } },
    {
      backend: "rabbitmq" as const,
      keda: { enabled: true },
      observability: { prometheusOperator: "podmonitor" as const },
    },
    { mode: "fleet" as const, keda: { enabled: true }, fleet: { submit: true } },
  ];
  for (const props of variants) {
    for (const { object } of setup(props).manifests) {
      if (object.kind === "Namespace") continue;
      const name = resource(object.kind, object.apiVersion);
      assert.ok(
        [...OWNED_KINDS, ...KEDA_KINDS, ...MONITORING_KINDS].includes(name),
        `cleanup does not delete ${name} (${object.kind} ${object.metadata?.name})`,
      );
    }
  }
});

Deno.test("kind command lines and the cluster config: one control plane and three workers", () => {
  assert.deepEqual(kindCreateArgv("ttg"), [
    "kind",
    "create",
    "cluster",
    "--name",
    "ttg",
    "--config=-",
    "--wait=120s",
  ]);
  assert.deepEqual(kindDeleteArgv("ttg"), ["kind", "delete", "cluster", "--name", "ttg"]);
  assert.deepEqual(kindGetClustersArgv(), ["kind", "get", "clusters"]);
  assert.deepEqual(kindLoadImageArgv("ttg:0.1.0", "ttg"), [
    "kind",
    "load",
    "docker-image",
    "ttg:0.1.0",
    "--name",
    "ttg",
  ]);
  const cluster = kindCluster();
  assert.equal(cluster.apiVersion, "kind.x-k8s.io/v1alpha4");
  assert.deepEqual(cluster.nodes.map((n) => n.role), [
    "control-plane",
    "worker",
    "worker",
    "worker",
  ]);
  assert.throws(() => kindCluster({ workerNodes: 11, name: "Bad_Name" }), (e: Error) => {
    assert.match(e.message, /"cluster.name"/);
    assert.match(e.message, /"cluster.workerNodes"/);
    return e instanceof RangeError;
  });
});

Deno.test("deploy steps (Job workers): apply infra, wait for the broker, clear the last run, submit, start, wait, report", () => {
  const s = setup({ backend: "redis" });
  const steps = [...startSteps(s), ...finishSteps(s)];
  assert.deepEqual(argvOf(steps), [
    ["kubectl", "apply", "-f", "-"],
    ["kubectl", "rollout", "status", "statefulset/ttg-redis", "--namespace=ttg", "--timeout=300s"],
    [
      "kubectl",
      "delete",
      "jobs.batch,pods",
      `--selector=${RUN_SEL}`,
      "--namespace=ttg",
      "--ignore-not-found",
      "--wait=true",
    ],
    ["kubectl", "apply", "-f", "-"],
    [
      "kubectl",
      "wait",
      "--for=condition=complete",
      "job/ttg-submit",
      "--namespace=ttg",
      "--timeout=180s",
    ],
    ["kubectl", "logs", "job/ttg-submit", "--namespace=ttg"],
    ["kubectl", "apply", "-f", "-"],
    [
      "kubectl",
      "wait",
      "--for=condition=complete",
      "job/ttg-worker",
      "--namespace=ttg",
      "--timeout=1800s",
    ],
    [
      "kubectl",
      "delete",
      "job",
      "ttg-report",
      "--namespace=ttg",
      "--ignore-not-found",
      "--wait=true",
    ],
    ["kubectl", "apply", "-f", "-"],
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
  const applied = steps.flatMap((step) => step.kind === "run" && step.stdin ? [step.stdin] : [])
    .map((yaml) =>
      parseAllDocuments(yaml).map((d) => `${d.get("kind")}/${d.getIn(["metadata", "name"])}`)
    );
  assert.deepEqual(applied, [
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
    ["Job/ttg-submit"],
    ["Job/ttg-worker"],
    ["Job/ttg-report"],
  ]);
});

Deno.test("deploy steps wait on the pods (standalone), the counters (Deployment, KEDA) or the Indexed Job (static)", () => {
  const pods = finishSteps(setup({ workers: { controller: "pods" } }));
  assert.deepEqual(argvOf(pods)[0], [
    "kubectl",
    "wait",
    "--for=jsonpath={.status.phase}=Succeeded",
    "pods",
    `--selector=${SEL},app.kubernetes.io/instance=ttg,app.kubernetes.io/component=worker`,
    "--namespace=ttg",
    "--timeout=1800s",
  ]);
  const deployment = setup({ workers: { controller: "deployment", idleTimeoutSeconds: 0 } });
  assert.deepEqual(argvOf(finishSteps(deployment))[0], ["<wait-progress>"]);
  assert.deepEqual(runKinds(deployment.config), ["jobs.batch", "pods", "deployments.apps"]);
  const keda = setup({ keda: { enabled: true } });
  assert.deepEqual(argvOf(finishSteps(keda))[0], ["<wait-progress>"]);
  assert.deepEqual(runKinds(keda.config), ["jobs.batch", "pods", "scaledjobs.keda.sh"]);
  const stat = setup({ mode: "static" });
  assert.deepEqual(argvOf([...startSteps(stat), ...finishSteps(stat)]), [
    ["kubectl", "apply", "-f", "-"],
    [
      "kubectl",
      "delete",
      "jobs.batch,pods",
      `--selector=${RUN_SEL}`,
      "--namespace=ttg",
      "--ignore-not-found",
      "--wait=true",
    ],
    ["kubectl", "apply", "-f", "-"],
    [
      "kubectl",
      "wait",
      "--for=condition=complete",
      "job/ttg-static",
      "--namespace=ttg",
      "--timeout=1800s",
    ],
    [
      "kubectl",
      "logs",
      `--selector=${SEL},app.kubernetes.io/instance=ttg,app.kubernetes.io/component=static`,
      "--namespace=ttg",
      "--prefix",
      "--tail=-1",
    ],
  ]);
});

Deno.test("--dry-run text shows every step's title, its command and the YAML it applies", () => {
  const s = setup({ backend: "rabbitmq" });
  const text = describeSteps(startSteps(s));
  assert.match(
    text,
    /^# 1\. Apply the namespace, broker and policies\nkubectl apply -f - <<'YAML'\n# Generated/,
  );
  assert.match(
    text,
    /# 2\. Wait until rabbitmq is ready\nkubectl rollout status statefulset\/ttg-rabbitmq/,
  );
  assert.match(
    text,
    /'--selector=app.kubernetes.io\/managed-by=ttg-deploy,.*component in \(submit,worker,static,report\)'/,
  );
  // Namespace, Secret, Service + StatefulSet, NetworkPolicy, the exporter's Deployment and
  // Service, the dashboard ConfigMap, the submit Job and the worker Job.
  assert.equal(text.match(/^kind: /gm)?.length, 10);
});

Deno.test("parseProgress() reads `ttg status --json` and skips log lines; isDone() and verdict() judge it", () => {
  const out = [
    '{"time":"…","level":"INFO","message":"connected"}',
    JSON.stringify({
      job_id: "ttg",
      job: { total_chunks: 100 },
      stats: { completed: 40, dead_lettered: 0, duplicates: 2 },
    }),
  ].join("\n");
  const p = parseProgress(out)!;
  assert.deepEqual(p, { completed: 40, total: 100, deadLettered: 0, duplicates: 2 });
  const older =
    '{"job":{"totalChunks":100},"stats":{"completed":7,"deadLettered":1,"duplicates":0}}';
  assert.deepEqual(parseProgress(older), {
    completed: 7,
    total: 100,
    deadLettered: 1,
    duplicates: 0,
  });
  assert.equal(isDone(p), false);
  assert.equal(isDone({ ...p, completed: 99, deadLettered: 1 }), true);
  assert.equal(parseProgress("Error: nope"), undefined);
  assert.deepEqual(verdict({ ...p, completed: 100 }), {
    ok: true,
    line: "Every chunk counted once: 100/100 completed, 2 duplicate result(s) discarded",
  });
  assert.equal(verdict(p).ok, false);
});

Deno.test("flags become props: numbers checked, the image tag defaults to the project version", () => {
  const props = propsFromFlags({
    backend: "rabbitmq",
    workers: "5",
    params: "1000",
    "chunk-size": "10",
    "work-ms": "2.5",
    keda: true,
    "no-network-policy": true,
  });
  assert.equal(props.backend, "rabbitmq");
  assert.equal(props.workers?.count, 5);
  assert.deepEqual(props.job, { params: 1000, chunkSize: 10, workMs: 2.5 });
  assert.equal(props.image?.tag, PROJECT_VERSION);
  assert.equal(props.keda?.enabled, true);
  assert.equal(props.networkPolicy?.enabled, false);
  assert.throws(() => propsFromFlags({ workers: "three" }), UsageError);
  const secured = propsFromFlags({ "tls-secret": "broker-tls", "rabbitmq-queue-type": "quorum" });
  assert.equal(secured.tls?.secretName, "broker-tls");
  assert.equal(secured.rabbitmq?.queueType, "quorum");
  assert.equal(secured.observability, undefined);
  const observed = propsFromFlags(
    { "prometheus-operator": "podmonitor", "metrics-port": "9100" },
    { observability: { grafanaDashboard: false } },
  );
  assert.deepEqual(observed.observability, {
    grafanaDashboard: false,
    prometheusOperator: "podmonitor",
    metricsPort: 9100,
  });
  assert.throws(
    () => propsFromFlags({ "metrics-port": "http" }),
    /"--metrics-port": expected a number/,
  );
});

Deno.test("a task's failure is one line: exit 2 for bad input (naming the field and flag), 1 for the environment", () => {
  let synthError: unknown;
  try {
    synth({ workers: { count: 0 } });
  } catch (error) {
    synthError = error;
  }
  assert.ok(synthError instanceof SynthError);
  assert.deepEqual(describeFailure(synthError, { "workers.count": "--workers" }), {
    code: 2,
    lines: ['Invalid "workers.count": expected an integer from 1 to 256, got 0 (--workers)'],
  });
  assert.equal(describeFailure(new UsageError("bad")).code, 2);
  assert.equal(
    describeFailure(
      Object.assign(new TypeError("Unknown option '--x'"), {
        code: "ERR_PARSE_ARGS_UNKNOWN_OPTION",
      }),
    ).code,
    2,
  );
  assert.deepEqual(describeFailure(new EnvironmentError('Cannot run "kind": not found')), {
    code: 1,
    lines: ['Cannot run "kind": not found'],
  });
  assert.deepEqual(describeFailure(new Error("boom\n    at stack")), {
    code: 1,
    lines: ["Error: boom"],
  });
});

Deno.test("firstLine() picks the error line of kubectl, deno and docker output; shellQuote() quotes only what needs it", () => {
  assert.equal(firstLine("\x1b[31merror\x1b[0m: bad\nStack backtrace:\n 0: x"), "error: bad");
  assert.equal(
    firstLine("DEPRECATED: legacy\n\nCannot connect to the Docker daemon\n"),
    "Cannot connect to the Docker daemon",
  );
  assert.equal(
    firstLine("The connection to the server localhost:8080 was refused"),
    "The connection to the server localhost:8080 was refused",
  );
  assert.equal(
    shellQuote(["kubectl", "get", "--selector=a in (b,c)", "it's"]),
    `kubectl get '--selector=a in (b,c)' 'it'\\''s'`,
  );
  assert.equal(shellQuote(["--jobs", "nightly-*", "v?", "[ab]"]), "--jobs 'nightly-*' 'v?' '[ab]'");
});

Deno.test("deno task manifests prints valid YAML: every document a labelled, named object", async () => {
  for (
    const args of [["--backend", "redis"], ["--backend", "rabbitmq", "--workers", "5"], [
      "--mode",
      "static",
    ]]
  ) {
    const { code, stdout, stderr } = await task("manifests.ts", args);
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /warning|deprecat/i, "no warnings on stderr");
    const docs = parseAllDocuments(stdout);
    assert.ok(docs.length >= 2);
    for (const doc of docs) {
      assert.deepEqual(doc.errors, []);
      const o = doc.toJS();
      assert.ok(o.apiVersion && o.kind && o.metadata.name);
      assert.equal(o.metadata.labels["app.kubernetes.io/managed-by"], "ttg-deploy");
    }
  }
});

Deno.test("deno task manifests --out writes one file per object, in apply order", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { code, stderr } = await task("manifests.ts", ["--backend", "redis", "--out", dir]);
    assert.equal(code, 0, stderr);
    const files = [];
    for await (const entry of Deno.readDir(dir)) files.push(entry.name);
    // No password Secret unless asked for; the others keep their place in the apply order.
    assert.deepEqual(files.sort(), [
      "00-namespace-ttg.yaml",
      "02-service-ttg-redis.yaml",
      "03-statefulset-ttg-redis.yaml",
      "04-networkpolicy-ttg-broker-ingress.yaml",
      "05-deployment-ttg-exporter.yaml",
      "06-service-ttg-exporter.yaml",
      "07-configmap-ttg-grafana-dashboard.yaml",
      "08-job-ttg-submit.yaml",
      "09-job-ttg-worker.yaml",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task manifests --rules prints the rules file, --dashboard the dashboard JSON; --prometheus-operator adds the operator's objects", async () => {
  const rules = await task("manifests.ts", ["--rules", "--namespace", "sweeps"]);
  assert.equal(rules.code, 0, rules.stderr);
  assert.equal(rules.stdout, rulesFile(setup({ namespace: "sweeps" }).config));
  const dashboard = await task("manifests.ts", ["--dashboard"]);
  assert.equal(dashboard.code, 0, dashboard.stderr);
  assert.equal(dashboard.stdout, dashboardJson());
  const both = await task("manifests.ts", ["--rules", "--dashboard"]);
  assert.deepEqual([both.code, both.stderr.trim()], [2, "Cannot combine --rules and --dashboard"]);
  const statics = await task("manifests.ts", ["--mode", "static", "--rules"]);
  assert.deepEqual([statics.code, statics.stderr.trim()], [
    2,
    'Invalid "--rules": static mode has no queue or workers to watch',
  ]);
  const operator = await task("manifests.ts", ["--prometheus-operator", "podmonitor"]);
  assert.equal(operator.code, 0, operator.stderr);
  const kinds = parseAllDocuments(operator.stdout).map((d) => d.get("kind"));
  assert.ok(kinds.includes("PodMonitor") && kinds.includes("PrometheusRule"), kinds.join(" "));
});

Deno.test("deno task manifests leaves the password Secret out unless asked for, and says which it did", async () => {
  const secretsOf = (yaml: string) =>
    parseAllDocuments(yaml).map((d) => d.toJS()).filter((o) => o.kind === "Secret");
  const none = await task("manifests.ts", ["--backend", "redis"]);
  assert.equal(none.code, 0, none.stderr);
  assert.deepEqual(secretsOf(none.stdout), []);
  assert.match(none.stdout, /secretKeyRef:\n\s+key: password\n\s+name: ttg-redis-auth/);
  assert.equal(
    none.stderr,
    'Left out Secret "ttg-redis-auth" (the broker password; keys password): kubectl apply keeps the one in the cluster; for a new broker add --with-secrets, or give the password with --password-file or TTG_BROKER_PASSWORD\n',
  );
  // --with-secrets: a new random password every run, which is why it is not the default.
  const runs = await Promise.all(
    [1, 2].map(() => task("manifests.ts", ["--backend", "rabbitmq", "--keda", "--with-secrets"])),
  );
  const [a, b] = runs.map((r) => secretsOf(r.stdout)[0]);
  assert.deepEqual(Object.keys(a.stringData).sort(), ["amqp-url", "password", "username"]);
  assert.notEqual(a.stringData.password, b.stringData.password);
  assert.match(
    runs[0]!.stderr,
    /^Secret "ttg-rabbitmq-auth" holds a new random password: apply it to a new broker only/,
  );
  // A given password is the same on every run: its Secret is safe to re-apply, so it is included.
  const pw = "given-password-0123456789";
  const fromEnv = await task("manifests.ts", ["--backend", "redis"], { TTG_BROKER_PASSWORD: pw });
  assert.equal(secretsOf(fromEnv.stdout)[0].stringData.password, pw);
  assert.equal(
    fromEnv.stderr,
    'Secret "ttg-redis-auth" holds the password from TTG_BROKER_PASSWORD\n',
  );
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/pw`, `${pw}\n`);
    const fromFile = await task("manifests.ts", [
      "--backend",
      "redis",
      "--password-file",
      `${dir}/pw`,
    ]);
    assert.equal(secretsOf(fromFile.stdout)[0].stringData.password, pw);
    assert.match(fromFile.stderr, /holds the password from --password-file\n$/);
    const short = await task("manifests.ts", ["--backend", "redis"], {
      TTG_BROKER_PASSWORD: "hunter2",
    });
    assert.deepEqual([short.code, short.stderr], [
      2,
      "Invalid TTG_BROKER_PASSWORD: expected a password of 12 to 128 printable characters without spaces, got 7 characters (not shown)\n",
    ]);
    const missing = await task("manifests.ts", ["--password-file", `${dir}/none`]);
    assert.deepEqual([missing.code, missing.stderr], [
      2,
      `Invalid "--password-file": cannot read "${dir}/none": the file does not exist\n`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task manifests --out that writes a Secret lists it in the directory's .gitignore and warns in one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/.gitignore`, "notes.txt");
    const args = ["--backend", "redis", "--with-secrets", "--out", dir];
    const first = await task("manifests.ts", args);
    assert.equal(first.code, 0, first.stderr);
    assert.ok((await Deno.stat(`${dir}/01-secret-ttg-redis-auth.yaml`)).isFile);
    assert.equal(
      first.stderr.split("\n").filter((l) => l.startsWith("Warning: ")).join("\n"),
      `Warning: ${dir}/01-secret-ttg-redis-auth.yaml holds a password in plain text; ${dir}/.gitignore lists it: keep it out of version control`,
    );
    await task("manifests.ts", args);
    assert.equal(
      await Deno.readTextFile(`${dir}/.gitignore`),
      "notes.txt\n01-secret-ttg-redis-auth.yaml\n",
      "listed once, after what was there",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad flags exit with code 2 and one line per problem, naming the field and the flag", async () => {
  const bad = await task("manifests.ts", ["--backend", "kafka", "--workers", "0"]);
  assert.equal(bad.code, 2);
  assert.deepEqual(bad.stderr.trim().split("\n"), [
    'Invalid "backend": expected one of redis, rabbitmq, got "kafka" (--backend)',
    'Invalid "workers.count": expected an integer from 1 to 256, got 0 (--workers)',
  ]);
  const unknown = await task("deploy.ts", ["--nope"]);
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stderr.trim().split("\n").length, 1);
  const target = await task("deploy.ts", ["--target", "moon"]);
  assert.deepEqual([target.code, target.stderr.trim()], [
    2,
    'Invalid "--target": expected cluster or local, got "moon"',
  ]);
  const queueType = await task("manifests.ts", [
    "--backend",
    "rabbitmq",
    "--rabbitmq-queue-type",
    "lazy",
  ]);
  assert.deepEqual([queueType.code, queueType.stderr.trim()], [
    2,
    'Invalid "rabbitmq.queueType": expected one of classic, quorum, got "lazy" (--rabbitmq-queue-type)',
  ]);
  const staticTls = await task("manifests.ts", ["--mode", "static", "--tls-secret", "broker-tls"]);
  assert.deepEqual([staticTls.code, staticTls.stderr.trim()], [
    2,
    'Invalid "tls.secretName": expected unset with mode "static" (static mode has no broker) (--tls-secret)',
  ]);
  const operator = await task("manifests.ts", [
    "--prometheus-operator",
    "prometheus",
    "--metrics-port",
    "80",
  ]);
  assert.deepEqual([operator.code, operator.stderr.trim().split("\n")], [2, [
    'Invalid "observability.prometheusOperator": expected one of none, servicemonitor, podmonitor, got "prometheus" (--prometheus-operator)',
    'Invalid "observability.metricsPort": expected an integer from 1024 to 65535, got 80 (--metrics-port)',
  ]]);
  const localTls = await task("deploy.ts", ["--target", "local", "--tls-secret", "broker-tls"]);
  assert.equal(localTls.code, 2);
  assert.match(localTls.stderr.trim(), /^Invalid "--tls-secret": .*plain TCP$/);
});

Deno.test("without kubectl or kind on PATH the tasks exit with code 1 and one line, no stack trace", async () => {
  const env = { PATH: "/nonexistent" };
  const deploy = await task("deploy.ts", ["--backend", "redis"], env);
  assert.deepEqual([deploy.code, deploy.stderr.trim()], [
    1,
    'Cannot run "kubectl": not found; install it: https://kubernetes.io/docs/tasks/tools/',
  ]);
  const cluster = await task("cluster.ts", ["up"], env);
  assert.deepEqual([cluster.code, cluster.stderr.trim()], [
    1,
    'Cannot run "kind": not found; install it: https://kind.sigs.k8s.io/docs/user/quick-start/#installation',
  ]);
  const cleanup = await task("cleanup.ts", ["--dry-run"], env);
  assert.equal(cleanup.code, 1);
  assert.equal(cleanup.stderr.trim().split("\n").length, 1);
});

Deno.test("an unreachable cluster is one line with exit code 1", {
  ignore: !onPath("kubectl"),
}, async () => {
  const kubeconfig = await Deno.makeTempFile();
  await Deno.writeTextFile(
    kubeconfig,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters: [{name: none, cluster: {server: 'https://127.0.0.1:1'}}]",
      "contexts: [{name: none, context: {cluster: none, user: none}}]",
      "users: [{name: none, user: {}}]",
      "current-context: none",
    ].join("\n"),
  );
  try {
    const { code, stderr } = await task("deploy.ts", ["--backend", "redis"], {
      KUBECONFIG: kubeconfig,
    });
    assert.equal(code, 1);
    const lines = stderr.trim().split("\n");
    assert.equal(lines.length, 1, stderr);
    assert.match(
      lines[0]!,
      /^Cannot reach a Kubernetes cluster with the current kubectl context: .*deno task cluster up/,
    );
  } finally {
    await Deno.remove(kubeconfig);
  }
});

Deno.test("deploy --dry-run prints the steps and needs no cluster", async () => {
  const { code, stdout, stderr } = await task("deploy.ts", ["--backend", "redis", "--dry-run"], {
    PATH: "/nonexistent",
  });
  assert.equal(code, 0, stderr);
  assert.match(stdout, /# 2\. Wait until redis is ready/);
  assert.match(stdout, /kubectl logs job\/ttg-report --namespace=ttg$/m);
});

function onPath(program: string): boolean {
  try {
    new Deno.Command(program, { args: ["version", "--client"], stdout: "null", stderr: "null" })
      .outputSync();
    return true;
  } catch {
    return false;
  }
}

Deno.test("with a fake kubectl, deno task deploy runs its steps in order, reusing the password in the cluster's Secret", async () => {
  await using fake = await fakeCluster();
  const { code, stdout, stderr } = await task("deploy.ts", ["--backend", "redis"], fake.env);
  assert.equal(code, 0, stderr);
  assert.deepEqual(await fake.calls(), [
    "get --raw /readyz --request-timeout=5s",
    "get secret ttg-redis-auth --namespace=ttg --ignore-not-found --output=jsonpath={.data}",
    "get secret ttg-rabbitmq-auth --namespace=ttg --ignore-not-found --output=jsonpath={.data}",
    "get namespace ttg --ignore-not-found --output=jsonpath={.metadata.labels}",
    "apply -f -",
    "rollout status statefulset/ttg-redis --namespace=ttg --timeout=300s",
    `delete jobs.batch,pods --selector=${RUN_SEL} --namespace=ttg --ignore-not-found --wait=true`,
    "apply -f -",
    "wait --for=condition=complete job/ttg-submit --namespace=ttg --timeout=180s",
    "logs job/ttg-submit --namespace=ttg",
    "apply -f -",
    "wait --for=condition=complete job/ttg-worker --namespace=ttg --timeout=1800s",
    "delete job ttg-report --namespace=ttg --ignore-not-found --wait=true",
    "apply -f -",
    "wait --for=condition=complete job/ttg-report --namespace=ttg --timeout=180s",
    "logs job/ttg-report --namespace=ttg",
  ]);
  assert.match(await fake.stdin(0), /password: existing-cluster-password/);
  assert.match(await fake.stdin(2), /name: ttg-worker\n/);
  assert.match(stdout, /==> Wait until redis is ready/);
  assert.match(stdout, /REPORT 100\/100 completed/);
});

Deno.test("deno task deploy exits 3 when the report shows dead letters, unless --allow-dead-letters", async () => {
  await using fake = await fakeCluster();
  await Deno.writeTextFile(
    `${fake.dir}/report.txt`,
    [
      'Job "ttg" (ttg.sweep on redis)',
      "  parameters 10000/10000 accounted: 9,998 counted, 2 dead-lettered",
      "  chunks     100 planned, 14 bisected into 28 parts → 112 completed, 2 dead-lettered",
    ].join("\n") + "\n",
  );
  const dead = await task("deploy.ts", ["--backend", "redis"], fake.env);
  assert.equal(dead.code, 3, dead.stderr);
  assert.match(dead.stdout, /^ {2}parameters 10000\/10000 accounted: 9,998 counted/m);
  assert.equal(
    dead.stderr.trim(),
    'Job "ttg" finished with 2 dead letters (exit code 3; --allow-dead-letters exits 0): see ttg dlq list --job-id ttg',
  );
  const allowed = await task("deploy.ts", ["--backend", "redis", "--allow-dead-letters"], fake.env);
  assert.deepEqual([allowed.code, allowed.stderr.trim()], [0, ""]);
  await Deno.writeTextFile(
    `${fake.dir}/report.txt`,
    "  chunks     100 planned → 100 completed, 0 dead-lettered\n",
  );
  assert.equal((await task("deploy.ts", ["--backend", "redis"], fake.env)).code, 0);
});

Deno.test("deno task deploy --mode static prints the combined total of the pods' shares", async () => {
  await using fake = await fakeCluster();
  const shares = await Promise.all([0, 1, 2, 3].map((i) => runStatic(10_000, 4, i)));
  await Deno.writeTextFile(
    `${fake.dir}/shares.txt`,
    shares.map((s) => `[pod/ttg-static-${s.index}-x/static] ${JSON.stringify(s)}\n`).join(""),
  );
  const { code, stdout, stderr } = await task(
    "deploy.ts",
    ["--mode", "static", "--workers", "4"],
    fake.env,
  );
  assert.equal(code, 0, stderr);
  assert.match(
    stdout,
    /^Total: 4\/4 pods, 10000 parameters, sum 5000355\.000000, count 10000, min 0\.410000, max 999\.980000, avg 500\.035500$/m,
  );
});

Deno.test("deploy into a namespace that exists and is not ours neither generates nor labels it", async () => {
  await using fake = await fakeCluster();
  const { code, stderr } = await task(
    "deploy.ts",
    ["--backend", "redis", "--namespace", "prod"],
    fake.env,
  );
  assert.equal(code, 0, stderr);
  const infra = await fake.stdin(0);
  assert.doesNotMatch(infra, /kind: Namespace/);
  assert.match(infra, /kind: StatefulSet/);
});

Deno.test("with fake kind and kubectl, the fault demo kills one worker pod at 30% and checks every chunk was counted once", async () => {
  await using fake = await fakeCluster();
  const { code, stdout, stderr } = await task("demo_kind.ts", [
    "--backend",
    "redis",
    "--fault-demo",
  ], fake.env);
  assert.equal(code, 0, stderr);
  const calls = await fake.calls();
  const kill = calls.indexOf("delete pod ttg-worker-0 --namespace=ttg --grace-period=0 --force");
  assert.ok(
    kill > calls.indexOf("logs job/ttg-report-progress --namespace=ttg"),
    "killed after the 30% check",
  );
  assert.ok(
    kill <
      calls.findIndex((c) => c.startsWith("wait --for=jsonpath={.status.phase}=Succeeded pods")),
  );
  assert.match(await fake.stdin(2), /kind: Pod\n/, "standalone worker pods");
  assert.match(stdout, /==> Kill worker pod "ttg-worker-0" \(no grace period\)/);
  assert.match(
    stdout,
    /Every chunk counted once: 100\/100 completed, 1 duplicate result\(s\) discarded/,
  );
});

Deno.test("the fault demo fails when the job was over before a worker pod could be killed", () => {
  const at = (completed: number) => ({ completed, total: 100, deadLettered: 0, duplicates: 0 });
  assertFaultLands(at(40));
  assert.throws(
    () => assertFaultLands(at(100)),
    /^EnvironmentError: The job finished \(100\/100 chunks\) before a worker pod could be killed/,
  );
});

Deno.test("with a fake kind, cluster up creates the cluster from the generated config on stdin and loads the image", async () => {
  await using fake = await fakeCluster();
  const { code, stdout, stderr } = await task("cluster.ts", ["up", "--name", "demo"], fake.env);
  assert.equal(code, 0, stderr);
  assert.deepEqual(await fake.calls(), [
    "get clusters",
    "create cluster --name demo --config=- --wait=120s",
    `load docker-image ttg:${PROJECT_VERSION} --name demo`,
  ]);
  const config = parseAllDocuments(await fake.stdin(0))[0]!.toJS();
  assert.deepEqual(config, { ...kindCluster({ name: "demo" }) });
  assert.match(stdout, /Loaded image "ttg:0\.1\.0" into Kind cluster "demo"/);
  const again = await task("cluster.ts", ["up", "--no-load"], fake.env);
  assert.match(again.stdout, /Kind cluster "ttg" already exists/);
});

Deno.test("with a fake kubectl, cleanup deletes by label in every namespace, then our namespaces", async () => {
  await using fake = await fakeCluster();
  const { code, stderr } = await task("cleanup.ts", [], fake.env);
  assert.equal(code, 0, stderr);
  assert.deepEqual((await fake.calls()).slice(1), [
    "api-resources --api-group=keda.sh --output=name",
    "api-resources --api-group=monitoring.coreos.com --output=name",
    `delete ${
      OWNED_KINDS.join(",")
    } --selector=${SEL} --all-namespaces --ignore-not-found --wait=true`,
    `delete namespaces --selector=${SEL} --ignore-not-found --wait=true`,
  ]);
});

Deno.test("with a fake docker, deno task image builds with the version and commit tags and loads the image into Kind", async () => {
  await using fake = await fakeCluster();
  const { code, stdout, stderr } = await task("image.ts", ["--load-kind"], fake.env);
  assert.equal(code, 0, stderr);
  const commit = new TextDecoder().decode(
    (await new Deno.Command("git", { args: ["rev-parse", "--short=12", "HEAD"], stdout: "piped" })
      .output()).stdout,
  ).trim();
  const [build, load] = await fake.calls();
  assert.match(
    build!,
    new RegExp(
      `^build --file=Dockerfile --tag=ttg:${PROJECT_VERSION} --tag=ttg:${commit} --build-arg=VERSION=${PROJECT_VERSION} --build-arg=GIT_COMMIT=${commit} --build-arg=BUILD_DATE=\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ \\.$`,
    ),
  );
  assert.equal(load, `load docker-image ttg:${PROJECT_VERSION} --name ttg`);
  assert.match(stdout, new RegExp(`Built ttg:${PROJECT_VERSION}, ttg:${commit}`));
});

Deno.test("every deno task script prints its usage for --help and exits 0", async () => {
  const scripts = ["cleanup.ts", "cluster.ts", "compile.ts", "demo_kind.ts", "deploy.ts"]
    .concat(["image.ts", "manifests.ts"]);
  for (const script of scripts) {
    const { code, stdout, stderr } = await task(script, ["--help"]);
    assert.equal(code, 0, `${script}: ${stderr}`);
    assert.match(stdout, /^Usage: deno task /, script);
  }
  const { stdout } = await task("manifests.ts", ["--help"]);
  for (const flag of ["--rules", "--dashboard", "--prometheus-operator", "--metrics-port"]) {
    assert.ok(stdout.includes(flag), `manifests --help names ${flag}`);
  }
});
