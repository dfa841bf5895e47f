/**
 * Non-destructive reads of RabbitMQ queues (results, dead letters, job record, counters) and the
 * result index built from them.
 *
 * A snapshot takes every message of a queue with an **exclusive** consumer and no acks, then
 * closes its channel, so RabbitMQ puts them all back in their places. Exclusivity serialises
 * readers: while one reads, another's consume is refused and it retries, so no reader ever sees
 * a queue with some messages held by someone else. (Only classic queues enforce exclusive
 * consumers, which is why these queues are always classic.)
 *
 * @module
 */
import type { Channel, ConsumeMessage } from "amqplib";
import type { StoredResult } from "./contract.ts";
import { BrokerError, errorMessage } from "./errors.ts";
import { decodeResults, ID_HEADER } from "./rabbitmq_codec.ts";
import type { RabbitConnection } from "./rabbitmq_connection.ts";

/** How long a snapshot keeps retrying while another reader holds the queue. */
const SNAPSHOT_TIMEOUT_MS = 15_000;
/** A snapshot that got fewer messages than counted stops after this much silence. */
const SNAPSHOT_IDLE_MS = 1000;

/**
 * Reads every message of `queue`, calls `use` with them while they are still held (it may ack
 * some on `channel`, e.g. to purge them), then puts the rest back. Resolves null when the queue
 * does not exist.
 */
export async function snapshot<T>(
  connection: RabbitConnection,
  queue: string,
  use: (messages: ConsumeMessage[], channel: Channel) => Promise<T> | T,
): Promise<T | null> {
  const deadline = Date.now() + SNAPSHOT_TIMEOUT_MS;
  for (let attempt = 0;; attempt++) {
    const channel = await connection.channel();
    try {
      let count: number;
      try {
        const ok = await channel.checkQueue(queue);
        if (ok.consumerCount > 0) throw new Busy();
        count = ok.messageCount;
      } catch (error) {
        if (/404|NOT[-_]FOUND/.test(errorMessage(error))) return null;
        throw error;
      }
      const messages: ConsumeMessage[] = [];
      let wake: () => void = () => {};
      let last = Date.now();
      try {
        await channel.consume(queue, (message) => {
          if (!message) return;
          messages.push(message);
          last = Date.now();
          if (messages.length >= count) wake();
        }, { exclusive: true, noAck: false });
      } catch (error) {
        if (/403|ACCESS[-_]REFUSED|exclusive/.test(errorMessage(error))) throw new Busy();
        throw error;
      }
      while (messages.length < count && Date.now() - last < SNAPSHOT_IDLE_MS) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 100);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      return await use(messages, channel);
    } catch (error) {
      if (!(error instanceof Busy)) throw error;
      if (Date.now() > deadline) {
        throw new BrokerError(
          "UNAVAILABLE",
          `Cannot read queue "${queue}": another consumer kept it for ${SNAPSHOT_TIMEOUT_MS} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 40 * Math.min(attempt + 1, 5)));
    } finally {
      await channel.close().catch(() => {});
    }
  }
}

class Busy extends Error {}

/** Key that identifies one results message, however many times it is read. */
export function messageKey(
  message: { content: Uint8Array; properties: { headers?: unknown } },
): string {
  const headers = message.properties.headers as Record<string, unknown> | undefined;
  const id = headers?.[ID_HEADER];
  return typeof id === "string" ? id : new TextDecoder().decode(message.content);
}

/**
 * The results of one job as this consumer knows them: the first result of each chunk (in queue
 * order) is counted, every other copy is a duplicate. Messages are recognised by key, so reading
 * the queue again, or the same message through the live feed, changes nothing.
 */
export class ResultIndex {
  readonly #first = new Map<string, StoredResult>();
  readonly #seen = new Set<string>();
  #copies = 0;
  /** Generation of the session whose live feed keeps this index current; 0 when none. */
  liveGeneration = 0;
  /** True once a full snapshot was read into it. */
  loaded = false;

  /** Adds the results of one message (ignored when its key was seen). */
  add(key: string, results: readonly StoredResult[]): void {
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    for (const result of results) {
      this.#copies += 1;
      if (!this.#first.has(result.chunkId)) this.#first.set(result.chunkId, result);
    }
  }

  /** Adds a results message as received from RabbitMQ. */
  addMessage(message: ConsumeMessage): void {
    const key = messageKey(message);
    if (this.#seen.has(key)) return;
    this.add(key, decodeResults(message.content));
  }

  has(chunkId: string): boolean {
    return this.#first.has(chunkId);
  }

  get completed(): number {
    return this.#first.size;
  }

  get duplicates(): number {
    return this.#copies - this.#first.size;
  }

  results(): StoredResult[] {
    return [...this.#first.values()];
  }
}

/** One consumer's answer to a census. */
export interface CensusReply {
  readonly instance: string;
  readonly inFlight: number;
}

const REPLY_TO = "amq.rabbitmq.reply-to";

/**
 * Asks every consumer of a job how many deliveries it holds (handed out or prefetched): a request
 * on the job's fanout `control` exchange, answers on RabbitMQ's direct reply-to. Waits for
 * `expected` distinct answers or `timeoutMs`.
 */
export async function census(
  connection: RabbitConnection,
  exchange: string,
  jobId: string,
  expected: number,
  timeoutMs = 300,
): Promise<CensusReply[]> {
  if (expected <= 0) return [];
  const channel = await connection.channel();
  const replies = new Map<string, CensusReply>();
  try {
    let done: () => void = () => {};
    const finished = new Promise<void>((resolve) => (done = resolve));
    await channel.consume(REPLY_TO, (message) => {
      if (!message) return;
      try {
        const reply = JSON.parse(message.content.toString()) as CensusReply;
        if (typeof reply.instance === "string" && typeof reply.inFlight === "number") {
          replies.set(reply.instance, reply);
        }
      } catch {
        // ignore a foreign message
      }
      if (replies.size >= expected) done();
    }, { noAck: true });
    channel.publish(exchange, "", Buffer.from(JSON.stringify({ type: "census", jobId })), {
      replyTo: REPLY_TO,
      persistent: false,
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      finished,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
  } catch {
    // no control exchange yet: nobody to ask
  } finally {
    await channel.close().catch(() => {});
  }
  return [...replies.values()];
}
