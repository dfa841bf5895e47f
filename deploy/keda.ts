/**
 * Autoscaling with KEDA: a ScaledJob starts worker Jobs from zero as chunks wait in the queue
 * (Redis: the consumer group's lag, the one redis-streams metric that can scale to zero;
 * RabbitMQ: the task queue's length) and none once it is drained. KEDA's custom resources are
 * not in kubernetes-models, so they are typed here with their own minimal validation; the Job
 * inside is checked against the Job schema.
 *
 * @module
 */
import { type IJobSpec, Job } from "kubernetes-models/batch/v1";
import type { DeploymentConfig } from "./config.ts";
import {
  type CustomResourceMetadata,
  metadataProblems,
  throwIfAny,
  wholeNumberProblems,
} from "./custom_resource.ts";
import { labels, names, serviceHost } from "./labels.ts";
import type { KubeObject } from "./object.ts";
import { PORTS, ttgPodTemplate } from "./pod.ts";

/** API version of KEDA's resources. */
export const KEDA_API_VERSION = "keda.sh/v1alpha1";

/** Object metadata of a KEDA resource. */
export type KedaMetadata = CustomResourceMetadata;

/** One scaler trigger; metadata values are strings, as KEDA requires. */
export interface ScaledJobTrigger {
  readonly type: "redis-streams" | "rabbitmq";
  readonly metadata: Readonly<Record<string, string>>;
  readonly authenticationRef?: { readonly name: string };
}

/** The part of KEDA's ScaledJob spec TTG uses. */
export interface ScaledJobSpec {
  readonly jobTargetRef: IJobSpec;
  readonly pollingInterval: number;
  readonly minReplicaCount: number;
  readonly maxReplicaCount: number;
  readonly successfulJobsHistoryLimit: number;
  readonly failedJobsHistoryLimit: number;
  readonly scalingStrategy: { readonly strategy: "default" | "custom" | "accurate" | "eager" };
  readonly triggers: readonly ScaledJobTrigger[];
}

/** A secret value handed to a trigger parameter. */
export interface SecretTargetRef {
  readonly parameter: string;
  readonly name: string;
  readonly key: string;
}

/** Required trigger metadata per type (what KEDA rejects a trigger without). */
const REQUIRED_METADATA: Readonly<Record<ScaledJobTrigger["type"], readonly string[]>> = {
  "redis-streams": ["address", "stream", "consumerGroup", "lagCount"],
  rabbitmq: ["protocol", "queueName", "mode", "value"],
};

/** KEDA `ScaledJob` (keda.sh/v1alpha1). */
export class ScaledJob implements KubeObject {
  readonly apiVersion: string = KEDA_API_VERSION;
  readonly kind: "ScaledJob" = "ScaledJob";
  readonly metadata: KedaMetadata;
  readonly spec: ScaledJobSpec;

  constructor(data: { metadata: KedaMetadata; spec: ScaledJobSpec }) {
    this.metadata = data.metadata;
    this.spec = data.spec;
  }

  /** Checks counts, triggers and the Job template (against the Job schema). */
  validate(): void {
    const s = this.spec;
    const problems = metadataProblems(this.metadata);
    problems.push(...wholeNumberProblems({
      pollingInterval: s.pollingInterval,
      minReplicaCount: s.minReplicaCount,
      maxReplicaCount: s.maxReplicaCount,
      successfulJobsHistoryLimit: s.successfulJobsHistoryLimit,
      failedJobsHistoryLimit: s.failedJobsHistoryLimit,
    }));
    if (s.pollingInterval < 1) problems.push("spec.pollingInterval must be at least 1");
    if (s.minReplicaCount > s.maxReplicaCount) {
      problems.push("spec.minReplicaCount must not exceed spec.maxReplicaCount");
    }
    if (s.triggers.length === 0) problems.push("spec.triggers must not be empty");
    s.triggers.forEach((trigger, i) => {
      const required = REQUIRED_METADATA[trigger.type];
      if (!required) {
        problems.push(`spec.triggers[${i}].type "${trigger.type}" is not supported`);
        return;
      }
      for (const key of required) {
        if (!trigger.metadata[key]) {
          problems.push(`spec.triggers[${i}].metadata.${key} is required`);
        }
      }
      for (const [key, value] of Object.entries(trigger.metadata)) {
        if (typeof value !== "string") {
          problems.push(`spec.triggers[${i}].metadata.${key} must be a string`);
        }
      }
    });
    try {
      new Job({ metadata: { name: this.metadata.name }, spec: s.jobTargetRef }).validate();
    } catch (error) {
      problems.push(`spec.jobTargetRef: ${error instanceof Error ? error.message : String(error)}`);
    }
    throwIfAny("ScaledJob", problems);
  }
}

