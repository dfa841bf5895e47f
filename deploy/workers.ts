/**
 * The worker fleet. Queue mode: a work-queue Job (parallelism = workers, no completion count:
 * the Job is done when the workers have drained the queue and exited), standalone Pods (for the
 * fault demo: each pod is independent, where a Job with backoffLimit 0 fails all of them on one
 * failure), or a Deployment. Static mode: an Indexed Job whose pods each compute their own
 * range from JOB_COMPLETION_INDEX, which the Job controller sets; no broker.
 *
 * @module
 */
import { Deployment } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { Pod } from "kubernetes-models/v1";
import type { DeploymentConfig } from "./config.ts";
import { labels, names, selectorLabels } from "./labels.ts";
import { ttgPodTemplate } from "./pod.ts";

/** The queue-mode work-queue Job. */
export function workerJob(config: DeploymentConfig): Job {
  return new Job({
    metadata: {
      name: names(config).worker,
      namespace: config.namespace,
      labels: labels(config, "worker"),
    },
    spec: {
      parallelism: config.workers.count,
      backoffLimit: config.workers.backoffLimit,
      template: ttgPodTemplate(config, "worker", { restartPolicy: "Never" }),
    },
  });
}

/** Standalone worker Pods `<name>-worker-0` … `<name>-worker-(n-1)`. */
export function workerPods(config: DeploymentConfig): Pod[] {
  const template = ttgPodTemplate(config, "worker", { restartPolicy: "Never" });
  return Array.from({ length: config.workers.count }, (_, i) =>
    new Pod({
      metadata: {
        name: `${names(config).worker}-${i}`,
        namespace: config.namespace,
        labels: labels(config, "worker"),
        annotations: template.metadata?.annotations,
      },
      spec: template.spec,
    }));
}

/**
 * Long-lived workers (idle timeout 0) that a Deployment keeps at `workers.count`; the only
 * workers with readiness and liveness probes (deploy/metrics.ts says why).
 */
export function workerDeployment(config: DeploymentConfig): Deployment {
  return new Deployment({
    metadata: {
      name: names(config).worker,
      namespace: config.namespace,
      labels: labels(config, "worker"),
    },
    spec: {
      replicas: config.workers.count,
      selector: { matchLabels: selectorLabels(config, "worker") },
      template: ttgPodTemplate(config, "worker", { restartPolicy: "Always", probes: true }),
    },
  });
}

/** The queue-mode workers of the configured controller. */
export function queueWorkers(config: DeploymentConfig): (Job | Pod | Deployment)[] {
  switch (config.workers.controller) {
    case "job":
      return [workerJob(config)];
    case "pods":
      return workerPods(config);
    case "deployment":
      return [workerDeployment(config)];
  }
}

/** Static mode: one Indexed Job, `workers.count` indexes, each pod its own range. */
export function staticJob(config: DeploymentConfig): Job {
  return new Job({
    metadata: {
      name: names(config).static,
      namespace: config.namespace,
      labels: labels(config, "static"),
    },
    spec: {
      completionMode: "Indexed",
      completions: config.workers.count,
      parallelism: config.workers.count,
      backoffLimit: config.workers.backoffLimit,
      template: ttgPodTemplate(config, "static", { restartPolicy: "Never" }),
    },
  });
}
