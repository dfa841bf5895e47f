/**
 * The Grafana dashboard of TTG, built with Grafana's typed builders
 * (`@grafana/grafana-foundation-sdk`, generated from Grafana's own schema), so a panel or
 * query of the wrong shape does not type-check. It reads the metrics the workers and the
 * exporter serve, filtered by the `namespace` and `job_id` variables, from the Prometheus
 * data source picked in the `datasource` variable. It does not depend on the deployment's
 * config, so one file serves every deployment: `deploy/grafana/ttg-dashboard.json` (kept equal
 * by a golden test; `deno task manifests --dashboard` prints it) and a ConfigMap labelled
 * `grafana_dashboard: "1"` for Grafana's dashboard sidecar.
 *
 * @module
 */
import {
  DashboardBuilder,
  DashboardCursorSync,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  RowBuilder,
  VariableRefresh,
  VariableSort,
} from "@grafana/grafana-foundation-sdk/dashboard";
import type { Dashboard } from "@grafana/grafana-foundation-sdk/dashboard";
import {
  LegendDisplayMode,
  LegendPlacement,
  StackingConfigBuilder,
  StackingMode,
  VizLegendOptionsBuilder,
} from "@grafana/grafana-foundation-sdk/common";
import { DataqueryBuilder } from "@grafana/grafana-foundation-sdk/prometheus";
import { PanelBuilder as StatPanelBuilder } from "@grafana/grafana-foundation-sdk/stat";
import { PanelBuilder as TimeseriesPanelBuilder } from "@grafana/grafana-foundation-sdk/timeseries";
import { ConfigMap } from "kubernetes-models/v1";
import type { DeploymentConfig } from "./config.ts";
import { labels, names } from "./labels.ts";
import { sortKeys } from "./yaml.ts";

/** The dashboard's uid (its address in Grafana: /d/ttg-overview). */
export const DASHBOARD_UID = "ttg-overview";
/** File name of the dashboard, in the ConfigMap and in deploy/grafana/. */
export const DASHBOARD_FILE = "ttg-dashboard.json";
/** The label Grafana's dashboard sidecar looks for (kube-prometheus-stack's default). */
export const GRAFANA_DASHBOARD_LABEL = { grafana_dashboard: "1" } as const;

/** The Prometheus data source every panel and variable reads. */
const DATASOURCE = { type: "prometheus", uid: "${datasource}" };
/** The selector of the chosen jobs (variables `namespace` and `job_id`). */
const JOBS = 'namespace=~"$namespace", job_id=~"$job_id"';

/** One PromQL query and its legend. */
interface Query {
  readonly expr: string;
  readonly legend: string;
}

interface TimeseriesOptions {
  readonly title: string;
  readonly description: string;
  readonly unit: string;
  readonly queries: readonly Query[];
  /** Stack the series (parts of one whole, such as worker states). @default false */
  readonly stack?: boolean;
  /** Width in grid columns (24 across). @default 12 */
  readonly span?: number;
}

function targets(queries: readonly Query[]): DataqueryBuilder[] {
  return queries.map((q, i) =>
    new DataqueryBuilder()
      .datasource(DATASOURCE)
      .expr(q.expr)
      .legendFormat(q.legend)
      .refId(String.fromCharCode(65 + i))
  );
}

function timeseries(options: TimeseriesOptions): TimeseriesPanelBuilder {
  const panel = new TimeseriesPanelBuilder()
    .title(options.title)
    .description(options.description)
    .datasource(DATASOURCE)
    .unit(options.unit)
    .min(0)
    .span(options.span ?? 12)
    .height(8)
    .fillOpacity(options.stack ? 30 : 10)
    .legend(
      new VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(LegendDisplayMode.List)
        .placement(LegendPlacement.Bottom),
    )
    .targets(targets(options.queries));
  return options.stack
    ? panel.stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
    : panel;
}

function stat(title: string, description: string, unit: string, query: Query): StatPanelBuilder {
  return new StatPanelBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .unit(unit)
    .span(6)
    .height(4)
    .targets(targets([query]));
}

/** `sum by (job_id) (<expr>)`, the usual aggregation of a job's series. */
function byJob(expr: string): string {
  return `sum by (job_id) (${expr})`;
}

/** The rate of a worker counter, summed per job. */
function chunkRate(counter: string): string {
  return byJob(`rate(${counter}{${JOBS}}[$__rate_interval])`);
}