/** KEDA `TriggerAuthentication` (keda.sh/v1alpha1): trigger parameters from Secrets. */
export class TriggerAuthentication implements KubeObject {
  readonly apiVersion: string = KEDA_API_VERSION;
  readonly kind: "TriggerAuthentication" = "TriggerAuthentication";
  readonly metadata: KedaMetadata;
  readonly spec: { readonly secretTargetRef: readonly SecretTargetRef[] };

  constructor(
    data: { metadata: KedaMetadata; spec: { secretTargetRef: readonly SecretTargetRef[] } },
  ) {
    this.metadata = data.metadata;
    this.spec = data.spec;
  }

  /** Checks names and that every reference is complete. */
  validate(): void {
    const problems = metadataProblems(this.metadata);
    if (this.spec.secretTargetRef.length === 0) {
      problems.push("spec.secretTargetRef must not be empty");
    }
    this.spec.secretTargetRef.forEach((ref, i) => {
      for (const key of ["parameter", "name", "key"] as const) {
        if (!ref[key]) problems.push(`spec.secretTargetRef[${i}].${key} is required`);
      }
    });
    throwIfAny("TriggerAuthentication", problems);
  }
}

/**
 * The TriggerAuthentication: the Redis password, or the AMQP URL with credentials; with TLS,
 * KEDA's `tls: enable` (from the broker's Secret) and the CA that verifies the broker.
 */
export function kedaTriggerAuthentication(config: DeploymentConfig): TriggerAuthentication {
  const n = names(config);
  const brokerSecret = config.backend === "redis" ? n.redisSecret : n.rabbitmqSecret;
  const credentials: SecretTargetRef = config.backend === "redis"
    ? { parameter: "password", name: brokerSecret, key: "password" }
    : { parameter: "host", name: brokerSecret, key: "amqp-url" };
  const tls: SecretTargetRef[] = config.tls.secretName === undefined ? [] : [
    { parameter: "tls", name: brokerSecret, key: "tls" },
    { parameter: "ca", name: config.tls.secretName, key: "ca.crt" },
  ];
  return new TriggerAuthentication({
    metadata: {
      name: n.kedaAuth,
      namespace: config.namespace,
      labels: labels(config, "autoscaler"),
    },
    spec: { secretTargetRef: [credentials, ...tls] },
  });
}

/** The trigger of the configured backend. */
export function kedaTrigger(config: DeploymentConfig): ScaledJobTrigger {
  const n = names(config);
  const k = config.keda;
  const authenticationRef = { name: n.kedaAuth };
  if (config.backend === "redis") {
    return {
      type: "redis-streams",
      metadata: {
        address: `${serviceHost(n.redis, config.namespace)}:${PORTS.redis}`,
        stream: k.redisStream,
        consumerGroup: k.redisConsumerGroup,
        lagCount: String(k.targetPerWorker),
        activationLagCount: "0",
      },
      authenticationRef,
    };
  }
  return {
    type: "rabbitmq",
    metadata: {
      protocol: "amqp",
      queueName: k.rabbitmqQueue,
      mode: "QueueLength",
      value: String(k.targetPerWorker),
      activationValue: "0",
    },
    authenticationRef,
  };
}

/** One worker per KEDA-started Job; each exits when idle, so the fleet drains to zero. */
export function kedaScaledJob(config: DeploymentConfig): ScaledJob {
  const n = names(config);
  return new ScaledJob({
    metadata: { name: n.worker, namespace: config.namespace, labels: labels(config, "worker") },
    spec: {
      jobTargetRef: {
        parallelism: 1,
        completions: 1,
        backoffLimit: config.workers.backoffLimit,
        template: ttgPodTemplate(config, "worker", { restartPolicy: "Never" }),
      },
      pollingInterval: config.keda.pollingIntervalSeconds,
      minReplicaCount: config.keda.minReplicas,
      maxReplicaCount: config.keda.maxReplicas,
      successfulJobsHistoryLimit: 5,
      failedJobsHistoryLimit: 5,
      // The lag and the ready-queue length leave out chunks already claimed by running
      // workers, the case KEDA's "accurate" strategy is made for.
      scalingStrategy: { strategy: "accurate" },
      triggers: [kedaTrigger(config)],
    },
  });
}
