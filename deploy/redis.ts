/**
 * Redis for the queue: a StatefulSet with a data volume (AOF on), a Service, probes, and the
 * password in a generated Secret (required by the server, read by workers via secretKeyRef).
 *
 * @module
 */
import { StatefulSet } from "kubernetes-models/apps/v1";
import { Secret, Service } from "kubernetes-models/v1";
import type { DeploymentConfig } from "./config.ts";
import { brokerPodSecurity, brokerVolumeClaim } from "./broker_pod.ts";
import { labels, names, selectorLabels } from "./labels.ts";
import { containerResources, PORTS, TLS_DIR, TLS_MOUNT, tlsVolume } from "./pod.ts";

/** UID of the `redis` user of the official image. */
const REDIS_UID = 999;

/** Readiness and liveness: `redis-cli ping` answers PONG (REDISCLI_AUTH holds the password). */
function ping(tls: boolean): string[] {
  const cli = tls ? `redis-cli --tls --cacert ${TLS_DIR}/ca.crt` : "redis-cli";
  return ["sh", "-c", `${cli} ping | grep -q PONG`];
}

/**
 * With TLS the one port speaks TLS only; clients are verified by password, not certificate.
 * The key is readable by the redis group only (fsGroup).
 */
function tlsArgs(config: DeploymentConfig): string[] {
  if (config.tls.secretName === undefined) return [];
  return [
    "--port",
    "0",
    "--tls-port",
    String(PORTS.redis),
    "--tls-cert-file",
    `${TLS_DIR}/tls.crt`,
    "--tls-key-file",
    `${TLS_DIR}/tls.key`,
    "--tls-ca-cert-file",
    `${TLS_DIR}/ca.crt`,
    "--tls-auth-clients",
    "no",
  ];
}

/**
 * The Secret holding the Redis password (key `password`; with KEDA and TLS also `tls: enable`,
 * KEDA's switch for TLS, which it reads from a Secret).
 */
export function redisSecret(config: DeploymentConfig): Secret {
  return new Secret({
    metadata: {
      name: names(config).redisSecret,
      namespace: config.namespace,
      labels: labels(config, "broker", "redis"),
    },
    type: "Opaque",
    stringData: {
      password: config.redis.password,
      ...(config.keda.enabled && config.tls.secretName !== undefined ? { tls: "enable" } : {}),
    },
  });
}

/** The Service workers connect to (`<name>-redis.<namespace>.svc:6379`). */
export function redisService(config: DeploymentConfig): Service {
  return new Service({
    metadata: {
      name: names(config).redis,
      namespace: config.namespace,
      labels: labels(config, "broker", "redis"),
    },
    spec: {
      type: "ClusterIP",
      selector: selectorLabels(config, "broker", "redis"),
      ports: [{ name: "redis", port: PORTS.redis, targetPort: "redis", protocol: "TCP" }],
    },
  });
}

/**
 * One Redis pod with append-only persistence on its volume, a required password and, with
 * `tls.secretName`, TLS only.
 */
export function redisStatefulSet(config: DeploymentConfig): StatefulSet {
  const n = names(config);
  const tlsSecret = config.tls.secretName;
  const PING = ping(tlsSecret !== undefined);
  const password = { secretKeyRef: { name: n.redisSecret, key: "password" } };
  return new StatefulSet({
    metadata: {
      name: n.redis,
      namespace: config.namespace,
      labels: labels(config, "broker", "redis"),
    },
    spec: {
      replicas: 1,
      serviceName: n.redis,
      selector: { matchLabels: selectorLabels(config, "broker", "redis") },
      template: {
        metadata: { labels: labels(config, "broker", "redis") },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: brokerPodSecurity(REDIS_UID),
          containers: [{
            name: "redis",
            image: config.redis.image,
            args: [
              "--appendonly",
              "yes",
              "--dir",
              "/data",
              "--requirepass",
              "$(REDIS_PASSWORD)",
              ...tlsArgs(config),
            ],
            env: [
              { name: "REDIS_PASSWORD", valueFrom: password },
              { name: "REDISCLI_AUTH", valueFrom: password },
            ],
            ports: [{ name: "redis", containerPort: PORTS.redis, protocol: "TCP" }],
            readinessProbe: {
              exec: { command: PING },
              initialDelaySeconds: 5,
              periodSeconds: 10,
              timeoutSeconds: 5,
            },
            livenessProbe: {
              exec: { command: PING },
              initialDelaySeconds: 15,
              periodSeconds: 30,
              timeoutSeconds: 5,
            },
            resources: containerResources(config.redis.resources),
            securityContext: {
              allowPrivilegeEscalation: false,
              capabilities: { drop: ["ALL"] },
              readOnlyRootFilesystem: true,
              runAsGroup: REDIS_UID,
              runAsNonRoot: true,
              runAsUser: REDIS_UID,
            },
            volumeMounts: [
              { name: "data", mountPath: "/data" },
              ...(tlsSecret === undefined ? [] : [TLS_MOUNT]),
            ],
          }],
          ...(tlsSecret === undefined
            ? {}
            : { volumes: [tlsVolume(tlsSecret, { defaultMode: 0o440 })] }),
        },
      },
      volumeClaimTemplates: [brokerVolumeClaim(config, config.redis, "redis")],
    },
  });
}

/** Every Redis object, Secret first. */
export function redisObjects(config: DeploymentConfig): [Secret, Service, StatefulSet] {
  return [redisSecret(config), redisService(config), redisStatefulSet(config)];
}