/** A quantile of a histogram over the chosen jobs. */
function quantile(q: number, histogram: string, by: readonly string[] = []): string {
  return `histogram_quantile(${q}, sum by (${
    ["le", ...by].join(", ")
  }) (rate(${histogram}_bucket{${JOBS}}[$__rate_interval])))`;
}

function queuePanels(): (StatPanelBuilder | TimeseriesPanelBuilder)[] {
  return [
    stat(
      "Chunks completed",
      "Completed chunks of the chosen jobs out of all their chunks.",
      "percentunit",
      {
        expr: `sum(ttg_queue_completed{${JOBS}}) / sum(ttg_job_chunks{${JOBS}})`,
        legend: "completed",
      },
    ),
    stat("Ready", "Chunks waiting to be pulled.", "short", {
      expr: `sum(ttg_queue_ready{${JOBS}})`,
      legend: "ready",
    }),
    stat("In flight", "Chunks pulled and not yet acked.", "short", {
      expr: `sum(ttg_queue_in_flight{${JOBS}})`,
      legend: "in flight",
    }),
    stat("Dead letters", "Chunks dead-lettered (ttg dlq list).", "short", {
      expr: `sum(ttg_queue_dead_lettered{${JOBS}})`,
      legend: "dead letters",
    }),
    timeseries({
      title: "Queue depth",
      description: "Ready and delayed (waiting for a retry) chunks per job, from the exporter.",
      unit: "short",
      queries: [
        { expr: byJob(`ttg_queue_ready{${JOBS}}`), legend: "{{job_id}} ready" },
        { expr: byJob(`ttg_queue_delayed{${JOBS}}`), legend: "{{job_id}} delayed" },
      ],
    }),
    timeseries({
      title: "In flight",
      description:
        "Chunks pulled and not yet acked: per job from the exporter, per worker from the workers.",
      unit: "short",
      queries: [
        { expr: byJob(`ttg_queue_in_flight{${JOBS}}`), legend: "{{job_id}}" },
        {
          expr: `sum by (worker) (ttg_chunks_in_flight{${JOBS}})`,
          legend: "{{worker}} (worker)",
        },
      ],
    }),
    timeseries({
      title: "Active consumers",
      description: "Consumers of each job's queue, as the broker counts them.",
      unit: "short",
      span: 8,
      queries: [{ expr: byJob(`ttg_queue_consumers{${JOBS}}`), legend: "{{job_id}}" }],
    }),
    timeseries({
      title: "Oldest ready chunk, per priority band",
      description:
        "How long the oldest ready chunk of each priority (0 lowest, 10 highest) has waited.",
      unit: "s",
      span: 8,
      queries: [{
        expr: `max by (priority) (ttg_queue_oldest_ready_age_seconds{${JOBS}})`,
        legend: "priority {{priority}}",
      }],
    }),
    timeseries({
      title: "Worker states",
      description:
        "Workers of the broker's fleet registry by state; lost: not seen for several heartbeats.",
      unit: "short",
      span: 8,
      stack: true,
      queries: [{ expr: `sum by (state) (ttg_workers{${JOBS}})`, legend: "{{state}}" }],
    }),
  ];
}

function throughputPanels(): TimeseriesPanelBuilder[] {
  return [
    timeseries({
      title: "Publish, ack and nack rates",
      description:
        "Chunks published (the job's chunk count rising), acked (completed) and nacked (failed, timed out) per second.",
      unit: "ops",
      queries: [
        {
          expr: byJob(`deriv(ttg_job_chunks{${JOBS}}[$__rate_interval])`),
          legend: "{{job_id}} published",
        },
        { expr: chunkRate("ttg_chunks_completed_total"), legend: "{{job_id}} acked" },
        { expr: chunkRate("ttg_chunks_failed_total"), legend: "{{job_id}} failed" },
        { expr: chunkRate("ttg_chunks_timed_out_total"), legend: "{{job_id}} timed out" },
      ],
    }),
    timeseries({
      title: "Retries and dead letters",
      description:
        "Chunks retried, dead-lettered, reclaimed from an expired lease and released by a stopping worker, per second; duplicate and zombie results discarded.",
      unit: "ops",
      queries: [
        { expr: chunkRate("ttg_chunks_retried_total"), legend: "{{job_id}} retried" },
        { expr: chunkRate("ttg_chunks_dead_lettered_total"), legend: "{{job_id}} dead-lettered" },
        { expr: chunkRate("ttg_chunks_reclaimed_total"), legend: "{{job_id}} reclaimed" },
        { expr: chunkRate("ttg_chunks_released_total"), legend: "{{job_id}} released" },
        { expr: chunkRate("ttg_chunks_duplicate_total"), legend: "{{job_id}} duplicate" },
        { expr: chunkRate("ttg_chunks_zombie_total"), legend: "{{job_id}} zombie" },
      ],
    }),
    timeseries({
      title: "Throughput per worker",
      description: "Chunks each worker completes per second.",
      unit: "ops",
      queries: [{
        expr: `sum by (worker) (rate(ttg_chunks_completed_total{${JOBS}}[$__rate_interval]))`,
        legend: "{{worker}}",
      }],
    }),
    timeseries({
      title: "Busy handler threads",
      description: "Handler threads running a chunk, per worker.",
      unit: "short",
      queries: [{
        expr: `sum by (worker) (ttg_handler_threads_busy{${JOBS}})`,
        legend: "{{worker}}",
      }],
    }),
  ];
}

