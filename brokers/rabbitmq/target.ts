/**
 * Where and how the RabbitMQ broker connects: the URL and its credentials, TLS, the AMQP
 * heartbeat (which is the broker's lease) and the connection wait.
 *
 * @module
 */
import type { Options, SocketOptions } from "amqplib";
import type { ConnectRetry } from "../broker.ts";
import { ConfigError, redactUrl } from "../../errors.ts";

/** TLS settings of an `amqps://` connection (PEM strings). */
export interface RabbitTlsOptions {
  readonly ca?: string | readonly string[];
  readonly cert?: string;
  readonly key?: string;
  readonly passphrase?: string;
  /** Name checked against the server certificate. @default the URL's host */
  readonly servername?: string;
  /** @default true */
  readonly rejectUnauthorized?: boolean;
}

/** Connection options of the RabbitMQ broker. */
export interface RabbitConnectionOptions {
  /**
   * `amqp://user:password@host:port/vhost` or `amqps://…`. Without credentials, guest/guest is
   * used only for localhost, 127.0.0.1 and ::1.
   * @default "amqp://127.0.0.1:5672"
   */
  readonly url?: string;
  /** TLS options for `amqps://`. */
  readonly tls?: RabbitTlsOptions;
  /**
   * AMQP heartbeat: a silent peer is declared dead after about two of these, and its unacked
   * deliveries go back to the queue. This is the RabbitMQ broker's lease, so by default it is half
   * of `leaseMs` (rounded up to whole seconds) when a lease is given, else 5.
   */
  readonly heartbeatSeconds?: number;
  /** The lease the heartbeat follows when `heartbeatSeconds` is not given. */
  readonly leaseMs?: number;
  /**
   * How long to wait for a connection: the first connect, and an operation while the broker
   * reconnects. @default 10000
   */
  readonly connectTimeoutMs?: number;
  /** Told of every failed connection try that will be retried (the broker itself never prints). */
  readonly onConnectRetry?: (retry: ConnectRetry) => void;
}

/** Where and how to connect. */
export interface RabbitTarget {
  readonly connect: Options.Connect;
  readonly socket: SocketOptions;
  /** `host:port`, for messages. */
  readonly where: string;
  readonly connectTimeoutMs: number;
}

/** Default of {@linkcode RabbitConnectionOptions.connectTimeoutMs}. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

/**
 * Validates the URL and credentials. Throws `ConfigError` naming the field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rabbitTarget } from "./target.ts";
 * const target = rabbitTarget({ url: "amqps://ttg:pw@mq.example/jobs" });
 * assert.deepEqual([target.where, target.connect.vhost], ["mq.example:5671", "jobs"]);
 * ```
 */
export function rabbitTarget(options: RabbitConnectionOptions): RabbitTarget {
  const raw = options.url ?? "amqp://127.0.0.1:5672";
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw ConfigError.invalid("url", redactUrl(raw), "an amqp:// or amqps:// URL");
  }
  if (url.protocol !== "amqp:" && url.protocol !== "amqps:") {
    throw ConfigError.invalid("url", redactUrl(raw), "an amqp:// or amqps:// URL");
  }
  const host = url.hostname.replace(/^\[|\]$/g, "");
  let username = decodeURIComponent(url.username);
  let password = decodeURIComponent(url.password);
  if (username === "" && password === "") {
    if (!LOCAL_HOSTS.has(host)) {
      throw new ConfigError(
        "url",
        `Missing credentials in the RabbitMQ URL "${
          redactUrl(raw)
        }": guest/guest is only used on localhost`,
      );
    }
    username = "guest";
    password = "guest";
  }
  const port = url.port ? Number(url.port) : url.protocol === "amqps:" ? 5671 : 5672;
  const heartbeat = options.heartbeatSeconds ??
    (options.leaseMs !== undefined && options.leaseMs > 0
      ? Math.max(1, Math.ceil(options.leaseMs / 2000))
      : 5);
  if (!(Number.isInteger(heartbeat) && heartbeat >= 0)) {
    throw ConfigError.invalid("heartbeatSeconds", heartbeat, "a whole number of seconds");
  }
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (!(connectTimeoutMs > 0) || !Number.isFinite(connectTimeoutMs)) {
    throw new RangeError(
      `Invalid connectTimeoutMs "${connectTimeoutMs}": expected more than 0 milliseconds`,
    );
  }
  const vhost = url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : "/";
  const tls = options.tls ?? {};
  return {
    connect: {
      protocol: url.protocol.slice(0, -1),
      hostname: host,
      port,
      username,
      password,
      vhost,
      heartbeat,
      frameMax: 131072,
    },
    socket: url.protocol === "amqps:"
      ? {
        ...(tls.ca ? { ca: tls.ca as string | string[] } : {}),
        ...(tls.cert ? { cert: tls.cert } : {}),
        ...(tls.key ? { key: tls.key } : {}),
        ...(tls.passphrase ? { passphrase: tls.passphrase } : {}),
        ...(tls.servername ? { servername: tls.servername } : {}),
        rejectUnauthorized: tls.rejectUnauthorized ?? true,
        noDelay: true,
      }
      : { noDelay: true },
    where: `${host.includes(":") ? `[${host}]` : host}:${port}`,
    connectTimeoutMs,
  };
}
