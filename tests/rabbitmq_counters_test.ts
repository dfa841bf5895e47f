/**
 * The RabbitMQ broker's zombie count against a real RabbitMQ: a count that RabbitMQ could not
 * take is kept and sent again, and an event sent twice (its confirm lost) is counted once.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as amqp from "amqplib";
import { RabbitConnection, type Session } from "../brokers/rabbitmq/connection.ts";
import { addCounters, readCounters } from "../brokers/rabbitmq/counters.ts";
import { rabbitTarget } from "../brokers/rabbitmq/target.ts";
import { jobNames } from "../brokers/rabbitmq/topology.ts";
import { ZombieCounts } from "../brokers/rabbitmq/zombies.ts";
import { until } from "./helpers.ts";

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

Deno.test({
  name: `rabbitmq: a zombie count RabbitMQ did not take is sent again, and counted once${
    unreachable ? ` (skipped: ${unreachable})` : ""
  }`,
  ignore: unreachable !== undefined,
  async fn() {
    const names = jobNames(`ttgtest-${crypto.randomUUID().slice(0, 8)}`, "zombies");
    const raw = await amqp.connect(URL_);
    const channel = await raw.createChannel();
    await channel.assertQueue(names.stats, { durable: true });
    const connection = new RabbitConnection(
      rabbitTarget({ url: URL_, leaseMs: 30_000 }),
      "ttg counters test",
      () => Promise.resolve(),
    );
    await connection.open();
    try {
      // The same event twice (a publish whose confirm was lost, sent again): one count.
      const session = await connection.session();
      const event = { id: crypto.randomUUID(), zombies: 2 };
      await addCounters(session, names, event);
      await addCounters(session, names, event);
      await addCounters(session, names, { zombies: 1 }); // no id: each one counts
      assert.equal((await readCounters(connection, names)).zombies, 3);

      // RabbitMQ out of reach for the first tries: the count waits, then lands once.
      let refusals = 2;
      const counts = new ZombieCounts((): Promise<Session> =>
        refusals-- > 0 ? Promise.reject(new Error("unreachable")) : connection.session()
      );
      await counts.add(names, 4);
      assert.equal(counts.pending, 4, "the refused count is kept");
      await until(() => counts.pending === 0 ? true : undefined, 10_000, "the count to be sent");
      assert.equal((await readCounters(connection, names)).zombies, 7);
      await counts.close();
    } finally {
      await connection.close();
      await channel.deleteQueue(names.stats);
      await raw.close();
    }
  },
});
