/**
 * How to submit work to a fleet from a laptop: forward a local port to the broker's Service
 * with `kubectl port-forward`, then run `ttg submit` with the broker's password read from its
 * Secret (the password is never printed: the command reads it when it runs). The deploy task
 * prints it after a fleet deploy; `--target local` prints the same command for the local broker
 * (no forward, the local credentials), which the local emulation test runs as printed.
 *
 * The forward uses a local port 10000 above the broker's (16379, 15672): a laptop's own broker on
 * the usual port is then never silently used instead, and a clash fails loudly.
 *
 * @module
 */
import type { DeploymentConfig } from "../deploy/config.ts";
import { names } from "../deploy/labels.ts";
import { portForwardArgv, secretValueArgv } from "../deploy/kubectl.ts";
import { PORTS } from "../deploy/pod.ts";
import { shellQuote } from "./command.ts";

/** One variable of the submit command: a value, or a Secret's key read with kubectl. */
export type SubmitVariable =
  | { readonly name: string; readonly value: string }
  | { readonly name: string; readonly secret: string; readonly key: string };

/** A submit command: the forward to run first (if any), the variables, the command. */
export interface SubmitCommand {
  /** `kubectl port-forward …`, in a terminal of its own; undefined for a local broker. */
  readonly portForward: readonly string[] | undefined;
  readonly env: readonly SubmitVariable[];
  /** `deno task ttg submit …` */
  readonly argv: readonly string[];
}

/** How the submitter reaches the broker: through a forward to the cluster, or directly. */
export type SubmitRoute = "port-forward" | "local";

/** What is added to the broker's port for the forward's local port. */
export const FORWARD_PORT_OFFSET = 10_000;

/**
 * The `ttg submit` of the config's `job` block against its broker. `--priority`,
 * `--max-in-flight` and `--args` can be added to it as to any `ttg submit`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveConfig } from "../deploy/config.ts";
 * import { submitCommand } from "./fleet_submit.ts";
 * const { config } = resolveConfig({ mode: "fleet" }, { randomSecret: () => "s".repeat(32) });
 * const command = submitCommand(config, "port-forward");
 * assert.ok(command.portForward?.includes("16379:6379"));
 * assert.equal(command.argv.slice(0, 4).join(" "), "deno task ttg submit");
 * ```
 */
export function submitCommand(config: DeploymentConfig, route: SubmitRoute): SubmitCommand {
  const n = names(config);
  const forward = route === "port-forward";
  const redis = config.backend === "redis";
  const port = redis ? PORTS.redis : PORTS.amqp;
  const localPort = forward ? port + FORWARD_PORT_OFFSET : port;
  const secret = redis ? n.redisSecret : n.rabbitmqSecret;
  const env: SubmitVariable[] = redis
    ? [
      { name: "REDIS_PORT", value: String(localPort) },
      { name: "REDIS_PASSWORD", secret, key: "password" },
    ]
    : [
      { name: "RABBITMQ_PORT", value: String(localPort) },
      { name: "RABBITMQ_USER", secret, key: "username" },
      { name: "RABBITMQ_PASSWORD", secret, key: "password" },
      ...(config.rabbitmq.vhost === "/"
        ? []
        : [{ name: "RABBITMQ_VHOST", value: config.rabbitmq.vhost }]),
    ];
  const { job } = config;
  const argv = [
    "deno",
    "task",
    "ttg",
    "submit",
    "--backend",
    config.backend,
    "--job-id",
    job.id,
    "--params",
    String(job.params),
    "--chunk-size",
    String(job.chunkSize),
    ...(job.workMs === 1 ? [] : ["--work-ms", String(job.workMs)]),
    ...(job.faultRate === 0 ? [] : ["--fault-rate", String(job.faultRate)]),
    ...(job.module === undefined ? [] : ["--job", job.module]),
    ...(!redis && config.rabbitmq.queueType !== "classic"
      ? ["--rabbitmq-queue-type", config.rabbitmq.queueType]
      : []),
  ];
  return {
    portForward: forward
      ? portForwardArgv(redis ? n.redis : n.rabbitmq, config.namespace, localPort, port)
      : undefined,
    env,
    argv,
  };
}

/**
 * The command as shell text. A Secret's key is read by `kubectl get secret … | base64 -d` when
 * the command runs; `secretValue` gives values instead (the local brokers' credentials; `null`
 * leaves the variable out).
 */
export function renderSubmitCommand(
  command: SubmitCommand,
  namespace: string,
  secretValue?: (secret: string, key: string) => string | null,
): string {
  const assignments = command.env.flatMap((v) => {
    if ("value" in v) return [`${v.name}=${shellQuote([v.value])}`];
    if (secretValue) {
      const value = secretValue(v.secret, v.key);
      return value === null ? [] : [`${v.name}=${shellQuote([value])}`];
    }
    const read = shellQuote(secretValueArgv(v.secret, v.key, namespace));
    return [`${v.name}="$(${read} | base64 -d)"`];
  });
  return [...assignments, shellQuote(command.argv)].join(" \\\n  ");
}

/** How the guides ask for job ids: a new one per job, one the fleet serves. */
export function jobIdHint(config: DeploymentConfig): string {
  const glob = config.fleet.jobs;
  return `a new --job-id for each job${glob === undefined ? "" : ` that "${glob}" matches`}`;
}

/**
 * What a fleet deploy prints at the end: how to reach the broker and submit, and how to follow
 * a job. With TLS the broker's certificate names its Service, not `127.0.0.1`, so a forwarded
 * connection cannot verify it: submit with `--submit` (a Job in the cluster) instead.
 */
export function fleetGuide(config: DeploymentConfig): string {
  const command = submitCommand(config, "port-forward");
  const jobs = config.fleet.jobs === undefined
    ? "every job submitted to its broker"
    : `the jobs whose id matches "${config.fleet.jobs}"`;
  const lines = [
    `The fleet "${names(config).fleet}" serves ${jobs}.`,
  ];
  if (config.tls.secretName !== undefined) {
    lines.push(
      "The broker speaks TLS with a certificate for its Service name, which a forward to 127.0.0.1 cannot verify:",
      `submit from inside the cluster by running this deploy again with --submit (${
        jobIdHint(config)
      }).`,
    );
    return lines.join("\n");
  }
  lines.push(
    "Submit from this machine: forward the broker's port (leave it running in a terminal of its own),",
    `  ${shellQuote(command.portForward ?? [])}`,
    `then submit (the password is read from the cluster's Secret; ${jobIdHint(config)}):`,
    renderSubmitCommand(command, config.namespace).replace(/^/gm, "  "),
    "and follow it with the same variables and `deno task ttg status --job-id ID`; or submit from inside the cluster by running this deploy again with --submit.",
  );
  return lines.join("\n");
}
