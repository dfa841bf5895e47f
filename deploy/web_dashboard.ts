/**
 * The web dashboard, optional (`dashboard.enabled`): `ttg dashboard` as a Deployment of one
 * replica (each replica reads the broker once a second, so more would only multiply that)
 * behind a ClusterIP Service with the named `http` port, reached from a workstation with
 * `kubectl port-forward svc/<name>-dashboard 8080:8080`. Its pod is a `ttg` pod like the
 * workers' (the same broker settings and Secret references, the same hardening; the
 * NetworkPolicy admits it to the broker by the labels every TTG pod carries). Its token comes
 * from a Secret, the one the user names or `<name>-dashboard-token`, generated here with a
 * random token.
 *
 * @module
 */
import { Deployment } from "kubernetes-models/apps/v1";
import { Secret, Service } from "kubernetes-models/v1";
import type { DeploymentConfig } from "./config.ts";
import { labels, names, selectorLabels } from "./labels.ts";
import { DASHBOARD_PORT_NAME, ttgPodTemplate } from "./pod.ts";

/** The dashboard's Deployment: one replica, probes on its port. */
export function webDashboardDeployment(config: DeploymentConfig): Deployment {
  return new Deployment({
    metadata: {
      name: names(config).webDashboard,
      namespace: config.namespace,
      labels: labels(config, "dashboard"),
    },
    spec: {
      replicas: 1,
      selector: { matchLabels: selectorLabels(config, "dashboard") },
      template: ttgPodTemplate(config, "dashboard", { restartPolicy: "Always", probes: true }),
    },
  });
}

/** The dashboard's Service: ClusterIP only (no node port, no load balancer). */
export function webDashboardService(config: DeploymentConfig): Service {
  return new Service({
    metadata: {
      name: names(config).webDashboard,
      namespace: config.namespace,
      labels: labels(config, "dashboard"),
    },
    spec: {
      type: "ClusterIP",
      selector: selectorLabels(config, "dashboard"),
      ports: [{
        name: DASHBOARD_PORT_NAME,
        port: config.dashboard.port,
        targetPort: DASHBOARD_PORT_NAME,
        protocol: "TCP",
      }],
    },
  });
}

/** The Secret with a generated token (none when the user names the Secret). */
export function webDashboardTokenSecret(config: DeploymentConfig): Secret[] {
  const { generated, secretName } = config.dashboard.token;
  if (generated === undefined) return [];
  return [
    new Secret({
      metadata: {
        name: secretName,
        namespace: config.namespace,
        labels: labels(config, "dashboard"),
      },
      type: "Opaque",
      stringData: { token: generated },
    }),
  ];
}

/** The dashboard's objects, when it is enabled. */
export function webDashboardObjects(
  config: DeploymentConfig,
): (Secret | Deployment | Service)[] {
  return config.dashboard.enabled
    ? [
      ...webDashboardTokenSecret(config),
      webDashboardDeployment(config),
      webDashboardService(config),
    ]
    : [];
}
