/**
 * RabbitMQ for the queue: a StatefulSet with a data volume, a Service with the AMQP and
 * management ports, probes, and credentials in a generated Secret (never guest/guest).
 *
 * @module
 */
import { StatefulSet } from "kubernetes-models/apps/v1";
import { ConfigMap, Secret, Service } from "kubernetes-models/v1";
import type { DeploymentConfig } from "./config.ts";
import { brokerPodSecurity, brokerVolumeClaim } from "./broker_pod.ts";
import { labels, names, selectorLabels, serviceHost } from "./labels.ts";
import {
  amqpPort,
  containerResources,
  managementPort,
  PORTS,
  TLS_DIR,
  TLS_MOUNT,
  tlsVolume,
} from "./pod.ts";

/** UID of the `rabbitmq` user of the official image. */
const RABBITMQ_UID = 999;

/**
 * The AMQP URL of the broker with its credentials (KEDA's rabbitmq trigger reads its `host`
 * from a Secret, so it lives in the Secret too).
 */
export function amqpUrl(config: DeploymentConfig): string {
  const { username, password, vhost } = config.rabbitmq;
  const host = serviceHost(names(config).rabbitmq, config.namespace);
  const scheme = config.tls.secretName === undefined ? "amqp" : "amqps";
  return `${scheme}://${encodeURIComponent(username)}:${encodeURIComponent(password)}@${host}:${
    amqpPort(config)
  }/${encodeURIComponent(vhost)}`;
}

/**
 * The Secret with keys `username`, `password` (and, when KEDA is on, `amqp-url` and with TLS
 * `tls: enable`, KEDA's switch for TLS, which it reads from a Secret).
 */
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
      ...(config.keda.enabled && config.tls.secretName !== undefined ? { tls: "enable" } : {}),
    },
  });
}

/** Name of the AMQP port: `amqps` with TLS. */
function amqpPortName(config: DeploymentConfig): string {
  return config.tls.secretName === undefined ? "amqp" : "amqps";
}

/** Where the TLS listener's configuration file is mounted (the image reads conf.d/*.conf). */
export const RABBITMQ_TLS_CONF = "/etc/rabbitmq/conf.d/90-ttg-tls.conf";

/**
 * The TLS listeners' configuration: AMQP over TLS on 5671 only (the plain listener off),
 * clients verified by password, not certificate; the management API and UI over HTTPS on 15671
 * only (with `management.ssl.port` set, RabbitMQ opens no plain HTTP listener).
 */
export function rabbitmqTlsConfigMap(config: DeploymentConfig): ConfigMap {
  const files = (prefix: string) => [
    `${prefix}.cacertfile = ${TLS_DIR}/ca.crt`,
    `${prefix}.certfile = ${TLS_DIR}/tls.crt`,
    `${prefix}.keyfile = ${TLS_DIR}/tls.key`,
  ];
  const conf = [
    "listeners.tcp = none",
    `listeners.ssl.default = ${PORTS.amqps}`,
    ...files("ssl_options"),
    "ssl_options.verify = verify_none",
    "ssl_options.fail_if_no_peer_cert = false",
    `management.ssl.port = ${PORTS.managementTls}`,
    ...files("management.ssl"),
    "",
  ].join("\n");
  return new ConfigMap({
    metadata: {
      name: names(config).rabbitmqTls,
      namespace: config.namespace,
      labels: labels(config, "broker", "rabbitmq"),
    },
    data: { "tls.conf": conf },
  });
}

/** The Service: AMQP for workers, management (HTTP API and UI; HTTPS with TLS) for operators. */
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
        {
          name: amqpPortName(config),
          port: amqpPort(config),
          targetPort: amqpPortName(config),
          protocol: "TCP",
        },
        {
          name: "management",
          port: managementPort(config),
          targetPort: "management",
          protocol: "TCP",
        },
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
  const tlsSecret = config.tls.secretName;
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
              { name: amqpPortName(config), containerPort: amqpPort(config), protocol: "TCP" },
              { name: "management", containerPort: managementPort(config), protocol: "TCP" },
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
            volumeMounts: [
              { name: "data", mountPath: "/var/lib/rabbitmq" },
              ...(tlsSecret === undefined ? [] : [
                TLS_MOUNT,
                { name: "tls-conf", mountPath: RABBITMQ_TLS_CONF, subPath: "tls.conf" },
              ]),
            ],
          }],
          ...(tlsSecret === undefined ? {} : {
            volumes: [
              tlsVolume(tlsSecret, { defaultMode: 0o440 }),
              { name: "tls-conf", configMap: { name: n.rabbitmqTls } },
            ],
          }),
        },
      },
      volumeClaimTemplates: [brokerVolumeClaim(config, config.rabbitmq, "rabbitmq")],
    },
  });
}

/** Every RabbitMQ object, Secret first (and the TLS listener's ConfigMap with TLS). */
export function rabbitmqObjects(
  config: DeploymentConfig,
): (Secret | ConfigMap | Service | StatefulSet)[] {
  return [
    rabbitmqSecret(config),
    ...(config.tls.secretName === undefined ? [] : [rabbitmqTlsConfigMap(config)]),
    rabbitmqService(config),
    rabbitmqStatefulSet(config),
  ];
}
