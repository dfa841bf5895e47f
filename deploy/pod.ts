/**
 * The pod template of every `ttg` container (worker, submit, static, report): the compiled
 * binary as the image's entrypoint, settings as environment variables named as in
 * docs/SETTINGS.md, broker credentials from Secrets, and a locked-down security context.
 *
 * @module
 */
import type {
  IContainer,
  IEnvVar,
  IPodTemplateSpec,
  IResourceRequirements,
  IVolume,
  IVolumeMount,
} from "kubernetes-models/v1";
import type { DeploymentConfig, Resources } from "./config.ts";
import { type Component, labels, names, serviceHost } from "./labels.ts";

/** The image's entrypoint (Dockerfile `ENTRYPOINT`): the compiled `ttg` program. */
export const IMAGE_ENTRYPOINT: readonly string[] = ["/ttg"];
/** The `nonroot` user of distroless images. */
export const NONROOT_UID = 65532;
/** Broker ports. */
export const PORTS = {
  redis: 6379,
  amqp: 5672,
  amqps: 5671,
  management: 15672,
  managementTls: 15671,
} as const;
/** Where the broker's TLS Secret is mounted (the broker: all keys; TTG pods: `ca.crt` only). */
export const TLS_DIR = "/etc/ttg/tls";

/** The port workers reach RabbitMQ on: 5671 (amqps) with TLS, 5672 without. */
export function amqpPort(config: DeploymentConfig): number {
  return config.tls.secretName === undefined ? PORTS.amqp : PORTS.amqps;
}

/** RabbitMQ's management port: 15671 (HTTPS) with TLS, 15672 (HTTP) without. */
export function managementPort(config: DeploymentConfig): number {
  return config.tls.secretName === undefined ? PORTS.management : PORTS.managementTls;
}

/** The pod volume of the TLS Secret (`items` limits it to some keys). */
export function tlsVolume(
  secretName: string,
  options: { readonly items?: readonly string[]; readonly defaultMode?: number } = {},
): IVolume {
  return {
    name: "tls",
    secret: {
      secretName,
      ...(options.items ? { items: options.items.map((key) => ({ key, path: key })) } : {}),
      ...(options.defaultMode === undefined ? {} : { defaultMode: options.defaultMode }),
    },
  };
}

/** The read-only mount of {@linkcode tlsVolume} at {@linkcode TLS_DIR}. */
export const TLS_MOUNT: IVolumeMount = { name: "tls", mountPath: TLS_DIR, readOnly: true };

/** Requests and limits of a container. */
export function containerResources(r: Resources): IResourceRequirements {
  return {
    requests: { cpu: r.cpuRequest, memory: r.memoryRequest },
    limits: { cpu: r.cpuLimit, memory: r.memoryLimit },
  };
}

/** What a `ttg` container does: `report` prints the job report, `progress` its counters. */
export type TtgRole = "worker" | "submit" | "static" | "report" | "progress";

function literal(name: string, value: string | number): IEnvVar {
  return { name, value: String(value) };
}

function fromSecret(name: string, secret: string, key: string): IEnvVar {
  return { name, valueFrom: { secretKeyRef: { name: secret, key } } };
}

