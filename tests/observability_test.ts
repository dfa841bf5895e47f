// deno-lint-ignore-file no-explicit-any -- tests walk the generated objects as plain JSON
/**
 * deploy/ observability: the `observability` config, the metrics port, env, annotations and
 * probes of worker pods, the exporter and the Prometheus Operator's objects. The alert rules
 * are tests/alerts_test.ts (with promtool), the dashboard tests/dashboard_test.ts.
 */
import "../tasks/node_warnings.ts";
import assert from "node:assert/strict";
import { type DeploymentProps, resolveConfig } from "../deploy/config.ts";
import { LABEL } from "../deploy/labels.ts";
import {
  monitorReferenceProblems,
  PodMonitor,
  PrometheusRule,
  selects,
  ServiceMonitor,
} from "../deploy/monitoring.ts";
import { plain, synth } from "../deploy/synth.ts";

const SECRET = "observability-test-secret-01";

function setup(props: DeploymentProps = {}) {
  const synthesized = synth(props, { randomSecret: () => SECRET });
  const objects = synthesized.manifests.map((m) => m.object);
  return { ...synthesized, objects, data: objects.map(plain) as Record<string, any>[] };
}

function problemsOf(props: DeploymentProps) {
  return resolveConfig(props, { randomSecret: () => SECRET }).problems;
}

/** The pod template (or Pod) of every worker object of a deployment. */
function workerPods(data: Record<string, any>[]): Record<string, any>[] {
  return data.filter((o) => o.metadata.labels[LABEL.component] === "worker").map((o) =>
    o.kind === "Pod" ? o : o.kind === "ScaledJob" ? o.spec.jobTargetRef.template : o.spec.template
  );
}

/** Every controller variant of the workers. */
const WORKER_VARIANTS: Readonly<Record<string, DeploymentProps>> = {
  job: {},
  pods: { workers: { controller: "pods" } },
  deployment: { workers: { controller: "deployment", idleTimeoutSeconds: 0 } },
  keda: { backend: "rabbitmq", keda: { enabled: true } },
};

Deno.test("observability defaults: port 9464, no operator, the exporter and the dashboard in queue mode only", () => {
  const { config, problems } = resolveConfig({}, { randomSecret: () => SECRET });
  assert.deepEqual(problems, []);
  const o = config.observability;
  assert.equal(o.metricsPort, 9464);
  assert.equal(o.prometheusOperator, "none");
  assert.equal(o.scrapeIntervalSeconds, 30);
  assert.deepEqual(o.monitorLabels, {});
  assert.equal(o.exporter.enabled, true);
  assert.equal(o.grafanaDashboard, true);
  assert.equal(o.dashboardNamespace, "ttg");
  assert.equal(o.alerts.queueBackupMinutes, 15);
  assert.equal(o.alerts.stuckMinutes, 15);
  assert.equal(o.alerts.runbookUrl, undefined);
  const statics = resolveConfig({ mode: "static" }).config.observability;
  assert.equal(statics.exporter.enabled, false);
  assert.equal(statics.grafanaDashboard, false);
  const kinds = setup({ mode: "static" }).data.map((o) => o.kind);
  assert.deepEqual(kinds, ["Namespace", "Job"], "static mode has no exporter and no dashboard");
});

