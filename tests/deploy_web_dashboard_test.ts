// deno-lint-ignore-file no-explicit-any -- tests walk the generated objects as plain JSON
/**
 * deploy/: the optional web dashboard (`dashboard.enabled`): a Deployment of one `ttg dashboard`
 * pod hardened like the workers, a ClusterIP Service on its named port, its token from a Secret
 * (named by the user, or generated with a random token), and the settings its pod resolves to.
 * The whole variant's YAML is a golden file of tests/deploy_test.ts (`redis-dashboard`); here the
 * dashboard's own objects are compared with it and checked one by one.
 */
import "../tasks/node_warnings.ts";
import assert from "node:assert/strict";
import { type DeploymentProps, resolveConfig } from "../deploy/config.ts";
import { LABEL } from "../deploy/labels.ts";
import { objectProblems, plain, synth, toYaml } from "../deploy/synth.ts";
import { resolveDashboardSettings, resolveSettings } from "../workers/settings.ts";

const SECRET = "golden-not-a-real-secret-0001";

function setup(props: DeploymentProps) {
  const { manifests, config } = synth(props, { randomSecret: () => SECRET });
  const data = manifests.map((m) => plain(m.object) as Record<string, any>);
  const find = (kind: string, name: string): any =>
    data.find((o) => o.kind === kind && o.metadata.name === name);
  return { manifests, config, data, find };
}

const ENABLED: DeploymentProps = {
  backend: "redis",
  dashboard: { enabled: true, allowActions: true },
};

Deno.test("the dashboard's objects are those of the golden file redis-dashboard.yaml", async () => {
  const { manifests } = setup(ENABLED);
  const ours = manifests.filter((m) =>
    m.object.metadata?.labels?.[LABEL.component] === "dashboard"
  );
  assert.deepEqual(ours.map((m) => `${m.stage} ${m.object.kind}/${m.object.metadata?.name}`), [
    "infra Secret/ttg-dashboard-token",
    "infra Deployment/ttg-dashboard",
    "infra Service/ttg-dashboard",
  ]);
  const golden = await Deno.readTextFile(new URL("./golden/redis-dashboard.yaml", import.meta.url));
  for (const m of ours) {
    const doc = toYaml([m.object]).split("---\n")[1]!;
    assert.ok(golden.includes(`---\n${doc}`), `${m.object.kind} differs from the golden file`);
  }
});

Deno.test("the dashboard is off by default; static mode refuses it; bad values are problems naming their field", () => {
  assert.ok(!setup({}).data.some((o) => o.metadata.labels[LABEL.component] === "dashboard"));
  const field = (props: DeploymentProps) =>
    resolveConfig(props, { randomSecret: () => SECRET }).problems.map((p) => p.field);
  assert.deepEqual(field({ mode: "static", dashboard: { enabled: true } }), ["dashboard.enabled"]);
  assert.deepEqual(field({ dashboard: { port: 80 } }), ["dashboard.port"]);
  assert.deepEqual(field({ dashboard: { tokenSecretName: "Not_A_Name" } }), [
    "dashboard.tokenSecretName",
  ]);
  assert.deepEqual(field({ dashboard: { tokenSecretKey: "k" } }), ["dashboard.tokenSecretKey"]);
  assert.deepEqual(field({ dashboard: { enable: true } as DeploymentProps["dashboard"] }), [
    "dashboard.enable",
  ]);
});

