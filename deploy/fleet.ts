/**
 * Fleet mode's workers: one standing Deployment of `ttg worker --all-jobs` (or `--jobs GLOB`)
 * with idle timeout 0, which serves every job on the broker, also jobs submitted after it
 * started, each with the handler its record names (a built-in, or a module under the image's
 * `--jobs-dir`). Its pods are `ttg` pods like every other: the same hardening, broker
 * credentials from Secrets, probes on the metrics port (it runs for as long as the Deployment).
 * With KEDA, a ScaledObject owns its replica count (deploy/keda_fleet.ts), so the Deployment
 * states none: each `kubectl apply` would otherwise reset what the autoscaler chose.
 *
 * @module
 */
import { Deployment } from "kubernetes-models/apps/v1";
import type { IEnvVar } from "kubernetes-models/v1";
import type { DeploymentConfig } from "./config.ts";
import { labels, names, selectorLabels } from "./labels.ts";
import { metricsEnv } from "./metrics.ts";
import { brokerEnv, commonEnv, ttgPodTemplate, workerEnv } from "./pod.ts";

/**
 * The fleet worker's `ttg` arguments. They are flags rather than variables so that the pod's
 * spec shows what it serves; the idle timeout is 0 because a worker that exits when idle would be
 * restarted by the Deployment (and a fleet waits for jobs not submitted yet).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveConfig } from "./config.ts";
 * import { fleetWorkerArgs } from "./fleet.ts";
 * const { config } = resolveConfig({ mode: "fleet" });
 * assert.equal(
 *   fleetWorkerArgs(config).join(" "),
 *   "worker --all-jobs --jobs-dir /jobs --idle-timeout 0",
 * );
 * ```
 */
export function fleetWorkerArgs(config: DeploymentConfig): string[] {
  const { jobs, jobsDir } = config.fleet;
  return [
    "worker",
    ...(jobs === undefined ? ["--all-jobs"] : ["--jobs", jobs]),
    "--jobs-dir",
    jobsDir,
    "--idle-timeout",
    "0",
  ];
}

/**
 * The fleet worker's environment: the broker, how it runs (concurrency, batch, grace, lease
 * tuning; not the idle timeout, which its arguments set), its metrics port, logging and identity.
 * No job settings: each job's come from its record.
 */
export function fleetWorkerEnv(config: DeploymentConfig): IEnvVar[] {
  return [
    ...brokerEnv(config),
    ...workerEnv(config).filter((e) => e.name !== "TTG_IDLE_TIMEOUT_SECONDS"),
    ...metricsEnv(config),
    ...commonEnv(config),
  ];
}

/** The fleet's Deployment: `workers.count` replicas, or as many as KEDA's ScaledObject says. */
export function fleetDeployment(config: DeploymentConfig): Deployment {
  return new Deployment({
    metadata: {
      name: names(config).fleet,
      namespace: config.namespace,
      labels: labels(config, "worker"),
    },
    spec: {
      ...(config.keda.enabled ? {} : { replicas: config.workers.count }),
      selector: { matchLabels: selectorLabels(config, "worker") },
      template: ttgPodTemplate(config, "worker", {
        restartPolicy: "Always",
        probes: true,
        args: fleetWorkerArgs(config),
        env: fleetWorkerEnv(config),
      }),
    },
  });
}
