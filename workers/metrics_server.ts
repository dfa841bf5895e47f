/**
 * The HTTP endpoints of a worker (or of `ttg exporter`): `/metrics` in Prometheus's text format,
 * `/healthz` (alive) and `/readyz` (ready for work). A port that cannot be bound is one warning:
 * the worker goes on working without its endpoints.
 *
 * @module
 */
import { ConfigError, errorMessage } from "../errors.ts";
import type { Logger } from "../jobs/define_job.ts";

/** What the endpoints read. */
export interface Endpoints {
  /** The exposition text and its content type. */
  metrics(): Promise<{ readonly text: string; readonly contentType: string }>;
  /** Why the process is not alive, or undefined. */
  notAlive(): string | undefined;
  /** Why the process is not ready, or undefined. */
  notReady(): string | undefined;
}

/** A running endpoint server. */
export interface MetricsServer extends AsyncDisposable {
  /** The bound port (0 when the port could not be bound). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `endpoints` on `hostname:port`. A port that cannot be bound is one warning and nothing
 * served, or, with `required` (a process that exists to serve them), a ConfigError naming it.
 */
export function serveEndpoints(
  endpoints: Endpoints,
  options: {
    readonly port: number;
    readonly hostname?: string;
    readonly log: Logger;
    readonly required?: boolean;
  },
): MetricsServer {
  const hostname = options.hostname ?? "0.0.0.0";
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      port: options.port,
      hostname,
      onListen: () => {},
      onError: (error) => new Response(`${errorMessage(error)}\n`, { status: 500 }),
    }, async (request) => {
      const { pathname } = new URL(request.url);
      if (pathname === "/metrics") {
        const { text, contentType } = await endpoints.metrics();
        return new Response(text, { headers: { "content-type": contentType } });
      }
      if (pathname === "/healthz" || pathname === "/readyz") {
        const why = pathname === "/healthz" ? endpoints.notAlive() : endpoints.notReady();
        return new Response(why ? `${why}\n` : "ok\n", { status: why ? 503 : 200 });
      }
      return new Response("not found: try /metrics, /healthz or /readyz\n", { status: 404 });
    });
  } catch (error) {
    if (options.required) {
      throw ConfigError.invalid(
        "--metrics-port",
        options.port,
        `a port that ${hostname} can listen on (${errorMessage(error)})`,
      );
    }
    options.log.warn("Cannot serve metrics; working without them", {
      port: options.port,
      error: errorMessage(error),
    });
    const none = { port: 0, close: () => Promise.resolve() };
    return { ...none, [Symbol.asyncDispose]: none.close };
  }
  const close = async () => {
    await server.shutdown();
  };
  return { port: server.addr.port, close, [Symbol.asyncDispose]: close };
}
