/**
 * Every field a deployment's props may have, by the path of the object that holds it: what
 * `resolveConfig` (config.ts) checks a user's props against, so a misspelt field is named in one
 * line instead of silently ignored.
 *
 * @module
 */
import { FLEET_FIELDS } from "./fleet_config.ts";
import { KEDA_FIELDS } from "./keda_config.ts";
import { OBSERVABILITY_FIELDS } from "./observability_config.ts";
import { WEB_DASHBOARD_FIELDS } from "./web_dashboard_config.ts";

/** The fields of each object of a deployment's props ("" is the top level). */
export const KNOWN_FIELDS: Readonly<Record<string, readonly string[]>> = {
  "": [
    "name",
    "namespace",
    "createNamespace",
    "backend",
    "mode",
    "fleet",
    "image",
    "job",
    "workers",
    "redis",
    "rabbitmq",
    "tls",
    "networkPolicy",
    "keda",
    "observability",
    "dashboard",
  ],
  image: ["repository", "tag", "pullPolicy"],
  job: ["id", "params", "chunkSize", "workMs", "faultRate", "module", "command", "maxAttempts"],
  workers: [
    "count",
    "controller",
    "concurrency",
    "batch",
    "idleTimeoutSeconds",
    "graceSeconds",
    "terminationMarginSeconds",
    "backoffLimit",
    "resources",
    "runtimeClassName",
    "leaseMs",
    "heartbeatMs",
    "chunkTimeoutSeconds",
    "logLevel",
    "logFormat",
  ],
  "workers.resources": ["cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"],
  redis: ["image", "resources", "storage", "storageClassName", "password"],
  "redis.resources": ["cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"],
  rabbitmq: [
    "image",
    "resources",
    "storage",
    "storageClassName",
    "password",
    "username",
    "vhost",
    "queueType",
  ],
  tls: ["secretName"],
  "rabbitmq.resources": ["cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"],
  networkPolicy: ["enabled"],
  ...KEDA_FIELDS,
  ...FLEET_FIELDS,
  ...OBSERVABILITY_FIELDS,
  ...WEB_DASHBOARD_FIELDS,
};
