/**
 * Least privilege for TypeScript jobs: what a job declares in `defineJob({ permissions })` is all
 * its handler threads get (Deno's Worker `deno.permissions`); by default nothing. A handler that
 * reaches for more fails its chunk as unrecoverable, with the permission named.
 *
 * @module
 */

/** One kind of access: `true` for any, or the hosts, paths or names allowed. */
export type PermissionGrant = true | readonly string[];

/**
 * What a job's handler may do beyond computing. Paths are resolved as Deno resolves them
 * (relative to the worker's working directory); hosts are `host` or `host:port`.
 */
export interface JobPermissions {
  /** Hosts the handler may connect to (`fetch`, `Deno.connect`). @default none */
  readonly net?: PermissionGrant;
  /** Paths the handler may read (its code loads without it). @default none */
  readonly read?: PermissionGrant;
  /** Paths the handler may write. @default none */
  readonly write?: PermissionGrant;
  /** Environment variables the handler may read. @default none */
  readonly env?: PermissionGrant;
  /** System information (`hostname`, `osRelease`, …) the handler may read. @default none */
  readonly sys?: PermissionGrant;
}

/** The kinds a job may declare. */
export const PERMISSION_KINDS = ["net", "read", "write", "env", "sys"] as const;

/**
 * Why `permissions` is not a valid declaration, or undefined when it is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { permissionsProblem } from "./permissions.ts";
 * assert.equal(permissionsProblem({ net: ["api.example.com"] }), undefined);
 * assert.match(permissionsProblem({ run: true })!, /unknown permission "run"/);
 * ```
 */
export function permissionsProblem(permissions: unknown): string | undefined {
  if (permissions === undefined) return undefined;
  if (typeof permissions !== "object" || permissions === null || Array.isArray(permissions)) {
    return 'expected an object such as { net: ["api.example.com"] }';
  }
  for (const [kind, grant] of Object.entries(permissions)) {
    if (!(PERMISSION_KINDS as readonly string[]).includes(kind)) {
      return `unknown permission "${kind}" (expected ${PERMISSION_KINDS.join(", ")})`;
    }
    const valid = grant === undefined || grant === true ||
      (Array.isArray(grant) && grant.every((g) => typeof g === "string" && g !== ""));
    if (!valid) return `"${kind}" must be true or a list of non-empty strings`;
  }
  return undefined;
}

/**
 * The Deno permissions of a handler thread for a job loaded from `moduleUrl`: exactly what the
 * job declares. Its code needs none of them (the thread's root module imports it statically);
 * a remote module may import from its own host. Run, FFI and other imports are never granted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { threadPermissions } from "./permissions.ts";
 * const p = threadPermissions({ env: ["API_TOKEN"] }, "file:///app/job.ts");
 * assert.deepEqual(p.env, ["API_TOKEN"]);
 * assert.equal(p.read, false);
 * assert.equal(p.net, false);
 * ```
 */
export function threadPermissions(
  permissions: JobPermissions | undefined,
  moduleUrl: string,
): Deno.PermissionOptionsObject {
  const grant = (kind: typeof PERMISSION_KINDS[number]): boolean | string[] => {
    const value = permissions?.[kind];
    return value === true ? true : value ? [...value] : false;
  };
  const url = new URL(moduleUrl);
  return {
    net: grant("net"),
    read: grant("read"),
    write: grant("write"),
    env: grant("env"),
    sys: grant("sys") as Deno.PermissionOptionsObject["sys"],
    run: false,
    ffi: false,
    import: url.protocol === "https:" || url.protocol === "http:" ? [url.host] : false,
  };
}

/** Error classes Deno throws for an access the thread was not granted. */
function isPermissionError(error: unknown): error is Error {
  return error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied;
}

/**
 * The reason a chunk fails with when its handler reached for an undeclared permission (found in
 * the thrown error or its causes), or undefined for any other error. The reason names the access
 * and where to declare it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { permissionDeniedReason } from "./permissions.ts";
 * const error = new Deno.errors.NotCapable('Requires net access to "api.example.com:443", run again with the --allow-net flag');
 * assert.equal(
 *   permissionDeniedReason(error, "acme.prices"),
 *   'PermissionDenied: job "acme.prices" did not declare net access to "api.example.com:443" (declare it in defineJob({ permissions: { net: [...] } }))',
 * );
 * ```
 */
export function permissionDeniedReason(error: unknown, jobName: string): string | undefined {
  let found: Error | undefined;
  for (let e: unknown = error, depth = 0; e !== undefined && depth < 8; depth++) {
    if (isPermissionError(e)) {
      found = e;
      break;
    }
    e = e instanceof Error ? e.cause : undefined;
  }
  if (!found) return undefined;
  const match = /Requires (\w+) access(?: to "([^"]*)")?/.exec(found.message);
  const kind = match?.[1] ?? "a";
  const target = match?.[2] !== undefined ? ` to "${match[2]}"` : "";
  const where = (PERMISSION_KINDS as readonly string[]).includes(kind)
    ? `declare it in defineJob({ permissions: { ${kind}: [...] } })`
    : `jobs cannot be granted ${kind} access`;
  return `PermissionDenied: job "${jobName}" did not declare ${kind} access${target} (${where})`;
}
