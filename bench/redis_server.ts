/**
 * A redis-server of the bench's own, on a free port and without persistence, so that its figures
 * (and its INFO memory) are the bench's alone.
 *
 * @module
 */
import { Redis } from "ioredis";

/** A private redis-server: its URL, and how to stop it. */
export interface RedisServer {
  readonly url: string;
  stop(): Promise<void>;
}

/** Starts a redis-server of our own on a free port; fails if `redis-server` is not installed. */
export async function startRedisServer(): Promise<RedisServer> {
  const dir = await Deno.makeTempDir({ prefix: "ttg-bench-redis-" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const child = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0;; i++) {
    const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null });
    probe.on("error", () => {});
    try {
      await probe.connect();
      await probe.quit();
      break;
    } catch (error) {
      probe.disconnect();
      if (i > 100) throw error;
      await sleep(50);
    }
  }
  return {
    url,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
