/**
 * The props of a deployment: every field optional and documented with its default. What they
 * resolve to, and how they are checked, is deploy/config.ts.
 *
 * @module
 */

/** Brokers a deployment can run. */
export const BACKENDS = ["redis", "rabbitmq"] as const;
/** One of {@linkcode BACKENDS}. */
export type Backend = typeof BACKENDS[number];
/**
 * `queue`: one sweep, submitted by a Job, run by workers that exit once it is drained.
 * `static`: an Indexed Job, no broker. `fleet`: a standing worker Deployment that serves every
 * job on the broker (`ttg worker --all-jobs`), also jobs submitted after it started.
 */
export const MODES = ["queue", "static", "fleet"] as const;
/** One of {@linkcode MODES}. */
export type Mode = typeof MODES[number];
/**
 * What runs the queue-mode workers: one Job (parallelism = count), standalone Pods (each one
 * independent: the fault demo deletes one and the others finish; a Job with backoffLimit 0
 * fails every pod on one failure), or a Deployment (long-lived workers, idle timeout 0).
 */
export const WORKER_CONTROLLERS = ["job", "pods", "deployment"] as const;
/** One of {@linkcode WORKER_CONTROLLERS}. */
export type WorkerController = typeof WORKER_CONTROLLERS[number];
/** Image pull policies. */
export const PULL_POLICIES = ["Always", "IfNotPresent", "Never"] as const;
/** Log levels the worker accepts (docs/SETTINGS.md). */
export const LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"] as const;

/** RabbitMQ task queue types (the worker's `TTG_RABBITMQ_QUEUE_TYPE`). */
export const RABBITMQ_QUEUE_TYPES = ["classic", "quorum"] as const;

/** CPU and memory requests and limits (Kubernetes quantities). */
export interface ResourcesProps {
  readonly cpuRequest?: string;
  readonly cpuLimit?: string;
  readonly memoryRequest?: string;
  readonly memoryLimit?: string;
}

/** The TTG image (built by `deno task image`). */
export interface ImageProps {
  /** @default "ttg" */
  readonly repository?: string;
  /** @default "dev" */
  readonly tag?: string;
  /** @default "IfNotPresent" (an image loaded into Kind is found on the node) */
  readonly pullPolicy?: typeof PULL_POLICIES[number];
}

/** The sweep to run (in fleet mode: the job that `fleet.submit` or the printed command submits). */
export interface JobProps {
  /** Job id, the broker namespace of every queue and result. @default "ttg" */
  readonly id?: string;
  /** Parameters of the sweep. @default 10000 */
  readonly params?: number;
  /** Parameters per chunk. @default 100 */
  readonly chunkSize?: number;
  /** Simulated work per parameter, in ms. @default 1 (the worker's default) */
  readonly workMs?: number;
  /** Probability that a chunk attempt fails (fault injection). @default 0 */
  readonly faultRate?: number;
  /** Job module path or URL inside the image (TTG_JOB_MODULE); unset runs the built-in sweep. */
  readonly module?: string;
  /**
   * The handler program and its arguments (TTG_CMD, as a JSON array: no shell), e.g.
   * `["python3", "/app/sim.py"]` in an image built FROM a Python image (README); unset runs a
   * TypeScript job.
   */
  readonly command?: readonly string[];
  /** Attempts per chunk before dead-lettering; unset keeps the worker's default. */
  readonly maxAttempts?: number;
}

