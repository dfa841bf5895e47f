/**
 * Connections of the Redis broker: URL and credentials → ioredis options, connecting with a
 * bounded wait, the reconnect policy, and the one place native errors become
 * {@linkcode BrokerError}s.
 *
 * @module
 */
import { Redis, type RedisOptions } from "ioredis";
import type { ConnectionOptions } from "node:tls";
import { BrokerError, ConfigError, errorMessage } from "./errors.ts";

/** How to reach Redis. */
export interface RedisConnectionOptions {
  /**
   * `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS).
   * @default "redis://127.0.0.1:6379"
   */
  readonly url?: string;
  /** ACL user; overrides the URL's (the CLI passes `REDIS_USERNAME`). */
  readonly username?: string;
  /** Password; overrides the URL's (the CLI passes `REDIS_PASSWORD`). */
  readonly password?: string;
  /** TLS options (CA, client certificate…); TLS is on for rediss:// or when this is given. */
  readonly tls?: ConnectionOptions;
  /** How long to wait for the first connection. @default 5000 */
  readonly connectTimeoutMs?: number;
}

/** Where a connection goes, for messages: `127.0.0.1:6379`. */
export interface RedisTarget {
  /** `host:port`, for messages (never the credentials). */
  readonly where: string;
  /** Options of every ioredis connection to it. */
  readonly options: RedisOptions;
}

/**
 * Reconnect delay after `times` failed attempts: 50 ms doubling to 2 s, with jitter, so a
 * restarted Redis is found again within about two seconds.
 */
export function reconnectDelayMs(times: number): number {
  const base = Math.min(2000, 50 * 2 ** Math.min(10, Math.max(0, times - 1)));
  return base + Math.floor(Math.random() * 50);
}

/** Builds ioredis options from a URL and credentials; throws `ConfigError` on a bad URL. */
export function redisTarget(options: RedisConnectionOptions): RedisTarget {
  const text = options.url ?? "redis://127.0.0.1:6379";
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw ConfigError.invalid("--broker-url", redact(text), "a redis:// or rediss:// URL");
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw ConfigError.invalid("--broker-url", redact(text), "a redis:// or rediss:// URL");
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
  const port = url.port ? Number(url.port) : 6379;
  const dbText = url.pathname.replace(/^\//, "");
  const db = dbText === "" ? 0 : Number(dbText);
  if (!Number.isSafeInteger(db) || db < 0) {
    throw ConfigError.invalid("--broker-url", redact(text), "a database number after the host");
  }
  const username = options.username ?? (url.username ? decodeURIComponent(url.username) : "");
  const password = options.password ?? (url.password ? decodeURIComponent(url.password) : "");
  const ip = /^[\d.]+$/.test(host) || host.includes(":");
  const tls = url.protocol === "rediss:" || options.tls !== undefined
    ? { ...(ip ? {} : { servername: host }), ...options.tls }
    : undefined;
  return {
    where: `${host}:${port}`,
    options: {
      host,
      port,
      db,
      ...(username ? { username } : {}),
      ...(password ? { password } : {}),
      ...(tls ? { tls } : {}),
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs ?? 5000,
      retryStrategy: reconnectDelayMs,
      maxRetriesPerRequest: 20,
      enableAutoPipelining: false,
      disableClientInfo: true,
      protocol: 2,
    },
  };
}

function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, "//***@");
}

/**
 * Connection name of a consumer (CLIENT SETNAME): `ttg:<consumer id>` with every UTF-8 byte other
 * than letters, digits, `.`, `_` and `-` replaced by `_`, exactly as the reclaim script's Lua
 * `gsub` does it (so `é`, two bytes, is `__`). The reclaim script treats a consumer without a
 * connection of this name as dead; `role` names a secondary connection.
 */
export function connectionName(consumerId: string, role?: string): string {
  let safe = "";
  for (const byte of new TextEncoder().encode(consumerId)) {
    const c = String.fromCharCode(byte);
    safe += /[A-Za-z0-9._-]/.test(c) ? c : "_";
  }
  const name = `ttg:${safe}`;
  return role ? `${name}:${role}` : name;
}

/** Names of the client connections open now (CLIENT LIST), or undefined when not allowed. */
export async function liveConnectionNames(client: Redis): Promise<string[] | undefined> {
  try {
    const list = await client.call("CLIENT", "LIST", "TYPE", "normal") as string;
    const names: string[] = [];
    for (const match of list.matchAll(/\bname=(\S+)/g)) names.push(match[1]!);
    return names;
  } catch {
    return undefined;
  }
}

/** Opens a connection and waits until it is ready, or fails with `UNAVAILABLE`. */
export async function connectRedis(target: RedisTarget, name: string): Promise<Redis> {
  const client = new Redis({ ...target.options, connectionName: name });
  // Errors surface through the commands that fail; without a listener ioredis logs them.
  let socketError: unknown;
  client.on("error", (error) => socketError ??= error);
  try {
    await client.connect();
    return client;
  } catch (error) {
    client.disconnect();
    const cause = socketError ?? error;
    throw new BrokerError(
      "UNAVAILABLE",
      `Cannot reach Redis at ${target.where}: ${errorMessage(cause)}`,
      { cause },
    );
  }
}

/**
 * Settles like `promise`, or rejects with the signal's reason once `signal` aborts. ioredis never
 * settles the commands of a connection closed while it was reconnecting; this keeps a closed
 * broker's calls from hanging on them.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** True when a Redis error says the consumer group (or its stream) is missing. */
export function isNoGroup(error: unknown): boolean {
  return /NOGROUP/.test(errorMessage(error));
}

/**
 * Translates any error of a Redis call into a {@linkcode BrokerError} (River's `interpretError`):
 * argument errors pass through, everything else is `UNAVAILABLE` with the cause attached.
 */
export function interpretError(error: unknown, action: string, where: string): Error {
  if (error instanceof BrokerError || error instanceof TypeError || error instanceof RangeError) {
    return error;
  }
  return new BrokerError(
    "UNAVAILABLE",
    `Cannot ${action} on Redis at ${where}: ${errorMessage(error)}`,
    { cause: error },
  );
}
