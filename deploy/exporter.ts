/**
 * The queue exporter: one `ttg exporter` per broker (it reads every job of the broker and
 * serves the queue-level gauges, `ttg_queue_*`, `ttg_job_*` and `ttg_workers`), so no queue
 * figure is summed over N workers. A Deployment of exactly one replica, replaced with the
 * `Recreate` strategy (two exporters at once would serve every gauge twice), and a ClusterIP
 * Service with the named `metrics` port for a ServiceMonitor. Its pod is a `ttg` pod like the
 * workers': the same broker settings and Secret references, the same hardening; the
 * NetworkPolicy admits it to the broker by the labels every TTG pod carries.
 *
 * @module
 */
import { Deployment } from "kubernetes-models/apps/v1";
import { Service } from "kubernetes-models/v1";
import type { DeploymentConfig } from "./config.ts";
import { labels, names, selectorLabels } from "./labels.ts";
import { METRICS_PORT_NAME } from "./metrics.ts";
import { ttgPodTemplate } from "./pod.ts";

/** The exporter's Deployment: one replica, probes on its metrics port. */
export function exporterDeployment(config: DeploymentConfig): Deployment {
  return new Deployment({
    metadata: {
      name: names(config).exporter,
      namespace: config.namespace,
      labels: labels(config, "exporter"),
    },
    spec: {
      replicas: 1,
      selector: { matchLabels: selectorLabels(config, "exporter") },
      strategy: { type: "Recreate" },
      template: ttgPodTemplate(config, "exporter", { restartPolicy: "Always", probes: true }),
    },
  });
}

/** The exporter's Service: the named metrics port, for a ServiceMonitor or a scrape job. */
export function exporterService(config: DeploymentConfig): Service {
  return new Service({
    metadata: {
      name: names(config).exporter,
      namespace: config.namespace,
      labels: labels(config, "exporter"),
    },
    spec: {
      type: "ClusterIP",
      selector: selectorLabels(config, "exporter"),
      ports: [{
        name: METRICS_PORT_NAME,
        port: config.observability.metricsPort,
        targetPort: METRICS_PORT_NAME,
        protocol: "TCP",
      }],
    },
  });
}

/** The exporter's objects, when it is enabled. */
export function exporterObjects(config: DeploymentConfig): (Deployment | Service)[] {
  return config.observability.exporter.enabled
    ? [exporterDeployment(config), exporterService(config)]
    : [];
}
