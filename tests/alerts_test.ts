/**
 * The generated alert rules: their shape (severity, summary, description, runbook; thresholds
 * from the config), the golden rules file tests/golden/ttg-rules.yaml, and the rules under the
 * real `promtool`: every rules file of every variant passes `promtool check rules` (so does
 * each dashboard query), and each alert's scenarios (tests/alert_scenarios.ts) pass
 * `promtool test rules`: it fires when it should and stays silent when it should not, and a
 * deliberately wrong expectation makes promtool fail.
 *
 * Without promtool on PATH these tests are ignored with the reason in their names; with
 * `TTG_TEST_REQUIRE` naming promtool (CI) they fail instead. Install it with `apt-get install -y prometheus`.
 */
import { required } from "./targets.ts";
import "../tasks/node_warnings.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ALERT_NAMES, alertGroups, type AlertingRule, rulesFile } from "../deploy/alerts.ts";
import { type DeploymentProps, resolveConfig } from "../deploy/config.ts";
import type { Dataquery as PrometheusQuery } from "@grafana/grafana-foundation-sdk/prometheus";
import { ttgDashboard } from "../deploy/dashboard.ts";
import { yamlText } from "../deploy/yaml.ts";
import { EXPORTER_METRICS, WORKER_METRICS } from "../deploy/metrics.ts";
import { plain, synth } from "../deploy/synth.ts";
import { ALERT_CASES, JOB, type Scenario } from "./alert_scenarios.ts";
import { assertGolden } from "./helpers.ts";

function promtoolVersion(): string | undefined {
  try {
    const out = new Deno.Command("promtool", {
      args: ["--version"],
      stdout: "piped",
      stderr: "piped",
    })
      .outputSync();
    return out.success ? new TextDecoder().decode(out.stdout).split("\n")[0] : undefined;
  } catch {
    return undefined;
  }
}

const PROMTOOL = promtoolVersion();
const REQUIRED = required("promtool");
const MISSING = "promtool is not on PATH (install it with `apt-get install -y prometheus`)";

/** A test that needs promtool: ignored without it, unless the run requires it (then it fails). */
function promtoolTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name: PROMTOOL || REQUIRED ? name : `${name} (ignored: ${MISSING})`,
    ignore: !PROMTOOL && !REQUIRED,
    fn: async () => {
      if (!PROMTOOL) throw new Error(`this run requires promtool, but ${MISSING}`);
      await fn();
    },
  });
}

