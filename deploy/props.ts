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
/** `queue`: workers pull chunks from the broker. `static`: an Indexed Job, no broker. */
export const MODES = ["queue", "static"] as const;
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

/** The sweep to run. */
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
  /** Attempts per chunk before dead-lettering; unset keeps the worker's default. */
  readonly maxAttempts?: number;
}

/** The worker fleet. */
export interface WorkersProps {
  /** Workers (pods) in queue mode; indexes in static mode. @default 3 */
  readonly count?: number;
  /** @default "job" */
  readonly controller?: WorkerController;
  /** Chunks a worker runs at once. @default 4 */
  readonly concurrency?: number;
  /** Chunks pulled per broker call. @default 64 */
  readonly batch?: number;
  /** A worker exits after this long without work; 0 never. @default 5 */
  readonly idleTimeoutSeconds?: number;
  /** Time a stopping worker gets to finish its chunks. @default 10 */
  readonly graceSeconds?: number;
  /** Added to the grace period for the pod's terminationGracePeriodSeconds. @default 5 */
  readonly terminationMarginSeconds?: number;
  /** Pod failures a Job tolerates (never 0: one failure would fail every pod). @default 6 */
  readonly backoffLimit?: number;
  /** @default 100m/500m CPU, 128Mi/256Mi memory */
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

/** KEDA ScaledJob: workers scale from zero with the queue and back to zero when drained. */
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
  /** Waiting chunks per worker job (Redis lagCount, RabbitMQ QueueLength value). @default 10 */
  readonly targetPerWorker?: number;
  /** Redis stream of the job's tasks. @default from the job id: "ttg:tasks", "ttg:<id>:tasks" */
  readonly redisStream?: string;
  /** Redis consumer group. @default "ttg-workers" */
  readonly redisConsumerGroup?: string;
  /** RabbitMQ task queue. @default from the job id: "ttg.tasks", "ttg.<id>.tasks" */
  readonly rabbitmqQueue?: string;
}

/**
 * Everything that describes a deployment; every field is optional.
 *
 * @example
 * ```ts
 * import type { DeploymentProps } from "./config.ts";
 * const props: DeploymentProps = {
 *   backend: "rabbitmq",
 *   workers: { count: 5, resources: { cpuLimit: "1" } },
 *   job: { params: 100_000, chunkSize: 500 },
 * };
 * console.assert(props.workers?.count === 5);
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
  readonly image?: ImageProps;
  readonly job?: JobProps;
  readonly workers?: WorkersProps;
  readonly redis?: RedisProps;
  readonly rabbitmq?: RabbitMQProps;
  readonly tls?: TlsProps;
  readonly networkPolicy?: NetworkPolicyProps;
  readonly keda?: KedaProps;
}
