/**
 * The broker of a process's settings: opened with the options the settings imply, each
 * connection retry one line on stderr. Apart from serve.ts so that a command that only reads the
 * broker (`ttg status`, `ttg dlq`, the dashboard) loads no worker code, and a worker no command's.
 *
 * @module
 */
import type { Broker, ConnectRetry, PartialBrokerOptions } from "../brokers/broker.ts";
import { openBroker } from "../brokers/open.ts";
import type { Settings } from "./settings.ts";

/** Broker options that follow from the settings. */
export function brokerOptionsOf(settings: Settings, consumerId: string): PartialBrokerOptions {
  return {
    consumerId,
    leaseMs: settings.leaseMs,
    retry: {
      maxAttempts: settings.maxAttempts,
      baseDelayMs: settings.retryBaseMs,
      factor: 2,
      maxDelayMs: Math.max(settings.retryBaseMs, 30_000),
      maxCrashes: settings.maxCrashes,
      minSplit: settings.minSplit,
    },
  };
}

/** The line `ttg` writes to stderr for each retry of a broker connection. */
export function connectRetryLine(retry: ConnectRetry): string {
  return `Connecting to ${retry.target}: ${retry.reason}; retrying in ${
    (retry.delayMs / 1000).toFixed(1)
  } s`;
}

/** Opens the broker the settings name; each connection retry is one line on stderr. */
export function openBrokerFor(settings: Settings, consumerId: string): Promise<Broker> {
  return openBroker({
    backend: settings.backend,
    url: settings.brokerUrl,
    sqlitePath: settings.sqlitePath,
    tls: settings.tls,
    queueType: settings.queueType,
    connectTimeoutMs: settings.connectTimeoutMs,
    onConnectRetry: (retry) => console.error(connectRetryLine(retry)),
    ...brokerOptionsOf(settings, consumerId),
  });
}

/** Opens the broker of `settings` for a one-shot command and closes it after `fn`. */
export async function withBroker<T>(
  settings: Settings,
  fn: (broker: Broker) => Promise<T>,
): Promise<T> {
  const broker = await openBrokerFor(settings, `cli-${Deno.pid}`);
  try {
    return await fn(broker);
  } finally {
    await broker.close();
  }
}