function latencyPanels(): TimeseriesPanelBuilder[] {
  return [
    timeseries({
      title: "Chunk run time",
      description: "p50, p95 and p99 of the time a handler takes for one chunk.",
      unit: "s",
      queries: [0.5, 0.95, 0.99].map((q) => ({
        expr: quantile(q, "ttg_chunk_duration_seconds"),
        legend: `p${Math.round(q * 100)}`,
      })),
    }),
    timeseries({
      title: "Broker operations, p95",
      description: "p95 of pull, ack, nack and extend (lease renewal) calls to the broker.",
      unit: "s",
      queries: [{
        expr: quantile(0.95, "ttg_broker_operation_duration_seconds", ["operation"]),
        legend: "{{operation}}",
      }],
    }),
  ];
}

/**
 * The dashboard: variables `datasource`, `namespace` and `job_id`; rows Queue, Throughput and
 * Latency.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ttgDashboard } from "./dashboard.ts";
 * const dashboard = ttgDashboard();
 * assert.equal(dashboard.uid, "ttg-overview");
 * ```
 */
export function ttgDashboard(): Dashboard {
  const variable = (name: string, label: string, query: string) =>
    new QueryVariableBuilder(name)
      .label(label)
      .datasource(DATASOURCE)
      .query(query)
      .definition(query)
      .refresh(VariableRefresh.OnTimeRangeChanged)
      .sort(VariableSort.AlphabeticalAsc)
      .multi(true)
      .includeAll(true)
      .allValue(".*");
  const builder = new DashboardBuilder("TTG")
    .uid(DASHBOARD_UID)
    .description(
      "TTG's queues, workers and chunk outcomes, from the workers' and the exporter's metrics.",
    )
    .tags(["ttg"])
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .refresh("30s")
    .time({ from: "now-1h", to: "now" })
    .withVariable(
      new DatasourceVariableBuilder("datasource").label("Data source").type("prometheus"),
    )
    .withVariable(variable("namespace", "Namespace", "label_values(ttg_job_info, namespace)"))
    .withVariable(
      variable("job_id", "Job", 'label_values(ttg_job_info{namespace=~"$namespace"}, job_id)'),
    );
  const rows: [string, (StatPanelBuilder | TimeseriesPanelBuilder)[]][] = [
    ["Queue", queuePanels()],
    ["Throughput", throughputPanels()],
    ["Latency", latencyPanels()],
  ];
  // Stable panel ids, so a reloaded dashboard keeps links to its panels.
  let id = 0;
  for (const [title, panels] of rows) {
    builder.withRow(new RowBuilder(title).id(++id));
    for (const panel of panels) builder.withPanel(panel.id(++id));
  }
  return builder.build();
}

/**
 * The dashboard as the JSON Grafana imports: keys sorted, two-space indents, a final newline.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dashboardJson } from "./dashboard.ts";
 * assert.equal(JSON.parse(dashboardJson()).title, "TTG");
 * ```
 */
export function dashboardJson(): string {
  return JSON.stringify(sortKeys(ttgDashboard()), null, 2) + "\n";
}

/** The ConfigMap Grafana's dashboard sidecar loads (in `observability.dashboardNamespace`). */
export function dashboardConfigMap(config: DeploymentConfig): ConfigMap {
  return new ConfigMap({
    metadata: {
      name: names(config).dashboard,
      namespace: config.observability.dashboardNamespace,
      labels: { ...labels(config, "monitoring"), ...GRAFANA_DASHBOARD_LABEL },
    },
    data: { [DASHBOARD_FILE]: dashboardJson() },
  });
}
