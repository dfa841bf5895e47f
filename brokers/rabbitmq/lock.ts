/**
 * A mutex across broker instances: an exclusive consumer on a queue that never holds a message
 * (RabbitMQ refuses a second exclusive consumer, and drops the first with its connection, so a
 * holder that dies releases it). The RabbitMQ broker holds a job's lock while it dead-letters,
 * so two copies of one chunk that outlived a crash and fail at the same moment in two workers
 * cannot both write a dead letter: the second reads the first's letter and writes none.
 *
 * @module
 */
import type { Channel } from "amqplib";
import { errorMessage } from "../../errors.ts";
import { type RabbitConnection, Unreachable } from "./connection.ts";

/** How long a step waits for the lock before failing (its deliveries are then put back). */
const LOCK_TIMEOUT_MS = 15_000;

/** Runs `step` while holding the lock of queue `queue` (declared if missing, non-durable). */
export async function withLock<T>(
  connection: RabbitConnection,
  queue: string,
  step: () => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  for (let attempt = 1;; attempt++) {
    const channel = await connection.channel();
    try {
      if (await acquire(channel, queue)) return await step();
    } finally {
      await channel.close().catch(() => {});
    }
    if (Date.now() > deadline) {
      throw new Unreachable(`the lock "${queue}" was held for more than ${LOCK_TIMEOUT_MS} ms`);
    }
    await new Promise((r) => setTimeout(r, 2 + Math.random() * 10 * Math.min(attempt, 10)));
  }
}

/** True once `channel` holds the lock; false when another holder has it (the channel closed). */
async function acquire(channel: Channel, queue: string): Promise<boolean> {
  try {
    await channel.assertQueue(queue, { durable: false, autoDelete: false });
    await channel.consume(queue, () => {}, { exclusive: true, noAck: true });
    return true;
  } catch (error) {
    if (/403|ACCESS[-_]REFUSED|exclusive/i.test(errorMessage(error))) return false;
    throw error;
  }
}