/** The worker fleet. */
export interface WorkersProps {
  /** Workers (pods) in queue and fleet mode (without KEDA); indexes in static mode. @default 3 */
  readonly count?: number;
  /** Queue mode only (a fleet is always a Deployment). @default "job" */
  readonly controller?: WorkerController;
  /** Chunks a worker runs at once. @default 4 */
  readonly concurrency?: number;
  /** Chunks pulled per broker call. @default 64 */
  readonly batch?: number;
  /** A worker exits after this long without work; 0 never (always 0 in fleet mode). @default 5 */
  readonly idleTimeoutSeconds?: number;
  /** Time a stopping worker gets to finish its chunks. @default 10 */
  readonly graceSeconds?: number;
  /** Added to the grace period for the pod's terminationGracePeriodSeconds. @default 5 */
  readonly terminationMarginSeconds?: number;
  /**
   * Pod failures a worker Job tolerates (never 0: one failure would fail every pod); not in
   * fleet mode, whose Deployment restarts its pods. @default 6
   */
  readonly backoffLimit?: number;
  /**
   * @default 100m/500m CPU, 128Mi/192Mi memory (a worker's peak RSS is flat near 110 MB with its
   * metrics endpoint: README "Performance")
   */
  readonly resources?: ResourcesProps;
  /** RuntimeClass for untrusted handlers, e.g. `gvisor`; unset uses the cluster default. */
  readonly runtimeClassName?: string;
  /** Lease of a claimed chunk, in ms; unset keeps the worker's default. */
  readonly leaseMs?: number;
  /** Lease renewal interval, in ms; unset keeps the worker's default. */
  readonly heartbeatMs?: number;
  /** Per-chunk timeout, in seconds; unset keeps the worker's default. */
  readonly chunkTimeoutSeconds?: number;
  /** @default "INFO" */
  readonly logLevel?: typeof LOG_LEVELS[number];
  /** @default "json" (one object per line, for log collectors) */
  readonly logFormat?: "text" | "json";
}

/** The broker's pod and storage. */
export interface BrokerProps {
  /** @default "redis:7.2-alpine" / "rabbitmq:3.13-management" */
  readonly image?: string;
  /** @default Redis 100m/500m, 128Mi/256Mi; RabbitMQ 200m/1000m, 256Mi/1Gi */
  readonly resources?: ResourcesProps;
  /** Size of the data volume. @default "1Gi" (Redis), "2Gi" (RabbitMQ) */
  readonly storage?: string;
  /** StorageClass of the data volume; unset uses the cluster default. */
  readonly storageClassName?: string;
  /** Broker password; unset generates a random one at synth time. */
  readonly password?: string;
}

/** Redis (AOF on, password required). */
export type RedisProps = BrokerProps;

/** RabbitMQ (credentials never guest/guest). */
export interface RabbitMQProps extends BrokerProps {
  /** @default "ttg" */
  readonly username?: string;
  /** @default "/" */
  readonly vhost?: string;
  /**
   * Task queues: `classic` (priorities 0–10) or `quorum` (replicated, every delivery counted
   * toward the attempts, no priorities). @default "classic"
   */
  readonly queueType?: typeof RABBITMQ_QUEUE_TYPES[number];
}

/** TLS between TTG pods (and KEDA) and the broker. */
export interface TlsProps {
  /**
   * A Secret in the namespace with `tls.crt`, `tls.key` and `ca.crt` (what cert-manager
   * writes) whose certificate names the broker's Service, `<name>-redis.<namespace>.svc` or
   * `<name>-rabbitmq.<namespace>.svc`. Set, the broker speaks TLS only (RabbitMQ on 5671) and
   * every TTG pod verifies it against `ca.crt`; unset, traffic inside the cluster is plain TCP,
   * limited to TTG pods by the NetworkPolicy.
   */
  readonly secretName?: string;
}

/** NetworkPolicy: only TTG pods (and the KEDA operator, when on) reach the broker. */
export interface NetworkPolicyProps {
  /** @default true */
  readonly enabled?: boolean;
}

/**
 * KEDA. Queue mode: a ScaledJob starts workers from zero with the job's queue and none once it
 * is drained. Fleet mode: a ScaledObject scales the fleet's Deployment, down to zero, on the
 * backlog of every job it serves, read from the exporter's gauges through Prometheus.
 */
