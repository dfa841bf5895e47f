/**
 * Opens the broker for a backend name and URL. Each backend's module is imported only when used,
 * so a SQLite run never loads the Redis or AMQP client.
 *
 * @module
 */
import type { Broker, ConnectRetry, PartialBrokerOptions } from "./broker.ts";
import { ConfigError } from "../errors.ts";

/** Options of {@linkcode openBroker}. */
export interface OpenBrokerOptions extends PartialBrokerOptions {
  /** `sqlite`, `redis` or `rabbitmq`. */
  readonly backend: string;
  /** redis://, rediss://, amqp:// or amqps:// URL (server backends). */
  readonly url?: string;
  /** Database file, or `:memory:` (sqlite). */
  readonly sqlitePath?: string;
  /** PEM strings for TLS to a server backend (with rediss:// or amqps://). */
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
  /** RabbitMQ task queues of namespaced jobs. @default "classic" */
  readonly queueType?: "classic" | "quorum";
  /** How long a server broker waits for its connection. @default the backend's (10 s, 5 s) */
  readonly connectTimeoutMs?: number;
  /** Told of each failed connection try that will be retried (RabbitMQ). */
  readonly onConnectRetry?: (retry: ConnectRetry) => void;
}

/**
 * Opens a broker.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openBroker } from "./open.ts";
 * const broker = await openBroker({ backend: "sqlite", sqlitePath: ":memory:" });
 * assert.equal(broker.backend, "sqlite");
 * await broker.close();
 * ```
 */
export async function openBroker(options: OpenBrokerOptions): Promise<Broker> {
  const {
    backend,
    url,
    sqlitePath,
    tls,
    queueType,
    connectTimeoutMs,
    onConnectRetry,
    ...brokerOptions
  } = options;
  switch (backend) {
    case "sqlite": {
      const { openSqliteBroker } = await import("./sqlite/sqlite.ts");
      return openSqliteBroker({ path: sqlitePath ?? ".ttg/ttg.db", ...brokerOptions });
    }
    case "redis": {
      const { openRedisBroker } = await import("./redis/redis.ts");
      return openRedisBroker({
        url: url || "redis://127.0.0.1:6379",
        ...(tls ? { tls } : {}),
        ...(connectTimeoutMs ? { connectTimeoutMs } : {}),
        ...brokerOptions,
      });
    }
    case "rabbitmq": {
      const { openRabbitBroker } = await import("./rabbitmq/rabbitmq.ts");
      return openRabbitBroker({
        url: url || "amqp://guest:guest@127.0.0.1:5672",
        ...(tls ? { tls } : {}),
        ...(queueType ? { queueType } : {}),
        ...(connectTimeoutMs ? { connectTimeoutMs } : {}),
        ...(onConnectRetry ? { onConnectRetry } : {}),
        ...brokerOptions,
      });
    }
    default:
      throw ConfigError.invalid("--backend", backend, "one of sqlite, redis, rabbitmq");
  }
}
