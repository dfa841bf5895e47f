/**
 * RabbitMQ for the queue: a StatefulSet with a data volume, a Service with the AMQP and
 * management ports, probes, and credentials in a generated Secret (never guest/guest).
 *
 * @module
 */
import { StatefulSet } from "kubernetes-models/apps/v1";
import { Secret, Service } from "kubernetes-models/v1";
import type { DeploymentConfig } from "./config.ts";
import { brokerPodSecurity, brokerVolumeClaim } from "./broker_pod.ts";
import { labels, names, selectorLabels, serviceHost } from "./labels.ts";
import { containerResources, PORTS } from "./pod.ts";

/** UID of the `rabbitmq` user of the official image. */
const RABBITMQ_UID = 999;

/**
 * The AMQP URL of the broker with its credentials (KEDA's rabbitmq trigger reads its `host`
 * from a Secret, so it lives in the Secret too).
 */
export function amqpUrl(config: DeploymentConfig): string {
  const { username, password, vhost } = config.rabbitmq;
  const host = serviceHost(names(config).rabbitmq, config.namespace);
  return `amqp://${encodeURIComponent(username)}:${
    encodeURIComponent(password)
  }@${host}:${PORTS.amqp}/${encodeURIComponent(vhost)}`;
}

/** The Secret with keys `username`, `password` (and `amqp-url` when KEDA is on). */
export function rabbitmqSecret(config: DeploymentConfig): Secret {
  return new Secret({
    metadata: {
      name: names(config).rabbitmqSecret,
      namespace: config.namespace,
      labels: labels(config, "broker", "rabbitmq"),
    },
    type: "Opaque",
    stringData: {
      username: config.rabbitmq.username,
      password: config.rabbitmq.password,
      ...(config.keda.enabled ? { "amqp-url": amqpUrl(config) } : {}),
    },
  });
}

/** The Service: AMQP for workers, management (HTTP API and UI) for operators. */
export function rabbitmqService(config: DeploymentConfig): Service {
  return new Service({
    metadata: {
      name: names(config).rabbitmq,
      namespace: config.namespace,
      labels: labels(config, "broker", "rabbitmq"),
    },
    spec: {
      type: "ClusterIP",
      selector: selectorLabels(config, "broker", "rabbitmq"),
      ports: [
        { name: "amqp", port: PORTS.amqp, targetPort: "amqp", protocol: "TCP" },
        { name: "management", port: PORTS.management, targetPort: "management", protocol: "TCP" },
      ],
    },
  });
}

/**
 * One RabbitMQ node. Its root filesystem stays writable: the image's entrypoint and the
 * Erlang runtime write under /etc/rabbitmq and /var/log; everything else is locked down.
 */
export function rabbitmqStatefulSet(config: DeploymentConfig): StatefulSet {
  const n = names(config);
  const secret = (key: string) => ({ secretKeyRef: { name: n.rabbitmqSecret, key } });
  const diagnostics = (check: string) => ({ command: ["rabbitmq-diagnostics", "-q", check] });
  return new StatefulSet({
    metadata: {
      name: n.rabbitmq,
      namespace: config.namespace,
      labels: labels(config, "broker", "rabbitmq"),
    },
    spec: {
      replicas: 1,
      serviceName: n.rabbitmq,
      selector: { matchLabels: selectorLabels(config, "broker", "rabbitmq") },
      template: {
        metadata: { labels: labels(config, "broker", "rabbitmq") },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: brokerPodSecurity(RABBITMQ_UID),
          terminationGracePeriodSeconds: 60,
          containers: [{
            name: "rabbitmq",
            image: config.rabbitmq.image,
            env: [
              { name: "RABBITMQ_DEFAULT_USER", valueFrom: secret("username") },
              { name: "RABBITMQ_DEFAULT_PASS", valueFrom: secret("password") },
              { name: "RABBITMQ_DEFAULT_VHOST", value: config.rabbitmq.vhost },
            ],
            ports: [
              { name: "amqp", containerPort: PORTS.amqp, protocol: "TCP" },
              { name: "management", containerPort: PORTS.management, protocol: "TCP" },
            ],
            readinessProbe: {
              exec: diagnostics("check_port_connectivity"),
              initialDelaySeconds: 10,
              periodSeconds: 10,
              timeoutSeconds: 10,
            },
            livenessProbe: {
              exec: diagnostics("ping"),
              initialDelaySeconds: 30,
              periodSeconds: 30,
              timeoutSeconds: 10,
            },
            resources: containerResources(config.rabbitmq.resources),
            securityContext: {
              allowPrivilegeEscalation: false,
              capabilities: { drop: ["ALL"] },
              runAsGroup: RABBITMQ_UID,
              runAsNonRoot: true,
              runAsUser: RABBITMQ_UID,
            },
            volumeMounts: [{ name: "data", mountPath: "/var/lib/rabbitmq" }],
          }],
        },
      },
      volumeClaimTemplates: [brokerVolumeClaim(config, config.rabbitmq, "rabbitmq")],
    },
  });
}

/** Every RabbitMQ object, Secret first. */
export function rabbitmqObjects(config: DeploymentConfig): [Secret, Service, StatefulSet] {
  return [rabbitmqSecret(config), rabbitmqService(config), rabbitmqStatefulSet(config)];
}
