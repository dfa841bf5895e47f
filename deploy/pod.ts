/**
 * The pod template of every `ttg` container (worker, exporter, dashboard, submit, static,
 * report): the
 * compiled binary as the image's entrypoint, settings as environment variables named as in
 * docs/SETTINGS.md, broker credentials from Secrets, and a locked-down security context.
 *
 * @module
 */
import type {
  IContainer,
  IContainerPort,
  IEnvVar,
  IPodTemplateSpec,
  IProbe,
  IResourceRequirements,
  IVolume,
  IVolumeMount,
} from "kubernetes-models/v1";
import type { DeploymentConfig, Resources } from "./config.ts";
import { type Component, labels, names, serviceHost } from "./labels.ts";
import { metricsContainerPort, metricsEnv, metricsProbes, scrapeAnnotations } from "./metrics.ts";
import { WORKER_V8_FLAGS } from "../workers/v8_flags.ts";

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

/**
 * What a `ttg` container does: `exporter` serves the broker's queue gauges, `dashboard` the web
 * page of its jobs, `report` prints the job report, `progress` its counters.
 */
export type TtgRole =
  | "worker"
  | "exporter"
  | "dashboard"
  | "submit"
  | "static"
  | "report"
  | "progress";

/** Roles whose process serves `/metrics` (and `/healthz`, `/readyz`). */
const METRICS_ROLES: readonly TtgRole[] = ["worker", "exporter"];

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

/**
 * The sweep: job id, size, simulated work and faults, optional module or handler command (the
 * submit Job needs it too: a command job's tasks carry the handler `ttg.cmd.sum`), attempts.
 */
