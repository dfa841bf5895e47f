/**
 * One-shot Jobs around the workers: the submit Job enqueues the sweep once (`ttg submit` is
 * idempotent per job id, so a retried or re-applied submit enqueues nothing twice), and the
 * report Job prints the job report (`ttg results`) once the workers are done; the progress Job
 * prints the job's counters as JSON (`ttg status --json`) for tasks that follow a run.
 *
 * In fleet mode they run in the image's jobs directory, the one the fleet resolves a job's
 * module against (`--jobs-dir`): a relative `job.module` then names the same file when it is
 * submitted, run by the fleet and reduced by the report.
 *
 * @module
 */
import { Job } from "kubernetes-models/batch/v1";
import type { DeploymentConfig } from "./config.ts";
import { labels, names } from "./labels.ts";
import { type TtgPodOptions, ttgPodTemplate } from "./pod.ts";

/** Retries of the submit Job while the broker comes up (safe: submit is idempotent). */
const SUBMIT_BACKOFF_LIMIT = 4;

/** Where a one-shot Job runs: the jobs directory in fleet mode. */
function oneShot(config: DeploymentConfig): TtgPodOptions & { readonly restartPolicy: "Never" } {
  return {
    restartPolicy: "Never",
    ...(config.mode === "fleet" ? { workingDir: config.fleet.jobsDir } : {}),
  };
}

/** The Job that runs `ttg submit`. */
export function submitJob(config: DeploymentConfig): Job {
  return new Job({
    metadata: {
      name: names(config).submit,
      namespace: config.namespace,
      labels: labels(config, "submit"),
    },
    spec: {
      backoffLimit: SUBMIT_BACKOFF_LIMIT,
      completions: 1,
      parallelism: 1,
      template: ttgPodTemplate(config, "submit", oneShot(config)),
    },
  });
}

/** The Job that runs `ttg results` against the broker: the job report. */
export function reportJob(config: DeploymentConfig): Job {
  return new Job({
    metadata: {
      name: names(config).report,
      namespace: config.namespace,
      labels: labels(config, "report"),
    },
    spec: {
      backoffLimit: 1,
      completions: 1,
      parallelism: 1,
      template: ttgPodTemplate(config, "report", oneShot(config)),
    },
  });
}

/** The Job that runs `ttg status --json` (polled by the fault demo and long-lived workers). */
export function progressJob(config: DeploymentConfig): Job {
  return new Job({
    metadata: {
      name: `${names(config).report}-progress`,
      namespace: config.namespace,
      labels: labels(config, "report"),
    },
    spec: {
      backoffLimit: 1,
      completions: 1,
      parallelism: 1,
      template: ttgPodTemplate(config, "progress", oneShot(config)),
    },
  });
}