export interface KedaProps {
  /** @default false */
  readonly enabled?: boolean;
  /** Namespace the KEDA operator runs in (allowed through the NetworkPolicy). @default "keda" */
  readonly namespace?: string;
  /** @default 0 */
  readonly minReplicas?: number;
  /** @default 10 */
  readonly maxReplicas?: number;
  /** @default 5 */
  readonly pollingIntervalSeconds?: number;
  /**
   * Waiting chunks per worker (queue mode: Redis lagCount, RabbitMQ QueueLength value; fleet
   * mode: the backlog per fleet pod). @default 10
   */
  readonly targetPerWorker?: number;
  /**
   * Fleet mode: the Prometheus that scrapes the exporter (with a `namespace` label, as the
   * Operator's monitors give) and that KEDA's prometheus scaler asks for the backlog.
   * @default "http://prometheus-operated.monitoring.svc:9090" (the Prometheus Operator's Service in namespace monitoring)
   */
  readonly prometheusUrl?: string;
  /** Redis stream of the job's tasks. @default from the job id: "ttg:tasks", "ttg:<id>:tasks" */
  readonly redisStream?: string;
  /** Redis consumer group. @default "ttg-workers" */
  readonly redisConsumerGroup?: string;
  /** RabbitMQ task queue. @default from the job id: "ttg.tasks", "ttg.<id>.tasks" */
  readonly rabbitmqQueue?: string;
}

/**
 * Fleet mode: the standing workers that serve every job of the broker (`ttg worker --all-jobs`,
 * idle timeout 0), each job with the handler its record names.
 */
export interface FleetProps {
  /** Serve only the jobs whose id matches this glob (`ttg worker --jobs`); unset serves every job. */
  readonly jobs?: string;
  /**
   * Where the image holds job modules (`ttg worker --jobs-dir`): a job submitted with
   * `--job my_jobs/sum.ts` runs `<jobsDir>/my_jobs/sum.ts`. @default "/jobs"
   */
  readonly jobsDir?: string;
  /** Also generate a one-off Job that runs `ttg submit` for the `job` block. @default false */
  readonly submit?: boolean;
}

/**
 * What scrapes TTG's metrics: `none` (the pods' `prometheus.io/*` annotations, for a
 * Prometheus that discovers pods by them), or the Prometheus Operator's `servicemonitor`
 * (the exporter's Service) or `podmonitor` (worker pods and the exporter).
 */
export const PROMETHEUS_OPERATOR_KINDS = ["none", "servicemonitor", "podmonitor"] as const;
/** One of {@linkcode PROMETHEUS_OPERATOR_KINDS}. */
export type PrometheusOperatorKind = typeof PROMETHEUS_OPERATOR_KINDS[number];

/** The queue exporter: one `ttg exporter` per broker, serving the queue-level gauges. */
export interface ExporterProps {
  /** @default true in queue and fleet mode (static mode has no broker, so no exporter) */
  readonly enabled?: boolean;
  /** @default 50m/200m CPU, 128Mi/256Mi memory */
  readonly resources?: ResourcesProps;
}

/**
 * Thresholds of the generated alert rules (deploy/alerts.ts). Each alert is scoped to a job
 * (`job_id`, `backend`); those on the exporter's gauges fire only while the job is running.
 */
export interface AlertsProps {
  /** Ready chunks above which a job whose completed count stands still is backing up. @default 100 */
  readonly queueBackupReadyChunks?: number;
  /** TTGQueueBackingUp: minutes with ready chunks and no chunk completed. @default 15 */
  readonly queueBackupMinutes?: number;
  /** TTGReadyWithoutConsumers: minutes with ready chunks and no consumer. @default 5 */
  readonly readyWithoutConsumersMinutes?: number;
  /** TTGDeadLettersGrowing: new dead letters per minute, averaged over the window, above which it fires. @default 0 (any) */
  readonly deadLetterGrowthPerMinute?: number;
  /** TTGDeadLettersGrowing: the window the growth is measured over, in minutes. @default 10 */
  readonly deadLetterWindowMinutes?: number;
  /** TTGWorkersLost: minutes a running job has had a lost worker. @default 5 */
  readonly workerLostMinutes?: number;
  /** TTGWorkerRestarts: container restarts of one TTG pod within the window. @default 3 */
  readonly workerRestarts?: number;
  /** TTGWorkerRestarts: the window, in minutes. @default 15 */
  readonly workerRestartWindowMinutes?: number;
  /** TTGLeaseReclaimsSpiking: reclaimed chunks per second (5-minute rate) above which it fires. @default 0.1 */
  readonly reclaimRatePerSecond?: number;
  /** TTGLeaseReclaimsSpiking: minutes the rate stays above the threshold. @default 10 */
  readonly reclaimMinutes?: number;
  /** TTGPriorityStarvation: age of a band's oldest ready chunk, in seconds, while a higher band is served. @default 900 */
  readonly starvationSeconds?: number;
  /**
   * TTGJobStuck: minutes with chunks in flight and none completed. Must exceed the chunk timeout
   * (a chunk may run that long). @default 15
   */
  readonly stuckMinutes?: number;
  /** Base URL of a runbook page; each alert gets `runbook_url` `<base>#<alert name, lower case>`. */
  readonly runbookUrl?: string;
}

