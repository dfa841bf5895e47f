/**
 * The settings of `ttg dashboard` besides the broker's: where it listens, its token, and whether
 * it serves actions.
 *
 * @module
 */
import { ConfigError } from "../errors.ts";
import { type EnvReader, type FlagValues, processEnv, Resolver } from "./settings_source.ts";

/** Settings of `ttg dashboard` (besides the broker's). */
export interface DashboardSettings {
  /** Port to listen on; 0 picks a free one. */
  readonly port: number;
  /** Address to listen on. */
  readonly host: string;
  /** The token (`--token`, env TTG_DASHBOARD_TOKEN); undefined: one is generated at start. */
  readonly token: string | undefined;
  /** Serve the actions (cancel, pause, resume, replay, purge). */
  readonly allowActions: boolean;
}

/**
 * Resolves the dashboard's settings. A token is 16 to 256 URL-safe characters, so it can be
 * given in the page's `?token=` unchanged.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveDashboardSettings } from "./settings_dashboard.ts";
 * const s = resolveDashboardSettings({ port: "9000" }, () => undefined);
 * assert.deepEqual(s, { port: 9000, host: "127.0.0.1", token: undefined, allowActions: false });
 * ```
 */
export function resolveDashboardSettings(
  flags: FlagValues = {},
  env: EnvReader = processEnv,
): DashboardSettings {
  const r = new Resolver(flags, env);
  const host = r.string("--host", [], "127.0.0.1").trim();
  if (
    !/^(\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*|[A-Za-z0-9][A-Za-z0-9.-]*)$/.test(host)
  ) {
    throw ConfigError.invalid("--host", host, "a host name or IP address such as 127.0.0.1");
  }
  const token = r.source("--token", ["TTG_DASHBOARD_TOKEN"]);
  if (token && !/^[A-Za-z0-9._~-]{16,256}$/.test(token.raw)) {
    throw new ConfigError(
      token.name,
      `Invalid ${token.name}: expected 16 to 256 letters, digits, ".", "_", "~" or "-"`,
    );
  }
  return {
    port: r.number("--port", [], 8080, { min: 0, max: 65535, integer: true }),
    host: host.replace(/^\[(.*)\]$/, "$1"),
    token: token?.raw,
    allowActions: r.boolean("--allow-actions", [], false),
  };
}
