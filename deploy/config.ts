/**
 * The one typed description of a TTG deployment on Kubernetes: readonly props with documented
 * defaults ({@linkcode DeploymentProps}), resolved and validated into a complete
 * {@linkcode DeploymentConfig}. Every bad value is a problem naming its field; all of them are
 * reported together by `synth` (deploy/synth.ts).
 *
 * @module
 */
import { FieldReader, type Resources } from "./field_reader.ts";
import { type FleetConfig, resolveFleet } from "./fleet_config.ts";
import { type KedaConfig, resolveKeda } from "./keda_config.ts";
import { KNOWN_FIELDS } from "./known_fields.ts";
import { names } from "./labels.ts";
import { type ObservabilityConfig, resolveObservability } from "./observability_config.ts";
import { type Problem, Problems } from "./problems.ts";
import { resolveWebDashboard, type WebDashboardConfig } from "./web_dashboard_config.ts";
import {
  type Backend,
  BACKENDS,
  type DeploymentProps,
  type ImageProps,
  type JobProps,
  LOG_LEVELS,
  type Mode,
  MODES,
  type NetworkPolicyProps,
  PULL_POLICIES,
  RABBITMQ_QUEUE_TYPES,
  WORKER_CONTROLLERS,
  type WorkersProps,
} from "./props.ts";

export { DNS_LABEL, FORBIDDEN_PASSWORDS, type Resources } from "./field_reader.ts";
export type { FleetConfig } from "./fleet_config.ts";
export type { KedaConfig } from "./keda_config.ts";
export type { AlertThresholds, ObservabilityConfig } from "./observability_config.ts";
export type { WebDashboardConfig } from "./web_dashboard_config.ts";
export * from "./props.ts";

/** A complete, validated deployment: what the component functions consume. */
export interface DeploymentConfig {
  readonly name: string;
  readonly namespace: string;
  readonly createNamespace: boolean;
  readonly backend: Backend;
  readonly mode: Mode;
  readonly image: Required<ImageProps>;
  readonly job: Required<Omit<JobProps, "module" | "command" | "maxAttempts">> & {
    readonly module: string | undefined;
    readonly command: readonly string[] | undefined;
    readonly maxAttempts: number | undefined;
  };
  readonly workers:
    & Required<
      Omit<
        WorkersProps,
        "resources" | "runtimeClassName" | "leaseMs" | "heartbeatMs" | "chunkTimeoutSeconds"
      >
    >
    & {
      readonly resources: Resources;
      readonly runtimeClassName: string | undefined;
      readonly leaseMs: number | undefined;
      readonly heartbeatMs: number | undefined;
      readonly chunkTimeoutSeconds: number | undefined;
    };
  readonly redis: BrokerConfig;
  readonly rabbitmq: BrokerConfig & {
    readonly username: string;
    readonly vhost: string;
    readonly queueType: typeof RABBITMQ_QUEUE_TYPES[number];
  };
  /** The Secret with the broker's certificate; undefined: no TLS. */
  readonly tls: { readonly secretName: string | undefined };
  readonly networkPolicy: Required<NetworkPolicyProps>;
  readonly keda: KedaConfig;
  /** Fleet mode's workers (checked, with defaults, in every mode). */
  readonly fleet: FleetConfig;
  readonly observability: ObservabilityConfig;
  /** The web dashboard (`ttg dashboard`). */
  readonly dashboard: WebDashboardConfig;
}

/** A broker's settings, resolved (the password given or generated). */
export interface BrokerConfig {
  readonly image: string;
  readonly resources: Resources;
  readonly storage: string;
  readonly storageClassName: string | undefined;
  readonly password: string;
}

/** Options of {@linkcode resolveConfig}. */
export interface ResolveOptions {
  /** Makes a broker password when none is given. @default {@linkcode randomPassword} */
  readonly randomSecret?: () => string;
}

/**
 * A random password: 32 URL-safe characters (192 bits) from the platform CSPRNG.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { randomPassword } from "./config.ts";
 * assert.match(randomPassword(), /^[A-Za-z0-9_-]{32}$/);
 * ```
 */
export function randomPassword(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_");
}

