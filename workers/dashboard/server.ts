/**
 * `ttg dashboard`: the web page of a broker's jobs, served by the `ttg` program itself
 * (`Deno.serve`): the page and its files (page.ts), the JSON API under `/api/` (api.ts), `/healthz`
 * and `/readyz` for probes, every request checked first (security.ts), every read from one
 * shared hub (hub.ts), so any number of tabs cost the broker one snapshot a second.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openBroker } from "../../brokers/open.ts";
 * import { serveDashboard } from "./server.ts";
 * const broker = await openBroker({ backend: "sqlite", sqlitePath: ":memory:" });
 * const dashboard = serveDashboard({ broker, host: "127.0.0.1", port: 0, token: "t".repeat(32) });
 * const jobs = await (await fetch(`${dashboard.url}/api/jobs`)).json();
 * assert.ok(Array.isArray(jobs.jobs));
 * await dashboard.close();
 * await broker.close();
 * ```
 *
 * @module
 */
import type { Broker } from "../../brokers/broker.ts";
import { ConfigError, errorMessage } from "../../errors.ts";
import { openBrokerFor } from "../broker_for.ts";
import type { DashboardSettings, Settings } from "../settings.ts";
import { apiRoute } from "./api.ts";
import { DashboardHub } from "./hub.ts";
import { ASSETS, isPagePath, PAGE_HTML, SECURITY_HEADERS } from "./page.ts";
import { type Access, checkRequest, generateToken, isLoopback } from "./security.ts";

/** Options of {@linkcode serveDashboard}. */
export interface DashboardOptions {
  readonly broker: Broker;
  /** Address to listen on. */
  readonly host: string;
  /** Port to listen on; 0 picks a free one. */
  readonly port: number;
  /** The token actions (and, off loopback, reads) need. */
  readonly token: string;
  /** Allow the actions (cancel, pause, resume, replay, purge). @default false */
  readonly allowActions?: boolean;
  /** Least time between two snapshots of the broker. @default 1000 */
  readonly intervalMs?: number;
}

/** A running dashboard. */
export interface DashboardServer extends AsyncDisposable {
  /** `http://host:port` (without the token). */
  readonly url: string;
  readonly port: number;
  readonly hub: DashboardHub;
  close(): Promise<void>;
}

function withHeaders(response: Response): Response {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
    if (!response.headers.has(name)) response.headers.set(name, value);
  }
  return response;
}

function text(body: string, status: number, type = "text/plain; charset=utf-8"): Response {
  return new Response(body, { status, headers: { "content-type": type } });
}

/** The request handler of a dashboard (exported for tests that call it without a socket). */
export function dashboardHandler(
  hub: DashboardHub,
  access: Access,
): (request: Request) => Promise<Response> {
  const context = { hub, allowActions: access.allowActions };
  const handle = async (request: Request): Promise<Response> => {
    const { pathname } = new URL(request.url);
    if (pathname === "/healthz" || pathname === "/readyz") {
      const refused = checkRequest(request, "probe", access);
      if (refused) return refused;
      if (pathname === "/healthz") return text("ok\n", 200);
      try {
        await hub.snapshot();
        return text("ok\n", 200);
      } catch (error) {
        return text(`${errorMessage(error)}\n`, 503);
      }
    }
    if (pathname === "/api" || pathname.startsWith("/api/")) {
      const route = apiRoute(request, pathname);
      const refused = checkRequest(
        request,
        typeof route === "object" ? route.kind : "read",
        access,
      );
      if (refused) return refused;
      if (route === undefined) {
        return Response.json({ error: `No API at ${pathname}` }, { status: 404 });
      }
      if (route === "bad-method") {
        return Response.json({ error: `${request.method} is not allowed at ${pathname}` }, {
          status: 405,
        });
      }
      return await route.handle(context);
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return text(`${request.method} is not allowed here\n`, 405);
    }
    const refused = checkRequest(request, "page", access);
    if (refused) return refused;
    const asset = ASSETS.get(pathname);
    if (asset) {
      return new Response(asset.body, {
        headers: { "content-type": asset.type, "cache-control": "no-cache" },
      });
    }
    if (isPagePath(pathname)) {
      return new Response(PAGE_HTML, {
        headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-cache" },
      });
    }
    return text("Not found: the dashboard's pages are / and /jobs/{id}\n", 404);
  };
  return async (request) => withHeaders(await handle(request));
}