async function promtool(args: readonly string[], cwd: string) {
  const out = await new Deno.Command("promtool", {
    args: [...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, output: decode(out.stdout) + decode(out.stderr) };
}

/** A temporary directory, removed on dispose. */
async function tempDir() {
  const path = await Deno.makeTempDir({ prefix: "ttg-promtool-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

/** The annotations Prometheus renders for an alert with these labels. */
function rendered(rule: AlertingRule, labels: Readonly<Record<string, string>>) {
  return Object.fromEntries(
    Object.entries(rule.annotations).map(([key, text]) => [
      key,
      text.replaceAll(/\{\{ \$labels\.([a-z_]+) \}\}/g, (_, name: string) => labels[name] ?? ""),
    ]),
  );
}

/** One `tests:` entry of a promtool test file: the scenario's series and expectations. */
function unitTest(rule: AlertingRule, scenario: Scenario, fires = scenario.fires) {
  return {
    name: `${rule.alert}: ${scenario.name}`,
    interval: "1m",
    input_series: Object.entries(scenario.series).map(([series, values]) => ({ series, values })),
    alert_rule_test: [{
      eval_time: scenario.evalTime,
      alertname: rule.alert,
      exp_alerts: fires.map((labels) => ({
        exp_labels: { ...labels, ...rule.labels },
        exp_annotations: rendered(rule, labels),
      })),
    }],
  };
}

const VARIANTS: readonly DeploymentProps[] = [
  {},
  { backend: "rabbitmq", namespace: "sweeps", name: "nightly" },
  { observability: { exporter: { enabled: false } } },
  { keda: { enabled: true }, observability: { prometheusOperator: "podmonitor" } },
  {
    observability: {
      alerts: {
        queueBackupReadyChunks: 0,
        deadLetterGrowthPerMinute: 0.5,
        reclaimRatePerSecond: 2.25,
        starvationSeconds: 60,
        runbookUrl: "https://runbooks.example.com/ttg",
      },
    },
  },
];

promtoolTest("every generated rules file passes promtool check rules", async () => {
  await using dir = await tempDir();
  for (const [i, props] of VARIANTS.entries()) {
    const { config, problems } = resolveConfig(props);
    assert.deepEqual(problems, []);
    const file = join(dir.path, `rules-${i}.yaml`);
    await Deno.writeTextFile(file, rulesFile(config));
    const { code, output } = await promtool(["check", "rules", file], dir.path);
    assert.equal(code, 0, `${JSON.stringify(props)}\n${output}`);
    const count = alertGroups(config).flatMap((g) => g.rules).length;
    assert.match(output, new RegExp(`SUCCESS: ${count} rules found`));
  }
});

promtoolTest(
  "every dashboard query is valid PromQL (promtool check rules, as recording rules)",
  async () => {
    await using dir = await tempDir();
    const exprs = (ttgDashboard().panels ?? []).flatMap((panel) =>
      ("targets" in panel ? panel.targets ?? [] : []).map((t) => (t as PrometheusQuery).expr)
    );
    assert.ok(exprs.length > 20, `${exprs.length} queries`);
    // Grafana's variables, as Grafana substitutes them.
    const promql = exprs.map((e) =>
      e.replaceAll("$__rate_interval", "1m").replaceAll(/\$[a-z_]+/g, ".*")
    );
    const file = join(dir.path, "dashboard-queries.yaml");
    await Deno.writeTextFile(
      file,
      yamlText({
        groups: [{
          name: "dashboard",
          rules: promql.map((expr, i) => ({ record: `ttg:dashboard_query_${i}`, expr })),
        }],
      }),
    );
    const { code, output } = await promtool(["check", "rules", file], dir.path);
    assert.equal(code, 0, output);
  },
);

Deno.test("every alert has a severity, a summary, a description and a runbook; templates only read $labels", () => {
  const { config } = resolveConfig({
    observability: { alerts: { runbookUrl: "https://runbooks.example.com/ttg" } },
  });
  const rules = alertGroups(config).flatMap((g) => g.rules);
  assert.deepEqual(rules.map((r) => r.alert).sort(), [...ALERT_NAMES].sort());
  for (const rule of rules) {
    assert.match(rule.labels.severity ?? "", /^(warning|critical)$/, rule.alert);
    for (const key of ["summary", "description", "runbook"]) {
      assert.ok((rule.annotations[key] ?? "").length > 10, `${rule.alert} ${key}`);
    }
    assert.equal(
      rule.annotations.runbook_url,
      `https://runbooks.example.com/ttg#${rule.alert.toLowerCase()}`,
    );
    for (const text of Object.values(rule.annotations)) {
      for (const [template] of text.matchAll(/\{\{[^}]*\}\}/g)) {
        assert.match(template, /^\{\{ \$labels\.[a-z_]+ \}\}$/, `${rule.alert}: ${template}`);
      }
    }
    // Only metrics of the contract (deploy/metrics.ts) and kube-state-metrics' restarts.
    for (const [metric] of rule.expr.matchAll(/\b(ttg|kube)_[a-z_]+/g)) {
      assert.ok(
        [...WORKER_METRICS, ...EXPORTER_METRICS, "kube_pod_container_status_restarts_total"]
          .includes(metric),
        `${rule.alert} reads ${metric}`,
      );
    }
  }
});

Deno.test("thresholds come from the config; without the exporter only the workers' alerts remain; static mode has none", () => {
  const { config } = resolveConfig({
    namespace: "sweeps",
    observability: {
      alerts: { queueBackupReadyChunks: 7, queueBackupMinutes: 42, reclaimRatePerSecond: 2.5 },
    },
  });
  const rule = (name: string) =>
    alertGroups(config).flatMap((g) => g.rules).find((r) => r.alert === name)!;
  assert.match(rule("TTGQueueBackingUp").expr, /^ttg_queue_ready > 7\n.*offset 42m\n/);
  assert.match(rule("TTGLeaseReclaimsSpiking").expr, /> 2\.5$/);
  assert.match(
    rule("TTGWorkerRestarts").expr,
    /namespace="sweeps", pod=~"\(ttg-worker\|ttg-exporter\)-\.\+"/,
  );
  const noExporter = resolveConfig({ observability: { exporter: { enabled: false } } }).config;
  assert.deepEqual(alertGroups(noExporter).map((g) => [g.name, g.rules.map((r) => r.alert)]), [
    ["ttg.workers", ["TTGWorkerRestarts", "TTGLeaseReclaimsSpiking"]],
  ]);
  assert.deepEqual(alertGroups(resolveConfig({ mode: "static" }).config), []);
  const withRules = synth({ observability: { prometheusOperator: "podmonitor" } });
  const prometheusRule = withRules.manifests.map((m) => plain(m.object)).find((o) =>
    o.kind === "PrometheusRule"
  ) as { spec: { groups: unknown } };
  assert.deepEqual(prometheusRule.spec.groups, alertGroups(withRules.config));
});

Deno.test("tests/golden/ttg-rules.yaml is the rules file of the default config (UPDATE_GOLDEN=1 rewrites it)", async () => {
  await assertGolden(
    new URL("./golden/ttg-rules.yaml", import.meta.url),
    rulesFile(resolveConfig({}).config),
  );
});

const { config } = resolveConfig({});
const RULES = new Map(alertGroups(config).flatMap((g) => g.rules).map((r) => [r.alert, r]));

Deno.test("every alert has scenarios that fire and scenarios that stay silent", () => {
  assert.deepEqual(ALERT_CASES.map((c) => c.alert).sort(), [...ALERT_NAMES].sort());
  for (const { alert, scenarios } of ALERT_CASES) {
    assert.ok(scenarios.some((s) => s.fires.length > 0), `${alert} fires somewhere`);
    assert.ok(scenarios.some((s) => s.fires.length === 0), `${alert} stays silent somewhere`);
  }
});

for (const { alert, scenarios } of ALERT_CASES) {
  promtoolTest(
    `${alert}: promtool test rules passes each scenario, and fails each wrong expectation`,
    async () => {
      await using dir = await tempDir();
      const rule = RULES.get(alert)!;
      await Deno.writeTextFile(join(dir.path, "rules.yaml"), rulesFile(config));
      const testFile = async (name: string, tests: readonly unknown[]) => {
        await Deno.writeTextFile(
          join(dir.path, name),
          yamlText({ rule_files: ["rules.yaml"], evaluation_interval: "1m", tests }),
        );
        return await promtool(["test", "rules", name], dir.path);
      };
      const right = await testFile("right.yaml", scenarios.map((s) => unitTest(rule, s)));
      assert.equal(right.code, 0, right.output);
      for (const [i, scenario] of scenarios.entries()) {
        // A firing case expected silent, a silent one expected to fire for the job.
        const wrongFires = scenario.fires.length > 0 ? [] : [JOB];
        const wrong = await testFile(`wrong-${i}.yaml`, [unitTest(rule, scenario, wrongFires)]);
        assert.notEqual(
          wrong.code,
          0,
          `${scenario.name}: a wrong expectation passed\n${wrong.output}`,
        );
        assert.match(wrong.output, /FAILED:[\s\S]*exp:[\s\S]*got:/, "it failed on the alerts");
      }
    },
  );
}

Deno.test(`promtool: ${PROMTOOL ?? `missing (${REQUIRED ? "required" : "tests ignored"})`}`, () => {
  assert.ok(PROMTOOL || !REQUIRED, MISSING);
});