export function jobEnv(config: DeploymentConfig): IEnvVar[] {
  const { job } = config;
  return [
    literal("TTG_JOB_ID", job.id),
    literal("TTG_PARAMS", job.params),
    literal("TTG_CHUNK_SIZE", job.chunkSize),
    literal("TTG_WORK_MS", job.workMs),
    literal("TTG_FAULT_RATE", job.faultRate),
    ...(job.module === undefined ? [] : [literal("TTG_JOB_MODULE", job.module)]),
    ...(job.command === undefined ? [] : [literal("TTG_CMD", JSON.stringify(job.command))]),
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
    // V8 would size the heap from the node's memory, not from the pod's limit (v8_flags.ts).
    literal("DENO_V8_FLAGS", WORKER_V8_FLAGS.join(",")),
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
      return [
        ...brokerEnv(config),
        ...jobEnv(config),
        ...workerEnv(config),
        ...metricsEnv(config),
        ...commonEnv(config),
      ];
    case "exporter":
      return [...brokerEnv(config), ...commonEnv(config)];
    case "dashboard":
      return [...brokerEnv(config), dashboardTokenEnv(config), ...commonEnv(config)];
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
  exporter: ["exporter"],
  dashboard: ["dashboard"],
  submit: ["submit"],
  static: ["static"],
  report: ["results"],
  progress: ["status", "--json"],
};

/** Name of the web dashboard's port on its container and Service. */
export const DASHBOARD_PORT_NAME = "http";

/** The dashboard's token, from its Secret (never a plain value). */
export function dashboardTokenEnv(config: DeploymentConfig): IEnvVar {
  const { secretName, key } = config.dashboard.token;
  return fromSecret("TTG_DASHBOARD_TOKEN", secretName, key);
}

/**
 * The dashboard's arguments: every address of the pod (so `kubectl port-forward` and the
 * Service reach it; off loopback every API request needs the token), its port, its actions.
 */
function dashboardArgs(config: DeploymentConfig): string[] {
  const d = config.dashboard;
  return [
    "--host",
    "0.0.0.0",
    "--port",
    String(d.port),
    ...(d.allowActions ? ["--allow-actions"] : []),
  ];
}

/** The dashboard's named container port. */
export function dashboardContainerPort(config: DeploymentConfig): IContainerPort {
  return { name: DASHBOARD_PORT_NAME, containerPort: config.dashboard.port, protocol: "TCP" };
}

/**
 * Readiness on `/readyz` (the broker answers), liveness on `/healthz` (the process answers: a
 * broker that is down is shown in the page, not cured by a restart). Neither needs the token.
 */
function dashboardProbes(): { readonly readinessProbe: IProbe; readonly livenessProbe: IProbe } {
  const probe = (path: string, failureThreshold: number): IProbe => ({
    httpGet: { path, port: DASHBOARD_PORT_NAME },
    periodSeconds: 10,
    timeoutSeconds: 5,
    failureThreshold,
  });
  return { readinessProbe: probe("/readyz", 3), livenessProbe: probe("/healthz", 6) };
}

function roleResources(config: DeploymentConfig, role: TtgRole): Resources {
  if (role === "exporter") return config.observability.exporter.resources;
  if (role === "dashboard") return config.dashboard.resources;
  return config.workers.resources;
}

/** Options of {@linkcode ttgContainer} and {@linkcode ttgPodTemplate}. */
export interface TtgPodOptions {
  /** Readiness and liveness probes on the metrics port (long-running pods only). @default false */
  readonly probes?: boolean;
  /** The `ttg` arguments in place of the role's (a fleet worker's flags). @default the role's */
  readonly args?: readonly string[];
  /** The environment in place of the role's. @default {@linkcode roleEnv} */
  readonly env?: readonly IEnvVar[];
  /** The container's working directory. @default the image's (`/home/nonroot`) */
  readonly workingDir?: string;
}

/**
 * The single `ttg` container of a role. The exporter is told its port by `--metrics-port`
 * (`ttg exporter --metrics-port N`), a worker by `TTG_METRICS_PORT`, the dashboard by `--port`.
 */
export function ttgContainer(
  config: DeploymentConfig,
  role: TtgRole,
  options: TtgPodOptions = {},
): IContainer {
  const metrics = METRICS_ROLES.includes(role);
  const dashboard = role === "dashboard";
  const port = ["--metrics-port", String(config.observability.metricsPort)];
  return {
    name: role,
    image: `${config.image.repository}:${config.image.tag}`,
    imagePullPolicy: config.image.pullPolicy,
    args: options.args ? [...options.args] : [
      ...ROLE_ARGS[role],
      ...(role === "exporter" ? port : []),
      ...(dashboard ? dashboardArgs(config) : []),
    ],
    env: options.env ? [...options.env] : roleEnv(config, role),
    ...(options.workingDir === undefined ? {} : { workingDir: options.workingDir }),
    ...(metrics ? { ports: [metricsContainerPort(config)] } : {}),
    ...(dashboard ? { ports: [dashboardContainerPort(config)] } : {}),
    ...(metrics && options.probes ? metricsProbes() : {}),
    ...(dashboard && options.probes ? dashboardProbes() : {}),
    resources: containerResources(roleResources(config, role)),
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
 * A worker's or the exporter's pod carries the scrape annotations and the metrics port.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveConfig } from "./config.ts";
 * import { ttgPodTemplate } from "./pod.ts";
 * const { config } = resolveConfig({}, { randomSecret: () => "s".repeat(32) });
 * const pod = ttgPodTemplate(config, "worker", { restartPolicy: "Never" });
 * assert.equal(pod.spec?.terminationGracePeriodSeconds, 15);
 * ```
 */
export function ttgPodTemplate(
  config: DeploymentConfig,
  role: TtgRole,
  options: TtgPodOptions & {
    readonly restartPolicy: "Never" | "OnFailure" | "Always";
    readonly component?: Component;
  },
): IPodTemplateSpec {
  return {
    metadata: {
      labels: labels(config, options.component ?? (role === "progress" ? "report" : role)),
      ...(METRICS_ROLES.includes(role) ? { annotations: scrapeAnnotations(config) } : {}),
    },
    spec: {
      automountServiceAccountToken: false,
      containers: [ttgContainer(config, role, options)],
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
