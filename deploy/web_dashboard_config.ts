/**
 * The `dashboard` block of a deployment, resolved and checked: whether `ttg dashboard` runs in
 * the cluster, its port, whether it serves actions, and where its token comes from (a Secret the
 * user names, or one generated with a random token; never a plain env value). Read by
 * deploy/config.ts with the same {@linkcode FieldReader}.
 *
 * @module
 */
import type { FieldReader, KnownFields, Resources } from "./field_reader.ts";
import type { Mode } from "./props.ts";

/** The known fields of the block, by dotted path (merged into the config's). */
export const WEB_DASHBOARD_FIELDS: KnownFields = {
  dashboard: ["enabled", "port", "allowActions", "tokenSecretName", "tokenSecretKey", "resources"],
  "dashboard.resources": ["cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"],
};

/** The dashboard's port, unless configured. */
export const DEFAULT_WEB_DASHBOARD_PORT = 8080;

/** Requests and limits of the dashboard, unless configured. */
export const DEFAULT_WEB_DASHBOARD_RESOURCES: Resources = {
  cpuRequest: "50m",
  cpuLimit: "250m",
  memoryRequest: "96Mi",
  memoryLimit: "256Mi",
};

/** The dashboard block, resolved. */
export interface WebDashboardConfig {
  readonly enabled: boolean;
  readonly port: number;
  readonly allowActions: boolean;
  /** Where the pod reads its token (`TTG_DASHBOARD_TOKEN` from `secretKeyRef`). */
  readonly token: {
    readonly secretName: string;
    readonly key: string;
    /** The token of a generated Secret; undefined when the user names the Secret. */
    readonly generated: string | undefined;
  };
  readonly resources: Resources;
}

/** What the block is checked against. */
export interface WebDashboardContext {
  readonly mode: Mode;
  /** The name of the Secret generated when none is named. */
  readonly generatedSecretName: string;
  /** Makes a token for a generated Secret. */
  readonly random: () => string;
}

/**
 * Reads `dashboard` from the top-level reader. Static mode has no broker to show, so enabling
 * the dashboard there is a problem; a token is generated only for an enabled dashboard whose
 * Secret is not named.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveConfig } from "./config.ts";
 * const { config } = resolveConfig(
 *   { dashboard: { enabled: true } },
 *   { randomSecret: () => "s".repeat(32) },
 * );
 * assert.equal(config.dashboard.port, 8080);
 * assert.equal(config.dashboard.token.secretName, "ttg-dashboard-token");
 * ```
 */
export function resolveWebDashboard(
  top: FieldReader,
  context: WebDashboardContext,
): WebDashboardConfig {
  const d = top.child("dashboard");
  let enabled = d.boolean("enabled", false);
  if (enabled && context.mode === "static") {
    d.problem("enabled", 'expected false with mode "static" (the dashboard reads the broker)');
    enabled = false;
  }
  const named = d.optionalString(
    "tokenSecretName",
    /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/,
    "a Secret name (a DNS subdomain)",
  );
  const key = d.string("tokenSecretKey", "token", /^[-._a-zA-Z0-9]{1,253}$/, "a Secret key");
  if (d.has("tokenSecretKey") && !d.has("tokenSecretName")) {
    d.problem(
      "tokenSecretKey",
      "expected dashboard.tokenSecretName with it (a generated Secret's key is token)",
    );
  }
  return {
    enabled,
    port: d.int("port", DEFAULT_WEB_DASHBOARD_PORT, 1024, 65_535),
    allowActions: d.boolean("allowActions", false),
    token: {
      secretName: named ?? context.generatedSecretName,
      key: named === undefined ? "token" : key,
      generated: enabled && named === undefined ? context.random() : undefined,
    },
    resources: d.resources("resources", DEFAULT_WEB_DASHBOARD_RESOURCES),
  };
}