/** Metrics, scraping, alert rules and the Grafana dashboard. */
export interface ObservabilityProps {
  /** Port of `/metrics`, `/healthz` and `/readyz` on workers and the exporter. @default 9464 */
  readonly metricsPort?: number;
  /** @default "none" */
  readonly prometheusOperator?: PrometheusOperatorKind;
  /** Scrape interval of the ServiceMonitor or PodMonitor, in seconds. @default 30 */
  readonly scrapeIntervalSeconds?: number;
  /**
   * Extra labels on the ServiceMonitor, PodMonitor and PrometheusRule, for the operator's
   * selectors (kube-prometheus-stack selects `release: <its release name>`). @default {}
   */
  readonly monitorLabels?: Readonly<Record<string, string>>;
  readonly exporter?: ExporterProps;
  /** A ConfigMap with the dashboard for Grafana's sidecar (label `grafana_dashboard: "1"`). @default true in queue and fleet mode */
  readonly grafanaDashboard?: boolean;
  /** Namespace of the dashboard ConfigMap (where the sidecar looks). @default the deployment's namespace */
  readonly dashboardNamespace?: string;
  readonly alerts?: AlertsProps;
}

/**
 * The web dashboard: `ttg dashboard` as a Deployment of one pod behind a ClusterIP Service,
 * reached with `kubectl port-forward`. It listens on all of the pod's addresses, so every API
 * request needs its token, which it reads from a Secret (`TTG_DASHBOARD_TOKEN` by
 * `secretKeyRef`).
 */
export interface DashboardProps {
  /** @default false */
  readonly enabled?: boolean;
  /** Port of the container and the Service. @default 8080 */
  readonly port?: number;
  /** Serve cancel, pause, resume, replay and purge (each with the token). @default false */
  readonly allowActions?: boolean;
  /**
   * A Secret in the namespace that holds the token (16 to 256 URL-safe characters), which you
   * create; unset: the Secret `<name>-dashboard-token` is generated with a random token.
   */
  readonly tokenSecretName?: string;
  /** The token's key in `tokenSecretName`. @default "token" */
  readonly tokenSecretKey?: string;
  /** @default 50m/250m CPU, 96Mi/256Mi memory */
  readonly resources?: ResourcesProps;
}

/**
 * Everything that describes a deployment; every field is optional.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { DeploymentProps } from "./config.ts";
 * const props: DeploymentProps = {
 *   backend: "rabbitmq",
 *   workers: { count: 5, resources: { cpuLimit: "1" } },
 *   job: { params: 100_000, chunkSize: 500 },
 * };
 * assert.equal(props.workers?.count, 5);
 * ```
 */
export interface DeploymentProps {
  /** Prefix of every object name and the `app.kubernetes.io/instance` label. @default "ttg" */
  readonly name?: string;
  /** @default "ttg" */
  readonly namespace?: string;
  /**
   * Generate the Namespace object (labelled as ours, so cleanup deletes it). Never for
   * `default`; the deploy task turns it off for a namespace that exists and is not ours.
   * @default true
   */
  readonly createNamespace?: boolean;
  /** @default "redis" */
  readonly backend?: Backend;
  /** @default "queue" */
  readonly mode?: Mode;
  /** Fleet mode only. */
  readonly fleet?: FleetProps;
  readonly image?: ImageProps;
  readonly job?: JobProps;
  readonly workers?: WorkersProps;
  readonly redis?: RedisProps;
  readonly rabbitmq?: RabbitMQProps;
  readonly tls?: TlsProps;
  readonly networkPolicy?: NetworkPolicyProps;
  readonly keda?: KedaProps;
  readonly observability?: ObservabilityProps;
  readonly dashboard?: DashboardProps;
}