const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const IMAGE = /^[a-z0-9][a-z0-9._\-/:@]*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Defaults of every resource block (the predecessor's, engineering-playbook.md §4.2). */
export const DEFAULT_RESOURCES: Readonly<Record<"workers" | "redis" | "rabbitmq", Resources>> = {
  workers: { cpuRequest: "100m", cpuLimit: "500m", memoryRequest: "128Mi", memoryLimit: "192Mi" },
  redis: { cpuRequest: "100m", cpuLimit: "500m", memoryRequest: "128Mi", memoryLimit: "256Mi" },
  rabbitmq: { cpuRequest: "200m", cpuLimit: "1000m", memoryRequest: "256Mi", memoryLimit: "1Gi" },
};

/**
 * The names the brokers give a job's task queue, which KEDA watches. They follow the brokers'
 * naming (brokers/redis_codec.ts, brokers/rabbitmq_topology.ts; deploy/ does not import
 * brokers/, so tests/deploy_test.ts checks the two agree): job `ttg` keeps the predecessor's
 * names, any other job is namespaced under the `ttg` prefix. Tasks of the default priority.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { brokerNames } from "./config.ts";
 * assert.equal(brokerNames("ttg").redisStream, "ttg:tasks");
 * assert.equal(brokerNames("nightly").rabbitmqQueue, "ttg.nightly.tasks");
 * ```
 */
export function brokerNames(jobId: string): {
  readonly redisStream: string;
  readonly redisConsumerGroup: string;
  readonly rabbitmqQueue: string;
} {
  const legacy = jobId === "ttg";
  return {
    redisStream: legacy ? "ttg:tasks" : `ttg:${jobId}:tasks`,
    redisConsumerGroup: "ttg-workers",
    rabbitmqQueue: legacy ? "ttg.tasks" : `ttg.${jobId}.tasks`,
  };
}

/**
 * Applies defaults and validates props. Never throws: problems are returned with a config that
 * holds defaults in place of the bad values, so every problem is found in one pass.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveConfig } from "./config.ts";
 * const { config, problems } = resolveConfig(
 *   { workers: { count: 0 } },
 *   { randomSecret: () => "x".repeat(32) },
 * );
 * assert.equal(config.backend, "redis");
 * assert.equal(config.workers.count, 3);
 * assert.equal(problems[0]?.field, "workers.count");
 * ```
 */
export function resolveConfig(
  props: DeploymentProps = {},
  options: ResolveOptions = {},
): { readonly config: DeploymentConfig; readonly problems: readonly Problem[] } {
  const random = options.randomSecret ?? randomPassword;
  const problems = new Problems();
  const top = new FieldReader(problems, "", props, KNOWN_FIELDS);
  const name = top.string(
    "name",
    "ttg",
    /^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$/,
    "a DNS label of at most 40 characters",
  );
  const namespace = top.dnsLabel("namespace", "ttg");
  const createNamespace = top.boolean("createNamespace", true) && namespace !== "default";
  const backend = top.choice("backend", "redis", BACKENDS);
  const mode = top.choice("mode", "queue", MODES);

  const img = top.child("image");
  const image = {
    repository: img.string(
      "repository",
      "ttg",
      IMAGE,
      "an image repository such as ttg or ghcr.io/org/ttg",
    ),
    tag: img.string("tag", "dev", TAG, "an image tag"),
    pullPolicy: img.choice("pullPolicy", "IfNotPresent", PULL_POLICIES),
  };

  const j = top.child("job");
  const job = {
    id: j.string("id", "ttg", JOB_ID, "letters, digits, '.', '_' or '-' (at most 63)"),
    params: j.int("params", 10_000, 1, 1e12),
    chunkSize: j.int("chunkSize", 100, 1, 1e9),
    workMs: j.number("workMs", 1, 0, 60_000),
    faultRate: j.number("faultRate", 0, 0, 1),
    module: j.optionalString("module", /^\S+$/, "a module path or URL"),
    command: j.optionalStringList(
      "command",
      64,
      /^[^\0\n\r]{1,4096}$/,
      "non-empty strings (a program and its arguments)",
    ),
    maxAttempts: j.optionalInt("maxAttempts", 1, 100),
  };
  if (job.command !== undefined && job.module !== undefined) {
    j.problem("command", "expected unset with job.module (a job is a module or a command)");
  }
  if (job.command !== undefined && mode === "static") {
    j.problem("command", 'expected unset with mode "static" (static mode runs ttg.sweep)');
  }

  const w = top.child("workers");
  const workers = {
    count: w.int("count", 3, 1, 256),
    controller: w.choice("controller", "job", WORKER_CONTROLLERS),
    concurrency: w.int("concurrency", 4, 1, 1024),
    batch: w.int("batch", 64, 1, 10_000),
    idleTimeoutSeconds: w.int("idleTimeoutSeconds", mode === "fleet" ? 0 : 5, 0, 86_400),
    graceSeconds: w.int("graceSeconds", 10, 0, 3600),
    terminationMarginSeconds: w.int("terminationMarginSeconds", 5, 1, 600),
    backoffLimit: w.int("backoffLimit", 6, 1, 1000),
    resources: w.resources("resources", DEFAULT_RESOURCES.workers),
    runtimeClassName: w.optionalDnsLabel("runtimeClassName"),
    leaseMs: w.optionalInt("leaseMs", 100, 3_600_000),
    heartbeatMs: w.optionalInt("heartbeatMs", 10, 600_000),
    chunkTimeoutSeconds: w.optionalInt("chunkTimeoutSeconds", 1, 86_400),
    logLevel: w.choice("logLevel", "INFO", LOG_LEVELS),
    logFormat: w.choice("logFormat", "json", ["text", "json"] as const),
  };
  if (
    workers.leaseMs !== undefined && workers.heartbeatMs !== undefined &&
    workers.heartbeatMs * 2 > workers.leaseMs
  ) {
    w.problem(
      "heartbeatMs",
      `expected at most half of workers.leaseMs (${workers.leaseMs}), got ${workers.heartbeatMs}`,
    );
  }
  if (workers.controller === "deployment" && workers.idleTimeoutSeconds !== 0) {
    w.problem(
      "idleTimeoutSeconds",
      `expected 0 with workers.controller "deployment" (a Deployment restarts a worker that exits), got ${workers.idleTimeoutSeconds}`,
    );
  }

  const brokerReader = (key: "redis" | "rabbitmq", image: string, storage: string) => {
    const b = top.child(key);
    return {
      reader: b,
      config: {
        image: b.string("image", image, IMAGE, "an image reference"),
        resources: b.resources("resources", DEFAULT_RESOURCES[key]),
        storage: b.quantity("storage", storage, "memory"),
        storageClassName: b.optionalString(
          "storageClassName",
          /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
          "a StorageClass name",
        ),
        password: b.password("password", random),
      },
    };
  };
  const redis = brokerReader("redis", "redis:7.2-alpine", "1Gi").config;
  const rmq = brokerReader("rabbitmq", "rabbitmq:3.13-management", "2Gi");
  const username = rmq.reader.string(
    "username",
    "ttg",
    /^[A-Za-z0-9._-]{1,64}$/,
    "1 to 64 letters, digits, '.', '_' or '-'",
  );
  if (username === "guest") rmq.reader.problem("username", 'expected a user other than "guest"');
  const rabbitmq = {
    ...rmq.config,
    username,
    vhost: rmq.reader.string("vhost", "/", /^[\x21-\x7e]{1,64}$/, "a vhost name"),
    queueType: rmq.reader.choice("queueType", "classic", RABBITMQ_QUEUE_TYPES),
  };

  const t = top.child("tls");
  const tls = {
    secretName: t.optionalString(
      "secretName",
      /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/,
      "a Secret name (a DNS subdomain)",
    ),
  };
  if (tls.secretName !== undefined && mode === "static") {
    t.problem("secretName", 'expected unset with mode "static" (static mode has no broker)');
  }

  const networkPolicy = { enabled: top.child("networkPolicy").boolean("enabled", true) };

  const { keda, reader: k } = resolveKeda(top, {
    mode,
    queueNames: brokerNames(job.id),
    idleTimeoutSeconds: workers.idleTimeoutSeconds,
  });
  const fleet = resolveFleet(top, {
    mode,
    workers: w,
    idleTimeoutSeconds: workers.idleTimeoutSeconds,
    job: j,
    jobId: job.id,
  });

  const observability = resolveObservability(top, {
    mode,
    namespace,
    chunkTimeoutSeconds: workers.chunkTimeoutSeconds,
  });
  if (mode === "fleet" && keda.enabled && !observability.exporter.enabled) {
    k.problem(
      "enabled",
      "expected observability.exporter.enabled true with it (the fleet scales on the exporter's gauges)",
    );
  }

  const dashboard = resolveWebDashboard(top, {
    mode,
    generatedSecretName: names({ name, namespace }).webDashboardToken,
    random,
  });

  return {
    config: {
      name,
      namespace,
      createNamespace,
      backend,
      mode,
      image,
      job,
      workers,
      redis,
      rabbitmq,
      tls,
      networkPolicy,
      keda,
      fleet,
      observability,
      dashboard,
    },
    problems: problems.list,
  };
}