Deno.test("the dashboard pod is hardened like the workers' and runs ttg dashboard on every address with its port and actions", () => {
  const { find } = setup(ENABLED);
  const deployment = find("Deployment", "ttg-dashboard");
  const worker = find("Job", "ttg-worker");
  const pod = deployment.spec.template.spec;
  const workerPod = worker.spec.template.spec;
  for (const key of ["securityContext", "automountServiceAccountToken", "enableServiceLinks"]) {
    assert.deepEqual(pod[key], workerPod[key], key);
  }
  const [c] = pod.containers;
  assert.deepEqual(c.securityContext, workerPod.containers[0].securityContext);
  assert.deepEqual(c.args, ["dashboard", "--host", "0.0.0.0", "--port", "8080", "--allow-actions"]);
  assert.equal(c.command, undefined, "the image's entrypoint (/ttg) runs");
  assert.ok(c.resources.requests.cpu && c.resources.limits.memory);
  assert.deepEqual(c.ports, [{ containerPort: 8080, name: "http", protocol: "TCP" }]);
  assert.equal(c.readinessProbe.httpGet.path, "/readyz");
  assert.equal(c.livenessProbe.httpGet.path, "/healthz");
  assert.equal(deployment.spec.replicas, 1);
  const service = find("Service", "ttg-dashboard");
  assert.equal(service.spec.type, "ClusterIP");
  assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
  assert.deepEqual(service.spec.ports[0], {
    name: "http",
    port: 8080,
    protocol: "TCP",
    targetPort: "http",
  });
  const other = setup({ dashboard: { enabled: true, port: 9000 } }).find(
    "Deployment",
    "ttg-dashboard",
  );
  assert.deepEqual(other.spec.template.spec.containers[0].args.slice(-2), ["--port", "9000"]);
});

Deno.test("the token comes only from a Secret: generated with a random token, or the one the user names", () => {
  const generated = setup(ENABLED);
  const secret = generated.find("Secret", "ttg-dashboard-token");
  assert.equal(secret.stringData.token, SECRET);
  const env = generated.find("Deployment", "ttg-dashboard").spec.template.spec.containers[0].env;
  const token = env.find((e: any) => e.name === "TTG_DASHBOARD_TOKEN");
  assert.deepEqual(token.valueFrom, {
    secretKeyRef: { name: "ttg-dashboard-token", key: "token" },
  });
  for (const o of generated.data.filter((o) => o.kind !== "Secret")) {
    assert.ok(!JSON.stringify(o).includes(SECRET), `${o.kind} ${o.metadata.name} holds a secret`);
  }
  const random = synth({ dashboard: { enabled: true } }).config.dashboard.token.generated;
  assert.match(random!, /^[A-Za-z0-9_-]{32}$/);

  const named = setup({
    dashboard: { enabled: true, tokenSecretName: "my-dashboard", tokenSecretKey: "t" },
  });
  assert.equal(named.find("Secret", "ttg-dashboard-token"), undefined, "no Secret generated");
  const ref = named.find("Deployment", "ttg-dashboard").spec.template.spec.containers[0].env
    .find((e: any) => e.name === "TTG_DASHBOARD_TOKEN").valueFrom.secretKeyRef;
  assert.deepEqual(ref, { name: "my-dashboard", key: "t" });
  const problems = objectProblems(named.manifests.map((m) => m.object));
  assert.match(problems.map((p) => p.message).join("\n"), /Secret "my-dashboard" key "t"/);
});

Deno.test("the broker's NetworkPolicy admits the dashboard pod, which reaches the broker by the same settings as the workers", () => {
  const { find } = setup(ENABLED);
  const policy = find("NetworkPolicy", "ttg-broker-ingress");
  const labels = find("Deployment", "ttg-dashboard").spec.template.metadata.labels;
  for (const from of policy.spec.ingress[0].from) {
    const wanted = from.podSelector?.matchLabels ?? {};
    assert.ok(Object.entries(wanted).every(([k, v]) => labels[k] === v));
  }
  const c = find("Deployment", "ttg-dashboard").spec.template.spec.containers[0];
  const env: Record<string, string> = {};
  for (const e of c.env) {
    env[e.name] = e.value ?? (e.valueFrom?.secretKeyRef?.key === "token" ? SECRET : "pw");
  }
  const settings = resolveSettings({}, (k) => env[k]);
  assert.equal(settings.backend, "redis");
  assert.match(settings.brokerUrl, /^redis:\/\/:pw@ttg-redis\.ttg\.svc:6379$/);
  const flags = { host: c.args[2], port: c.args[4], allowActions: true };
  assert.deepEqual(resolveDashboardSettings(flags, (k) => env[k]), {
    host: "0.0.0.0",
    port: 8080,
    token: SECRET,
    allowActions: true,
  });
});
