/**
 * Connections of the Redis broker: URL and credentials → ioredis options (reconnecting with
 * policy.ts `reconnectDelayMs`), connecting with a bounded wait, closing without leftovers, and
 * the one place native errors become {@linkcode BrokerError}s.
 *
 * @module
 */
import { Redis, type RedisOptions, ReplyError } from "ioredis";
import type { ConnectionOptions } from "node:tls";
import { BrokerError, ConfigError, errorMessage, redactUrl, TtgError } from "../../errors.ts";
import { reconnectDelayMs } from "../policy.ts";

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

/**
 * How long a closing connection waits for the server to close it before destroying its socket
 * (ioredis waits 2 s by default, on a timer that outlives a Redis that is down).
 */
const DISCONNECT_TIMEOUT_MS = 100;

/**
 * Reconnects a command waits through before it fails with `UNAVAILABLE`: with policy.ts
 * `reconnectDelayMs`, about 10 s without Redis. A restart of Redis within that time goes
 * unnoticed; a longer outage fails calls, which workers retry (pulls and commits, with their
 * backoff) and a monitor shows as an unreachable broker instead of hanging.
 */
const RECONNECTS_PER_COMMAND = 8;

/** Where a connection goes, for messages: `127.0.0.1:6379`. */
export interface RedisTarget {
  /** `host:port`, for messages (never the credentials). */
  readonly where: string;
  /** Options of every ioredis connection to it. */
  readonly options: RedisOptions;
}

/** Builds ioredis options from a URL and credentials; throws `ConfigError` on a bad URL. */
export function redisTarget(options: RedisConnectionOptions): RedisTarget {
  const text = options.url ?? "redis://127.0.0.1:6379";
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw ConfigError.invalid("--broker-url", redactUrl(text), "a redis:// or rediss:// URL");
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw ConfigError.invalid("--broker-url", redactUrl(text), "a redis:// or rediss:// URL");
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
  const port = url.port ? Number(url.port) : 6379;
  const dbText = url.pathname.replace(/^\//, "");
  const db = dbText === "" ? 0 : Number(dbText);
  if (!Number.isSafeInteger(db) || db < 0) {
    throw ConfigError.invalid("--broker-url", redactUrl(text), "a database number after the host");
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
      // The one backoff of TTG's connections: 50 ms doubling to 2 s, with jitter.
      retryStrategy: (times: number) => reconnectDelayMs(times),
      maxRetriesPerRequest: RECONNECTS_PER_COMMAND,
      enableAutoPipelining: false,
      disconnectTimeout: DISCONNECT_TIMEOUT_MS,
      disableClientInfo: true,
      protocol: 2,
    },
  };
}

/**
 * Connection name of a consumer (CLIENT SETNAME): `ttg:<consumer id>` with every UTF-8 byte other
 * than letters, digits, `.`, `_` and `-` replaced by `_`, exactly as the scripts' Lua `gsub`
 * does it (so `é`, two bytes, is `__`). The takeover and stats scripts treat a consumer without a
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

/**
 * Names of the client connections open now (CLIENT LIST), or undefined when Redis refuses the
 * command (an ACL without it); a connection that fails fails the call.
 */
export async function liveConnectionNames(client: Redis): Promise<string[] | undefined> {
  try {
    const list = await client.call("CLIENT", "LIST", "TYPE", "normal") as string;
    const names: string[] = [];
    for (const match of list.matchAll(/\bname=(\S+)/g)) names.push(match[1]!);
    return names;
  } catch (error) {
    if (error instanceof ReplyError) return undefined;
    throw error;
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
    await closeClient(client, 0);
    throw interpretError(socketError ?? error, "open a connection", target.where);
  }
}

/**
 * Closes a connection and resolves once nothing of it is left (socket, timers): QUIT when it is
 * up (waiting at most `quitWaitMs` for pending replies), then disconnect. Commands still queued
 * fail with "Connection is closed.".
 */
export async function closeClient(client: Redis, quitWaitMs: number): Promise<void> {
  if (client.status === "end") return;
  const ended = new Promise<void>((resolve) => client.once("end", () => resolve()));
  if (client.status === "ready" && quitWaitMs > 0) {
    await waitAtMost(client.quit().catch(() => {}), quitWaitMs);
  }
  client.disconnect();
  // Without a socket to close (Redis was down), "end" never comes: the disconnect timer is all.
  await waitAtMost(ended, DISCONNECT_TIMEOUT_MS + 20);
}

async function waitAtMost(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  await Promise.race([promise, timeout]);
  clearTimeout(timer);
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
 * The one place native errors of Redis calls become {@linkcode BrokerError}s (River's
 * `interpretError`): `Cannot <action> on Redis at host:port: <why>`, code `UNAVAILABLE`, the
 * cause attached. TTG's own errors and argument errors pass unchanged.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { interpretError } from "./connection.ts";
 * const error = interpretError(new Error("Connection is closed."), 'ack 2 deliveries', "h:6379");
 * assert.equal(error.message, "Cannot ack 2 deliveries on Redis at h:6379: Connection is closed.");
 * ```
 */
export function interpretError(error: unknown, action: string, where: string): Error {
  if (error instanceof TtgError || error instanceof TypeError || error instanceof RangeError) {
    return error;
  }
  return new BrokerError(
    "UNAVAILABLE",
    `Cannot ${action} on Redis at ${where}: ${redactUrl(errorMessage(error))}`,
    { cause: error },
  );
}