/**
 * Starts a dashboard. An address that cannot be listened on (a port in use, a host that is not
 * this machine's) is a {@linkcode ConfigError} naming `--port` or `--host`.
 */
export function serveDashboard(options: DashboardOptions): DashboardServer {
  const hub = new DashboardHub(options.broker, { intervalMs: options.intervalMs ?? 1000 });
  const access: Access = {
    token: options.token,
    loopback: isLoopback(options.host),
    allowActions: options.allowActions ?? false,
  };
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: options.host,
      port: options.port,
      onListen: () => {},
      onError: (error) =>
        withHeaders(Response.json({ error: errorMessage(error) }, { status: 500 })),
    }, dashboardHandler(hub, access));
  } catch (error) {
    throw bindError(error, options.host, options.port);
  }
  const port = server.addr.port;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  let closing: Promise<void> | undefined;
  const close = () => closing ??= server.shutdown();
  return { url: `http://${host}:${port}`, port, hub, close, [Symbol.asyncDispose]: close };
}

function bindError(error: unknown, host: string, port: number): ConfigError {
  if (error instanceof Deno.errors.AddrInUse) {
    return new ConfigError("--port", `Invalid --port "${port}": ${host}:${port} is already in use`);
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new ConfigError(
      "--port",
      `Invalid --port "${port}": not allowed to listen on it (${errorMessage(error)})`,
    );
  }
  return new ConfigError(
    "--host",
    `Invalid --host "${host}": cannot listen there (${errorMessage(error).split("\n")[0]})`,
  );
}

/** Where `ttg dashboard` writes its lines. */
export interface DashboardIo {
  /** Stops the dashboard (SIGINT, SIGTERM). */
  readonly signal: AbortSignal;
  /** Prints a line (stdout). */
  readonly print: (line: string) => void;
}

/**
 * `ttg dashboard`: opens the broker, serves until `signal` aborts, then closes both. A token that
 * was generated is printed in the URL (as notebook servers do); a given one is not (it may be
 * in a Secret, and logs are not the place for it).
 */
export async function runDashboard(
  settings: Settings,
  dashboard: DashboardSettings,
  io: DashboardIo,
): Promise<void> {
  const broker = await openBrokerFor(settings, `dashboard-${Deno.pid}`);
  try {
    const token = dashboard.token ?? generateToken();
    await using server = serveDashboard({
      broker,
      host: dashboard.host,
      port: dashboard.port,
      token,
      allowActions: dashboard.allowActions,
    });
    const loopback = isLoopback(dashboard.host);
    const url = dashboard.token === undefined
      ? `${server.url}/?token=${token}`
      : `${server.url}/  (open it with ?token=<the token of --token or TTG_DASHBOARD_TOKEN>)`;
    io.print(`TTG dashboard of ${settings.backend} at ${url}`);
    io.print(
      `  ${loopback ? "reads need no token on loopback" : "every API request needs the token"}; ` +
        (dashboard.allowActions
          ? "actions (cancel, pause, resume, replay, purge) need it and are on"
          : "actions are off (--allow-actions turns them on)"),
    );
    io.print("  Ctrl-C stops it");
    await new Promise<void>((resolve) => {
      if (io.signal.aborted) return resolve();
      io.signal.addEventListener("abort", () => resolve(), { once: true });
    });
  } finally {
    await broker.close();
  }
}
