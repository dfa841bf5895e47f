/**
 * What a handler process is started with: a clean environment (PATH and the variables its job
 * names, nothing else of the worker's: no broker URL, no password), and optionally a sandbox.
 *
 * @module
 */
import type { CommandSpec } from "../jobs/command_job.ts";
import type { EnvReader } from "./settings.ts";

/** PATH of a handler when the worker has none. */
const DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin";

/**
 * The whole environment of a handler process: PATH, the worker's variables named in
 * `spec.passEnv` (those set), then `spec.env`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { handlerEnv } from "./process_command.ts";
 * const worker: Record<string, string> = { PATH: "/bin", HOME: "/root", TTG_BROKER_URL: "redis://…" };
 * const env = handlerEnv({ argv: ["sim"], env: { MODE: "fast" }, passEnv: ["HOME"], sandbox: false }, (k) => worker[k]);
 * assert.deepEqual(env, { PATH: "/bin", HOME: "/root", MODE: "fast" });
 * ```
 */
export function handlerEnv(spec: CommandSpec, env: EnvReader): Record<string, string> {
  const out: Record<string, string> = { PATH: env("PATH") || DEFAULT_PATH };
  for (const name of spec.passEnv) {
    const value = env(name);
    if (value !== undefined) out[name] = value;
  }
  return { ...out, ...spec.env };
}

/**
 * The sandbox prefix: `unshare` gives the process new user (mapped to the worker's own user),
 * network (no interface but a down loopback) and IPC namespaces. What it does not do: hide the
 * file system (it stays the worker's view, with the worker's user's rights).
 */
export const SANDBOX_PREFIX: readonly string[] = [
  "unshare",
  "--user",
  "--map-current-user",
  "--net",
  "--ipc",
  "--",
];

/** Why this machine cannot run a sandboxed handler, or undefined when it can. */
export async function sandboxProblem(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(SANDBOX_PREFIX[0]!, {
      args: [...SANDBOX_PREFIX.slice(1), "true"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    if (out.success) return undefined;
    const why = new TextDecoder().decode(out.stderr).trim().split("\n")[0];
    return `${SANDBOX_PREFIX.slice(0, -1).join(" ")} failed: ${why || `exit code ${out.code}`}`;
  } catch (error) {
    return `cannot run unshare: ${error instanceof Error ? error.message : String(error)}`;
  }
}