Deno.test("a bad observability value is one problem naming its field", () => {
  const cases: [DeploymentProps, string, RegExp][] = [
    [{ observability: { metricsPort: 80 } }, "observability.metricsPort", /1024 to 65535, got 80/],
    [
      { observability: { prometheusOperator: "operator" as "none" } },
      "observability.prometheusOperator",
      /one of none, servicemonitor, podmonitor, got "operator"/,
    ],
    [
      { mode: "static", observability: { prometheusOperator: "podmonitor" } },
      "observability.prometheusOperator",
      /"none" with mode "static"/,
    ],
    [
      { mode: "static", observability: { exporter: { enabled: true } } },
      "observability.exporter.enabled",
      /false with mode "static"/,
    ],
    [
      { mode: "static", observability: { grafanaDashboard: true } },
      "observability.grafanaDashboard",
      /false with mode "static"/,
    ],
    [
      { observability: { prometheusOperator: "servicemonitor", exporter: { enabled: false } } },
      "observability.prometheusOperator",
      /"podmonitor" or "none" with observability.exporter.enabled false/,
    ],
    [
      { observability: { monitorLabels: { "bad key!": "x" } } },
      "observability.monitorLabels.bad key!",
      /a label name/,
    ],
    [
      { observability: { monitorLabels: { [LABEL.managedBy]: "me" } } },
      `observability.monitorLabels.${LABEL.managedBy}`,
      /a label TTG does not set itself/,
    ],
    [
      { observability: { monitorLabels: { release: "has space" } } },
      "observability.monitorLabels.release",
      /a label value/,
    ],
    [
      { observability: { exporter: { resources: { cpuRequest: "lots" } } } },
      "observability.exporter.resources.cpuRequest",
      /quantity/,
    ],
    [
      { observability: { scrapeIntervalSeconds: 1 } },
      "observability.scrapeIntervalSeconds",
      /5 to/,
    ],
    [{ observability: { dashboardNamespace: "Mon" } }, "observability.dashboardNamespace", /DNS/],
    [
      { observability: { alerts: { reclaimRatePerSecond: -1 } } },
      "observability.alerts.reclaimRatePerSecond",
      /a number from 0/,
    ],
    [
      { observability: { alerts: { queueBackupMinutes: 0 } } },
      "observability.alerts.queueBackupMinutes",
      /integer from 1 to 1440, got 0/,
    ],
    [
      { workers: { chunkTimeoutSeconds: 1800 }, observability: { alerts: { stuckMinutes: 20 } } },
      "observability.alerts.stuckMinutes",
      /more than workers.chunkTimeoutSeconds \(1800 s\)/,
    ],
    [
      { observability: { alerts: { runbookUrl: "https://wiki/ttg#alerts" } } },
      "observability.alerts.runbookUrl",
      /without a #fragment/,
    ],
    [
      { observability: { alerts: { stuck: 3 } } } as unknown as DeploymentProps,
      "observability.alerts.stuck",
      /unknown field \(expected one of queueBackupReadyChunks/,
    ],
    [{ observability: { port: 1 } } as DeploymentProps, "observability.port", /unknown field/],
  ];
  for (const [props, field, message] of cases) {
    const problems = problemsOf(props);
    assert.equal(problems.length, 1, `${field}: ${JSON.stringify(problems)}`);
    assert.equal(problems[0]?.field, field);
    assert.match(problems[0]?.message ?? "", message);
  }
});

Deno.test("every worker controller's pods get the metrics port, TTG_METRICS_PORT and the scrape annotations", () => {
  for (const [name, props] of Object.entries(WORKER_VARIANTS)) {
    for (const port of [9464, 9100]) {
      const { data } = setup({ ...props, observability: { metricsPort: port } });
      const pods = workerPods(data);
      assert.ok(pods.length > 0, name);
      for (const pod of pods) {
        assert.deepEqual(pod.metadata.annotations, {
          "prometheus.io/scrape": "true",
          "prometheus.io/port": String(port),
          "prometheus.io/path": "/metrics",
        }, name);
        const [c] = pod.spec.containers;
        assert.deepEqual(c.ports, [{ name: "metrics", containerPort: port, protocol: "TCP" }]);
        assert.deepEqual(c.env.filter((e: any) => e.name === "TTG_METRICS_PORT"), [
          { name: "TTG_METRICS_PORT", value: String(port) },
        ]);
      }
    }
  }
  // Only the worker and the exporter serve metrics; submit, report and progress do not.
  for (
    const o of setup({}).data.filter((o) => o.kind === "Job" && o.metadata.name !== "ttg-worker")
  ) {
    assert.equal(o.spec.template.metadata.annotations, undefined, o.metadata.name);
    assert.equal(o.spec.template.spec.containers[0].ports, undefined, o.metadata.name);
  }
});

Deno.test("probes on /readyz and /healthz only for long-running pods: the worker Deployment and the exporter", () => {
  for (const [name, props] of Object.entries(WORKER_VARIANTS)) {
    const { data } = setup(props);
    for (const pod of workerPods(data)) {
      const [c] = pod.spec.containers;
      const probed = name === "deployment";
      assert.equal(c.readinessProbe?.httpGet?.path, probed ? "/readyz" : undefined, name);
      assert.equal(c.livenessProbe?.httpGet?.path, probed ? "/healthz" : undefined, name);
      if (probed) assert.equal(c.livenessProbe.httpGet.port, "metrics");
    }
    const exporter = data.find((o) =>
      o.metadata.name === "ttg-exporter" && o.kind === "Deployment"
    )!;
    const [c] = exporter.spec.template.spec.containers;
    assert.equal(c.readinessProbe.httpGet.path, "/readyz");
    assert.equal(c.livenessProbe.httpGet.path, "/healthz");
  }
});

Deno.test("the exporter: one replica recreated, `ttg exporter --metrics-port`, the workers' broker env, a Service with the named port", () => {
  for (const props of [{}, { backend: "rabbitmq" as const, tls: { secretName: "broker-tls" } }]) {
    const { data } = setup({ ...props, observability: { metricsPort: 9100 } });
    const deployment = data.find((o) =>
      o.kind === "Deployment" && o.metadata.name === "ttg-exporter"
    )!;
    assert.equal(deployment.spec.replicas, 1);
    assert.equal(deployment.spec.strategy.type, "Recreate", "never two exporters at once");
    const pod = deployment.spec.template;
    const [c] = pod.spec.containers;
    assert.deepEqual(c.args, ["exporter", "--metrics-port", "9100"]);
    assert.deepEqual(c.ports, [{ name: "metrics", containerPort: 9100, protocol: "TCP" }]);
    assert.deepEqual(c.resources, {
      requests: { cpu: "50m", memory: "128Mi" },
      limits: { cpu: "200m", memory: "256Mi" },
    });
    const worker = workerPods(data)[0]!.spec.containers[0];
    const brokerVars = (env: any[]) =>
      env.filter((e) => /^(TTG_BACKEND|REDIS_|RABBITMQ_|TTG_TLS_)/.test(e.name));
    assert.deepEqual(
      brokerVars(c.env),
      brokerVars(worker.env),
      "the same broker settings and Secrets",
    );
    assert.ok(
      !c.env.some((e: any) => e.name === "TTG_JOB_ID"),
      "it serves every job of the broker",
    );
    assert.deepEqual(c.volumeMounts, worker.volumeMounts);
    const service = data.find((o) => o.kind === "Service" && o.metadata.name === "ttg-exporter")!;
    assert.equal(service.spec.type, "ClusterIP");
    assert.deepEqual(service.spec.ports, [
      { name: "metrics", port: 9100, targetPort: "metrics", protocol: "TCP" },
    ]);
    assert.ok(selects({ matchLabels: service.spec.selector }, pod.metadata.labels));
    // The NetworkPolicy admits it to the broker.
    const policy = data.find((o) => o.kind === "NetworkPolicy")!;
    assert.ok(
      policy.spec.ingress[0].from.some((peer: any) =>
        peer.podSelector && selects(peer.podSelector, pod.metadata.labels)
      ),
    );
  }
  const off = setup({ observability: { exporter: { enabled: false } } }).data;
  assert.ok(!off.some((o) => o.metadata.name === "ttg-exporter"));
});

Deno.test("ServiceMonitor selects the exporter's Service, PodMonitor the worker and exporter pods; both carry monitorLabels", () => {
  const monitorLabels = { release: "kube-prometheus-stack" };
  const sm = setup({ observability: { prometheusOperator: "servicemonitor", monitorLabels } }).data;
  const serviceMonitor = sm.find((o) => o.kind === "ServiceMonitor")!;
  assert.equal(serviceMonitor.apiVersion, "monitoring.coreos.com/v1");
  assert.deepEqual(serviceMonitor.spec.endpoints, [{
    port: "metrics",
    path: "/metrics",
    interval: "30s",
  }]);
  assert.deepEqual(serviceMonitor.spec.namespaceSelector, { matchNames: ["ttg"] });
  const service = sm.find((o) => o.kind === "Service" && o.metadata.name === "ttg-exporter")!;
  assert.ok(selects(serviceMonitor.spec.selector, service.metadata.labels));
  assert.ok(!sm.some((o) => o.kind === "PodMonitor"));

  const pm = setup({
    backend: "rabbitmq",
    keda: { enabled: true },
    observability: { prometheusOperator: "podmonitor", monitorLabels, scrapeIntervalSeconds: 15 },
  }).data;
  const podMonitor = pm.find((o) => o.kind === "PodMonitor")!;
  assert.deepEqual(podMonitor.spec.podMetricsEndpoints, [
    { port: "metrics", path: "/metrics", interval: "15s" },
  ]);
  const selected = pm.filter((o) => o.spec?.template || o.spec?.jobTargetRef).filter((o) =>
    selects(
      podMonitor.spec.selector,
      (o.spec.template ?? o.spec.jobTargetRef.template).metadata.labels,
    )
  ).map((o) => `${o.kind}/${o.metadata.name}`);
  assert.deepEqual(selected, ["Deployment/ttg-exporter", "ScaledJob/ttg-worker"]);
  for (const o of [...sm, ...pm].filter((o) => o.apiVersion === "monitoring.coreos.com/v1")) {
    assert.equal(
      o.metadata.labels.release,
      "kube-prometheus-stack",
      `${o.kind} for the operator's selector`,
    );
  }
  assert.ok(pm.some((o) => o.kind === "PrometheusRule"));
  assert.ok(!setup({}).data.some((o) => o.apiVersion === "monitoring.coreos.com/v1"));
});

Deno.test("monitors are checked: their own fields, and that they select a generated object with the port", () => {
  const { objects } = setup({ observability: { prometheusOperator: "servicemonitor" } });
  const sm = objects.find((o) => o.kind === "ServiceMonitor") as ServiceMonitor;
  sm.validate();
  const broken = new ServiceMonitor({
    metadata: { ...sm.metadata, name: "Bad_Name" },
    spec: {
      selector: {},
      namespaceSelector: { matchNames: [] },
      endpoints: [{ port: "9464", path: "metrics", interval: "30 seconds" }],
    },
  });
  assert.throws(() => broken.validate(), (e: Error) => {
    for (
      const part of [
        /metadata.name "Bad_Name"/,
        /spec.selector must not be empty/,
        /matchNames must not be empty/,
        /port "9464" is not a port name/,
        /path "metrics" must start with \//,
        /interval "30 seconds" is not a duration/,
      ]
    ) assert.match(e.message, part);
    return true;
  });
  const wrongPort = new ServiceMonitor({
    metadata: sm.metadata,
    spec: { ...sm.spec, endpoints: [{ ...sm.spec.endpoints[0]!, port: "http" }] },
  });
  const others = objects.filter((o) => o !== sm);
  assert.deepEqual(monitorReferenceProblems([...others, wrongPort]), [{
    field: 'ServiceMonitor "ttg-exporter"',
    message: 'selects no generated Service with a port named "http"',
  }]);
  const pods = setup({ observability: { prometheusOperator: "podmonitor" } }).objects;
  const pm = pods.find((o) => o.kind === "PodMonitor") as PodMonitor;
  const elsewhere = new PodMonitor({
    metadata: pm.metadata,
    spec: { ...pm.spec, namespaceSelector: { matchNames: ["other"] } },
  });
  assert.deepEqual(
    monitorReferenceProblems([...pods.filter((o) => o !== pm), elsewhere]).map((p) => p.message),
    ['selects no generated pod with a port named "metrics"'],
  );
  const rule = pods.find((o) => o.kind === "PrometheusRule") as PrometheusRule;
  rule.validate();
  const badRule = new PrometheusRule({
    metadata: rule.metadata,
    spec: {
      groups: [
        {
          name: "g",
          rules: [{
            alert: "Bad-Name",
            expr: " ",
            for: "5 min",
            labels: {},
            annotations: { "a-b": "x" },
          }],
        },
        { name: "g", rules: [] },
      ],
    },
  });
  assert.throws(() => badRule.validate(), (e: Error) => {
    for (
      const part of [
        /alert "Bad-Name" is not a valid name/,
        /expr must not be empty/,
        /for "5 min" is not a duration/,
        /annotations.a-b is not a valid label name/,
        /groups\[1\].name "g" must be set and unique/,
        /groups\[1\].rules must not be empty/,
      ]
    ) assert.match(e.message, part);
    return true;
  });
});
