/**
 * Who may do what on a dashboard. There is always a token (given, or generated at start and
 * printed in the URL, as notebook servers do). It is required for every action, and for every
 * API read once the dashboard listens on anything but loopback; it travels in a header
 * (`X-TTG-Token` or `Authorization: Bearer`), never in a query, so no link or form of another
 * site can act. Actions are POST only, and only with `--allow-actions`. On loopback the `Host`
 * must be a loopback name (no DNS rebinding); a request whose `Origin` is not the dashboard's
 * own is refused. The page's own files hold no data and are served to anyone who can connect.
 *
 * @module
 */

/** How a dashboard is reached. */
export interface Access {
  /** The token every action (and, off loopback, every API read) needs. */
  readonly token: string;
  /** The dashboard listens on a loopback address only. */
  readonly loopback: boolean;
  /** Actions are allowed (`--allow-actions`). */
  readonly allowActions: boolean;
}

/** What a request asks for. */
export type RequestKind = "page" | "probe" | "read" | "action";

/** Header that carries the token. */
export const TOKEN_HEADER = "x-ttg-token";

/**
 * A new token: 32 URL-safe characters (192 bits) from the platform CSPRNG.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateToken } from "./security.ts";
 * assert.match(generateToken(), /^[A-Za-z0-9_-]{32}$/);
 * ```
 */
export function generateToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_");
}

/** True for a loopback host name or address (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Compares two strings in time that depends on their length only. */
function sameText(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  if (x.length !== y.length) return false;
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ y[i]!;
  return diff === 0;
}

/** The token a request carries in its headers, if any. */
function requestToken(request: Request): string | undefined {
  const header = request.headers.get(TOKEN_HEADER);
  if (header) return header.trim();
  const auth = request.headers.get("authorization");
  const bearer = auth && /^Bearer\s+(\S+)\s*$/i.exec(auth);
  return bearer ? bearer[1] : undefined;
}

function refuse(status: number, error: string): Response {
  return Response.json({ error }, {
    status,
    headers: {
      "cache-control": "no-store",
      ...(status === 401 ? { "www-authenticate": 'Bearer realm="ttg dashboard"' } : {}),
    },
  });
}

/** The host (and port) of an Origin header; "" when it is not a URL ("null"). */
function originHost(origin: string): string {
  try {
    return new URL(origin).host;
  } catch {
    return "";
  }
}

/** The request's Host without its port. */
function hostName(request: Request): string {
  const host = request.headers.get("host") ?? new URL(request.url).host;
  return host.replace(/:\d+$/, "");
}

/**
 * Why `request` is refused, as the response to send, or undefined when it may go on. A refused
 * request changes nothing: this runs before any handler.
 */
export function checkRequest(
  request: Request,
  kind: RequestKind,
  access: Access,
): Response | undefined {
  if (access.loopback && !isLoopback(hostName(request))) {
    return refuse(
      403,
      `Host "${hostName(request)}" is not this dashboard's (it listens on loopback)`,
    );
  }
  if (kind === "page" || kind === "probe") return undefined;
  const origin = request.headers.get("origin");
  if (origin !== null && originHost(origin) !== (request.headers.get("host") ?? "")) {
    if (origin !== "null" || kind === "action") {
      return refuse(403, `Origin "${origin}" is not this dashboard's`);
    }
  }
  const site = request.headers.get("sec-fetch-site");
  if (kind === "action" && site !== null && site !== "same-origin" && site !== "none") {
    return refuse(403, `A ${site} request may not act on this dashboard`);
  }
  if (kind === "read" && access.loopback) return undefined;
  const token = requestToken(request);
  if (token === undefined || !sameText(token, access.token)) {
    return refuse(
      401,
      token === undefined
        ? `This needs the dashboard's token in the ${TOKEN_HEADER} header`
        : "Wrong token",
    );
  }
  if (kind === "action") {
    if (request.method !== "POST") return refuse(405, "Actions are POST requests");
    if (!access.allowActions) {
      return refuse(403, "Actions are off: start ttg dashboard with --allow-actions");
    }
  }
  return undefined;
}
