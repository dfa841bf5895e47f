/**
 * The RabbitMQ broker's key-value store (brokers/rabbitmq/kv.ts) against a real RabbitMQ: what
 * the conformance suite reaches only through the registry (puts that replace, times to live,
 * ifAbsent, long keys, the index that list() folds and compacts), and that readers racing each
 * other never read a value as absent. Each case uses its own name prefix and deletes its queues.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as amqp from "amqplib";
import { RabbitConnection } from "../brokers/rabbitmq/connection.ts";
import { kvNames, RabbitKv } from "../brokers/rabbitmq/kv.ts";
import { rabbitTarget } from "../brokers/rabbitmq/target.ts";

const URL_ = Deno.env.get("AMQP_URL") ?? "amqp://guest:guest@127.0.0.1:5672";

async function reachable(): Promise<string | undefined> {
  try {
    await (await amqp.connect(URL_)).close();
    return undefined;
  } catch (error) {
    return `RabbitMQ is not reachable: ${(error as Error).message}`;
  }
}

const unreachable = await reachable();

/** A store under a fresh prefix on its own connection, with the queues it made deleted after. */
async function setup(): Promise<
  { prefix: string; open(): Promise<RabbitKv>; queueLength(queue: string): Promise<number> } & {
    [Symbol.asyncDispose](): Promise<void>;
  }
> {
  const prefix = `ttgtest-${crypto.randomUUID().slice(0, 8)}`;
  const connections: RabbitConnection[] = [];
  const raw = await amqp.connect(URL_);
  const channel = await raw.createChannel();
  return {
    prefix,
    async open() {
      const connection = new RabbitConnection(
        rabbitTarget({ url: URL_, leaseMs: 30_000 }),
        "ttg kv test",
        () => Promise.resolve(),
      );
      await connection.open();
      connections.push(connection);
      return new RabbitKv(connection, prefix);
    },
    async queueLength(queue) {
      return (await channel.checkQueue(queue)).messageCount;
    },
    async [Symbol.asyncDispose]() {
      for (const connection of connections) await connection.close();
      const out = await new Deno.Command("rabbitmqctl", {
        args: ["-q", "list_queues", "name"],
        stdout: "piped",
        stderr: "null",
      }).output();
      const names = new TextDecoder().decode(out.stdout).split("\n").map((l) => l.trim());
      for (const name of names.filter((n) => n.startsWith(`${prefix}:kv`))) {
        await channel.deleteQueue(name);
      }
      await raw.close();
    },
  };
}

function kvTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name: `rabbitmq kv: ${name}${unreachable ? ` (skipped: ${unreachable})` : ""}`,
    ignore: unreachable !== undefined,
    fn,
  });
}

kvTest(
  "a put replaces the value, a time to live expires it, ifAbsent writes only over none, ifValue only over its value",
  async () => {
    await using store = await setup();
    const kv = await store.open();
    assert.equal(await kv.get("settings", "a"), null);
    assert.equal(await kv.put("settings", "a", "1"), true);
    assert.equal(await kv.put("settings", "a", "2"), true);
    assert.equal(await kv.get("settings", "a"), "2");
    assert.equal(await store.queueLength(await kvNames(store.prefix).entry("settings", "a")), 1);
    await kv.put("workers", "w", "x", { ttlMs: 200 });
    assert.equal(await kv.put("workers", "w", "y", { ifAbsent: true }), false);
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(await kv.get("workers", "w"), null, "expired");
    assert.equal(await kv.put("workers", "w", "z", { ifAbsent: true }), true);
    assert.equal(await kv.get("workers", "w"), "z");
    assert.equal(await kv.put("workers", "w", "v", { ifValue: "x" }), false);
    assert.equal(await kv.put("workers", "w", "v", { ifValue: "z" }), true);
    assert.equal(await kv.put("settings", "b", "v", { ifValue: "z" }), false, "no value");
    assert.deepEqual([await kv.get("workers", "w"), await kv.get("settings", "b")], ["v", null]);
    await kv.delete("settings", "a");
    assert.equal(await kv.get("settings", "a"), null);
  },
);

kvTest(
  "a key too long for a queue name is hashed and reads back; a '~' key cannot collide",
  async () => {
    await using store = await setup();
    const kv = await store.open();
    const long = "k".repeat(300);
    const name = await kvNames(store.prefix).entry("workers", long);
    assert.ok(new TextEncoder().encode(name).length <= 255, name);
    await kv.put("workers", long, "long");
    await kv.put("workers", "~x", "tilde");
    assert.equal(await kv.get("workers", long), "long");
    assert.equal(await kv.get("workers", "~x"), "tilde");
    assert.deepEqual((await kv.list("workers")).sort(), [["~x", "tilde"], [long, "long"]].sort());
  },
);

kvTest(
  "list() shows live entries once, drops deleted and expired ones, and compacts its index",
  async () => {
    await using store = await setup();
    const [one, two] = [await store.open(), await store.open()];
    await one.put("jobs", "a", "A");
    await two.put("jobs", "a", "A2"); // a second instance appends the key again
    await one.put("jobs", "b", "B");
    await one.put("jobs", "c", "C", { ttlMs: 50 });
    await one.delete("jobs", "b");
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.deepEqual(await two.list("jobs"), [["a", "A2"]]);
    const index = kvNames(store.prefix).index("jobs");
    assert.equal(await store.queueLength(index), 2, "a once, and c (its queue stays, empty)");
    await one.put("jobs", "b", "B again"); // deleted, then written again: listed again
    assert.deepEqual((await one.list("jobs")).sort(), [["a", "A2"], ["b", "B again"]]);
  },
);

kvTest("readers racing each other on one entry never read it as absent", async () => {
  await using store = await setup();
  const readers = [await store.open(), await store.open(), await store.open()];
  await readers[0]!.put("controls", "job", "paused");
  const reads = await Promise.all(
    Array.from({ length: 60 }, (_, i) => readers[i % readers.length]!.get("controls", "job")),
  );
  assert.deepEqual(new Set(reads), new Set(["paused"]));
});
