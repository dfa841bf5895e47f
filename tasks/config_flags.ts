/**
 * The flags the Kubernetes tasks share (`--backend`, `--workers`, …) and how they become
 * {@linkcode DeploymentProps}. Only syntax is checked here (a number is a number); ranges and
 * combinations are checked by deploy/config.ts, whose problems name the config field, to which
 * {@linkcode FLAG_FOR_FIELD} adds the flag.
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };
import type { DeploymentProps } from "../deploy/config.ts";
import { UsageError } from "./command.ts";

/** node:util parseArgs options of the shared flags. */
export const CONFIG_FLAGS = {
  backend: { type: "string" },
  mode: { type: "string" },
  workers: { type: "string" },
  controller: { type: "string" },
  params: { type: "string" },
  "chunk-size": { type: "string" },
  "work-ms": { type: "string" },
  "fault-rate": { type: "string" },
  "idle-timeout": { type: "string" },
  "job-id": { type: "string" },
  name: { type: "string" },
  namespace: { type: "string" },
  image: { type: "string" },
  tag: { type: "string" },
  "runtime-class": { type: "string" },
  keda: { type: "boolean" },
  jobs: { type: "string" },
  "jobs-dir": { type: "string" },
  submit: { type: "boolean" },
  "prometheus-url": { type: "string" },
  "no-network-policy": { type: "boolean" },
  "tls-secret": { type: "string" },
  "rabbitmq-queue-type": { type: "string" },
  "prometheus-operator": { type: "string" },
  "metrics-port": { type: "string" },
} as const;

/** The config field each flag sets (for messages). */
export const FLAG_FOR_FIELD: Readonly<Record<string, string>> = {
  backend: "--backend",
  mode: "--mode",
  "workers.count": "--workers",
  "workers.controller": "--controller",
  "job.params": "--params",
  "job.chunkSize": "--chunk-size",
  "job.workMs": "--work-ms",
  "job.faultRate": "--fault-rate",
  "workers.idleTimeoutSeconds": "--idle-timeout",
  "job.id": "--job-id",
  name: "--name",
  namespace: "--namespace",
  "image.repository": "--image",
  "image.tag": "--tag",
  "workers.runtimeClassName": "--runtime-class",
  "keda.enabled": "--keda",
  "keda.prometheusUrl": "--prometheus-url",
  "fleet.jobs": "--jobs",
  "fleet.jobsDir": "--jobs-dir",
  "fleet.submit": "--submit",
  "tls.secretName": "--tls-secret",
  "rabbitmq.queueType": "--rabbitmq-queue-type",
  "observability.prometheusOperator": "--prometheus-operator",
  "observability.metricsPort": "--metrics-port",
};

/** Values of the shared flags as parseArgs returns them. */
export type ConfigFlagValues = {
  readonly [K in keyof typeof CONFIG_FLAGS]?: (typeof CONFIG_FLAGS)[K]["type"] extends "boolean"
    ? boolean
    : string;
};

/** The project version (deno.json), the default image tag of the tasks. */
export const PROJECT_VERSION: string = denoJson.version;

function numberFlag(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(value)) {
    throw new UsageError(`Invalid "--${name}": expected a number, got "${raw}"`);
  }
  return value;
}

/**
 * Props from flags, on top of `base`. The image tag defaults to the project version (what
 * `deno task image` tags and `deno task cluster up` loads).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { propsFromFlags } from "./config_flags.ts";
 * const props = propsFromFlags({ backend: "rabbitmq", workers: "5" });
 * assert.equal(props.backend, "rabbitmq");
 * assert.equal(props.workers?.count, 5);
 * ```
 */
