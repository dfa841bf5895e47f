// deno-lint-ignore-file no-explicit-any -- tests walk the generated objects as plain JSON
/**
 * The Grafana dashboard (deploy/dashboard.ts): its golden file deploy/grafana/ttg-dashboard.json
 * (rewritten by `UPDATE_GOLDEN=1 deno test -A tests/dashboard_test.ts`), the ConfigMap for
 * Grafana's sidecar, and its panels, variables and queries. That each query is valid PromQL is
 * checked with promtool in tests/alerts_test.ts.
 */
import "../tasks/node_warnings.ts";
import assert from "node:assert/strict";
import type { DeploymentProps } from "../deploy/config.ts";
import {
  DASHBOARD_FILE,
  dashboardJson,
  GRAFANA_DASHBOARD_LABEL,
  ttgDashboard,
} from "../deploy/dashboard.ts";
import { EXPORTER_METRICS, WORKER_METRICS } from "../deploy/metrics.ts";
import { plain, synth } from "../deploy/synth.ts";
import { assertGolden } from "./helpers.ts";

function setup(props: DeploymentProps = {}) {
  const synthesized = synth(props, { randomSecret: () => "dashboard-test-secret-01" });
  return synthesized.manifests.map((m) => plain(m.object)) as Record<string, any>[];
}

const GRAFANA = new URL("../deploy/grafana/", import.meta.url);

Deno.test("deploy/grafana/ttg-dashboard.json is the generated dashboard (UPDATE_GOLDEN=1 rewrites it)", async () => {
  await assertGolden(new URL(DASHBOARD_FILE, GRAFANA), dashboardJson());
});

Deno.test("the dashboard ConfigMap holds that JSON for Grafana's sidecar, in the dashboard namespace", async () => {
  const json = await Deno.readTextFile(new URL(DASHBOARD_FILE, GRAFANA));
  for (const props of [{}, { backend: "rabbitmq" as const, keda: { enabled: true } }]) {
    for (const dashboardNamespace of [undefined, "monitoring"]) {
      const data = setup({ ...props, observability: { dashboardNamespace } });
      const maps = data.filter((o) =>
        o.kind === "ConfigMap" && o.metadata.labels.grafana_dashboard
      );
      assert.equal(maps.length, 1);
      assert.equal(
        maps[0]!.metadata.labels.grafana_dashboard,
        GRAFANA_DASHBOARD_LABEL.grafana_dashboard,
      );
      assert.equal(maps[0]!.metadata.namespace, dashboardNamespace ?? "ttg");
      assert.deepEqual(maps[0]!.data, { [DASHBOARD_FILE]: json });
    }
  }
  assert.ok(
    !setup({ observability: { grafanaDashboard: false } }).some((o) => o.kind === "ConfigMap"),
  );
});

Deno.test("the dashboard: the panels the issue asks for, unique ids, every query on the metric contract and the variables", () => {
  const dashboard = ttgDashboard() as any;
  const panels = dashboard.panels as any[];
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length);
  const titles = panels.map((p) => p.title);
  for (
    const title of [
      "Queue depth",
      "Active consumers",
      "In flight",
      "Publish, ack and nack rates",
      "Retries and dead letters",
      "Chunk run time",
      "Throughput per worker",
      "Oldest ready chunk, per priority band",
      "Worker states",
    ]
  ) assert.ok(titles.includes(title), title);
  const run = panels.find((p) => p.title === "Chunk run time");
  assert.deepEqual(run.targets.map((t: any) => t.legendFormat), ["p50", "p95", "p99"]);
  assert.deepEqual(dashboard.templating.list.map((v: any) => v.name), [
    "datasource",
    "namespace",
    "job_id",
  ]);
  for (const panel of panels.filter((p) => p.type !== "row")) {
    assert.deepEqual(panel.datasource, { type: "prometheus", uid: "${datasource}" }, panel.title);
    assert.ok(panel.gridPos.x + panel.gridPos.w <= 24, panel.title);
    for (const target of panel.targets) {
      assert.match(target.expr, /job_id=~"\$job_id"/, `${panel.title} filters by job`);
      for (const [metric] of target.expr.matchAll(/\bttg_[a-z_]+/g)) {
        const base = metric.replace(/_bucket$/, "");
        assert.ok(
          [...WORKER_METRICS, ...EXPORTER_METRICS].includes(base),
          `${panel.title}: ${metric}`,
        );
      }
    }
  }
});