function fromField(name: string, fieldPath: string): IEnvVar {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

/**
 * Backend and broker address; the password (and RabbitMQ user) come from the Secret. With TLS,
 * `REDIS_TLS`/`RABBITMQ_TLS` and the mounted CA; a quorum queue type when asked for.
 */
export function brokerEnv(config: DeploymentConfig): IEnvVar[] {
  const n = names(config);
  const tls = (flag: string) =>
    config.tls.secretName === undefined
      ? []
      : [literal(flag, "true"), literal("TTG_TLS_CA_FILE", `${TLS_DIR}/ca.crt`)];
  if (config.backend === "redis") {
    return [
      literal("TTG_BACKEND", "redis"),
      literal("REDIS_HOST", serviceHost(n.redis, config.namespace)),
      literal("REDIS_PORT", PORTS.redis),
      fromSecret("REDIS_PASSWORD", n.redisSecret, "password"),
      ...tls("REDIS_TLS"),
    ];
  }
  return [
    literal("TTG_BACKEND", "rabbitmq"),
    literal("RABBITMQ_HOST", serviceHost(n.rabbitmq, config.namespace)),
    literal("RABBITMQ_PORT", amqpPort(config)),
    fromSecret("RABBITMQ_USER", n.rabbitmqSecret, "username"),
    fromSecret("RABBITMQ_PASSWORD", n.rabbitmqSecret, "password"),
    literal("RABBITMQ_VHOST", config.rabbitmq.vhost),
    ...tls("RABBITMQ_TLS"),
    ...(config.rabbitmq.queueType === "classic"
      ? []
      : [literal("TTG_RABBITMQ_QUEUE_TYPE", config.rabbitmq.queueType)]),
  ];
}

/** The CA volume of a role that talks to the broker over TLS (none without TLS or a broker). */
function caVolumes(config: DeploymentConfig, role: TtgRole): IVolume[] {
  const secret = config.tls.secretName;
  return secret === undefined || role === "static"
    ? []
    : [tlsVolume(secret, { items: ["ca.crt"] })];
}

/** The sweep: job id, size, simulated work and faults, optional module and attempts. */
export function jobEnv(config: DeploymentConfig): IEnvVar[] {
  const { job } = config;
  return [
    literal("TTG_JOB_ID", job.id),
    literal("TTG_PARAMS", job.params),
    literal("TTG_CHUNK_SIZE", job.chunkSize),
    literal("TTG_WORK_MS", job.workMs),
    literal("TTG_FAULT_RATE", job.faultRate),
    ...(job.module === undefined ? [] : [literal("TTG_JOB_MODULE", job.module)]),
    ...(job.maxAttempts === undefined ? [] : [literal("TTG_MAX_ATTEMPTS", job.maxAttempts)]),
  ];
}

/** How a worker runs: concurrency, batch, idle timeout, grace and the optional lease tuning. */
export function workerEnv(config: DeploymentConfig): IEnvVar[] {
  const w = config.workers;
  const optional: [string, number | undefined][] = [
    ["TTG_LEASE_MS", w.leaseMs],
    ["TTG_HEARTBEAT_MS", w.heartbeatMs],
    ["TTG_CHUNK_TIMEOUT_SECONDS", w.chunkTimeoutSeconds],
  ];
  return [
    literal("TTG_CONCURRENCY", w.concurrency),
    literal("TTG_BATCH", w.batch),
    literal("TTG_IDLE_TIMEOUT_SECONDS", w.idleTimeoutSeconds),
    literal("TTG_GRACE_SECONDS", w.graceSeconds),
    ...optional.flatMap(([name, value]) => value === undefined ? [] : [literal(name, value)]),
  ];
}

/**
 * Static mode: the pod count and the sweep size. The pod's own index, JOB_COMPLETION_INDEX, is
 * set by the Job controller of an Indexed Job, so it is not generated.
 */
export function staticEnv(config: DeploymentConfig): IEnvVar[] {
  return [
    literal("TOTAL_WORKERS", config.workers.count),
    literal("TOTAL_PARAMETERS", config.job.params),
  ];
}

/** Logging and the pod's identity from the downward API. */
export function commonEnv(config: DeploymentConfig): IEnvVar[] {
  return [
    literal("LOG_LEVEL", config.workers.logLevel),
    literal("LOG_FORMAT", config.workers.logFormat),
    fromField("POD_NAME", "metadata.name"),
    fromField("NODE_NAME", "spec.nodeName"),
  ];
}

/** The full environment of a role. */
export function roleEnv(config: DeploymentConfig, role: TtgRole): IEnvVar[] {
  switch (role) {
    case "worker":
      return [...brokerEnv(config), ...jobEnv(config), ...workerEnv(config), ...commonEnv(config)];
    case "submit":
    case "report":
    case "progress":
      return [...brokerEnv(config), ...jobEnv(config), ...commonEnv(config)];
    case "static":
      return [...staticEnv(config), ...commonEnv(config)];
  }
}

/** The `ttg` command (arguments after the entrypoint) of a role. */
export const ROLE_ARGS: Readonly<Record<TtgRole, readonly string[]>> = {
  worker: ["worker"],
  submit: ["submit"],
  static: ["static"],
  report: ["results"],
  progress: ["status", "--json"],
};

/** The single `ttg` container of a role. */
export function ttgContainer(config: DeploymentConfig, role: TtgRole): IContainer {
  return {
    name: role,
    image: `${config.image.repository}:${config.image.tag}`,
    imagePullPolicy: config.image.pullPolicy,
    args: [...ROLE_ARGS[role]],
    env: roleEnv(config, role),
    resources: containerResources(config.workers.resources),
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      readOnlyRootFilesystem: true,
      runAsGroup: NONROOT_UID,
      runAsNonRoot: true,
      runAsUser: NONROOT_UID,
      seccompProfile: { type: "RuntimeDefault" },
    },
    volumeMounts: [
      { name: "tmp", mountPath: "/tmp" },
      ...(caVolumes(config, role).length > 0 ? [TLS_MOUNT] : []),
    ],
  };
}

/**
 * The pod template of a role: one `ttg` container, no service-account token, no service-link
 * variables (they would shadow settings such as REDIS_PORT), and a termination grace period of
 * the worker's grace plus a margin, so a stopping worker finishes its chunks before SIGKILL.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "./config.ts";
 * import { ttgPodTemplate } from "./pod.ts";
 * const { config } = resolveConfig({}, { randomSecret: () => "s".repeat(32) });
 * const pod = ttgPodTemplate(config, "worker", { restartPolicy: "Never" });
 * console.assert(pod.spec?.terminationGracePeriodSeconds === 15);
 * ```
 */
export function ttgPodTemplate(
  config: DeploymentConfig,
  role: TtgRole,
  options: {
    readonly restartPolicy: "Never" | "OnFailure" | "Always";
    readonly component?: Component;
  },
): IPodTemplateSpec {
  return {
    metadata: {
      labels: labels(config, options.component ?? (role === "progress" ? "report" : role)),
    },
    spec: {
      automountServiceAccountToken: false,
      containers: [ttgContainer(config, role)],
      enableServiceLinks: false,
      restartPolicy: options.restartPolicy,
      ...(config.workers.runtimeClassName === undefined
        ? {}
        : { runtimeClassName: config.workers.runtimeClassName }),
      securityContext: {
        fsGroup: NONROOT_UID,
        runAsGroup: NONROOT_UID,
        runAsNonRoot: true,
        runAsUser: NONROOT_UID,
        seccompProfile: { type: "RuntimeDefault" },
      },
      terminationGracePeriodSeconds: config.workers.graceSeconds +
        config.workers.terminationMarginSeconds,
      volumes: [
        { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
        ...caVolumes(config, role),
      ],
    },
  };
}