export function propsFromFlags(
  flags: ConfigFlagValues,
  base: DeploymentProps = {},
): DeploymentProps {
  const defined = <T extends object>(o: T): T =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  return {
    ...base,
    ...defined({
      backend: flags.backend as DeploymentProps["backend"],
      mode: flags.mode as DeploymentProps["mode"],
      name: flags.name,
      namespace: flags.namespace,
    }),
    image: {
      ...base.image,
      ...defined({ repository: flags.image, tag: flags.tag ?? base.image?.tag ?? PROJECT_VERSION }),
    },
    job: {
      ...base.job,
      ...defined({
        id: flags["job-id"],
        params: numberFlag("params", flags.params),
        chunkSize: numberFlag("chunk-size", flags["chunk-size"]),
        workMs: numberFlag("work-ms", flags["work-ms"]),
        faultRate: numberFlag("fault-rate", flags["fault-rate"]),
      }),
    },
    workers: {
      ...base.workers,
      ...defined({
        count: numberFlag("workers", flags.workers),
        controller: flags.controller as NonNullable<DeploymentProps["workers"]>["controller"],
        idleTimeoutSeconds: numberFlag("idle-timeout", flags["idle-timeout"]),
        runtimeClassName: flags["runtime-class"],
      }),
    },
    ...(flags.keda === undefined && flags["prometheus-url"] === undefined ? {} : {
      keda: {
        ...base.keda,
        ...defined({ enabled: flags.keda, prometheusUrl: flags["prometheus-url"] }),
      },
    }),
    ...(flags.jobs === undefined && flags["jobs-dir"] === undefined && flags.submit === undefined
      ? {}
      : {
        fleet: {
          ...base.fleet,
          ...defined({ jobs: flags.jobs, jobsDir: flags["jobs-dir"], submit: flags.submit }),
        },
      }),
    ...(flags["tls-secret"] === undefined
      ? {}
      : { tls: { ...base.tls, secretName: flags["tls-secret"] } }),
    ...(flags["rabbitmq-queue-type"] === undefined ? {} : {
      rabbitmq: {
        ...base.rabbitmq,
        queueType: flags["rabbitmq-queue-type"] as NonNullable<
          DeploymentProps["rabbitmq"]
        >["queueType"],
      },
    }),
    ...(flags["no-network-policy"] ? { networkPolicy: { enabled: false } } : {}),
    ...(flags["prometheus-operator"] === undefined && flags["metrics-port"] === undefined ? {} : {
      observability: {
        ...base.observability,
        ...defined({
          prometheusOperator: flags["prometheus-operator"] as NonNullable<
            DeploymentProps["observability"]
          >["prometheusOperator"],
          metricsPort: numberFlag("metrics-port", flags["metrics-port"]),
        }),
      },
    }),
  };
}

/** Usage lines of the shared flags. */
export const CONFIG_FLAGS_USAGE = `Deployment flags:
  --backend redis|rabbitmq      broker (default redis)
  --mode queue|static|fleet     one sweep on queue workers (default), an Indexed Job with no
                                broker, or a standing fleet that serves every job submitted to it
  --workers N                   worker pods (default 3)
  --controller job|pods|deployment
                                what runs queue workers (default job)
  --params N  --chunk-size N  --work-ms MS  --fault-rate P  --idle-timeout S
  --job-id ID  --name NAME  --namespace NS (default ttg)
  --image REPO  --tag TAG       worker image (default ttg:${PROJECT_VERSION})
  --runtime-class NAME          e.g. gvisor, for untrusted handlers
  --keda                        autoscale workers with KEDA (a ScaledJob; in fleet mode a
                                ScaledObject on the backlog of every job, down to zero)
  --prometheus-url URL          fleet mode with --keda: the Prometheus that scrapes the exporter
                                (default http://prometheus-operated.monitoring.svc:9090)
  --jobs GLOB                   fleet mode: serve only the jobs whose id matches (default all)
  --jobs-dir DIR                fleet mode: the image's directory of job modules (default /jobs)
  --submit                      fleet mode: also submit the --job-id sweep with a one-off Job
  --no-network-policy           do not restrict access to the broker
  --tls-secret NAME             TLS to the broker with the certificate in Secret NAME
                                (tls.crt, tls.key, ca.crt, e.g. from cert-manager)
  --rabbitmq-queue-type classic|quorum
                                RabbitMQ task queues (default classic, with priorities)
  --prometheus-operator none|servicemonitor|podmonitor
                                scrape by pod annotations (default none), or with the
                                Prometheus Operator: a ServiceMonitor on the exporter or a
                                PodMonitor on workers and exporter, plus a PrometheusRule
  --metrics-port N              port of /metrics on workers and the exporter (default 9464)`;
