/**
 * What the Redis test files share: where Redis is, raw clients, key scans, and cases on the shared
 * Redis, each under its own key prefix (its keys deleted after it; nothing is flushed).
 *
 * Redis is `REDIS_URL`, else `REDIS_HOST`/`REDIS_PORT`, else 127.0.0.1:6379.
 *
 * @module
 */
import { Redis } from "ioredis";
import type { Broker } from "../brokers/broker.ts";
import { openRedisBroker, type RedisBrokerOptions } from "../brokers/redis/redis.ts";
import { closeClient } from "../brokers/redis/connection.ts";

/** URL of the shared Redis. */
export const REDIS_URL = Deno.env.get("REDIS_URL") ??
  `redis://${Deno.env.get("REDIS_HOST") ?? "127.0.0.1"}:${Deno.env.get("REDIS_PORT") ?? "6379"}`;

async function reachable(url: string): Promise<string | undefined> {
  const client = new Redis(url, {
    lazyConnect: true,
    retryStrategy: () => null,
    disconnectTimeout: 100,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.ping();
    return undefined;
  } catch (error) {
    return `Redis is not reachable at ${url}: ${(error as Error).message}`;
  } finally {
    await closeClient(client, 1000);
  }
}

/** Why the shared Redis cannot be used, or undefined when it answers. */
export const unreachable = await reachable(REDIS_URL);

/** A fresh key prefix; the job whose id equals it uses the predecessor's names (`<p>:tasks`). */
export function freshPrefix(kind = "test"): string {
  return `ttg${kind}-${crypto.randomUUID().slice(0, 8)}`;
}

/** A plain ioredis client (RESP2, as the broker speaks), for reads and writes around the broker. */
export async function rawClient(url = REDIS_URL): Promise<Redis> {
  const client = new Redis(url, { lazyConnect: true, protocol: 2, disconnectTimeout: 100 });
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** Keys matching `pattern` (SCAN, never KEYS), sorted. */
export async function scanKeys(client: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, page] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    keys.push(...page);
  } while (cursor !== "0");
  return keys.sort();
}

/** Deletes every key under `prefix:` (never FLUSH). */
export async function deleteKeys(client: Redis, prefix: string): Promise<void> {
  const keys = await scanKeys(client, `${prefix}:*`);
  for (let i = 0; i < keys.length; i += 1000) await client.unlink(...keys.slice(i, i + 1000));
}

/** What a case on the shared Redis gets: its prefix, a raw client, and brokers closed after it. */
export interface SharedCase {
  readonly prefix: string;
  readonly client: Redis;
  open(options?: Partial<RedisBrokerOptions>): Promise<Broker>;
}

/** A case on the shared Redis under its own prefix; its brokers are closed, its keys deleted. */
export function sharedTest(name: string, fn: (c: SharedCase) => Promise<void>): void {
  Deno.test({
    name: `redis: ${name}`,
    ignore: unreachable !== undefined,
    sanitizeOps: true,
    sanitizeResources: true,
    async fn() {
      const prefix = freshPrefix();
      const client = await rawClient();
      const brokers: Broker[] = [];
      const open = async (options: Partial<RedisBrokerOptions> = {}) => {
        const broker = await openRedisBroker({ url: REDIS_URL, keyPrefix: prefix, ...options });
        brokers.push(broker);
        return broker;
      };
      try {
        await fn({ prefix, client, open });
      } finally {
        for (const broker of brokers) await broker.close();
        await deleteKeys(client, prefix);
        await closeClient(client, 1000);
      }
    },
  });
}
