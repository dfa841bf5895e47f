/**
 * Non-destructive reads of RabbitMQ queues, and the results of a job as this instance knows them.
 *
 * A snapshot takes every message of a queue with an **exclusive** consumer and no acks, then
 * closes its channel, so RabbitMQ puts them all back in their places. Exclusivity serialises
 * readers: while one reads, another's consume is refused and it retries. (Only classic queues
 * enforce exclusive consumers, which is why these queues are always classic.)
 *
 * Results and dead letters are never consumed. A job's are read once with a snapshot, then kept
 * current by a live feed: an exclusive queue bound to their exchange, so it receives a copy of
 * every message published after it. {@linkcode LiveIndexes.fresh} sends a marker through the feed
 * and waits for it: every message confirmed before the call is then known.
 *
 * @module
 */
import type { Channel, ConsumeMessage } from "amqplib";
import type { ResultPage, StoredResult } from "../broker.ts";
import { errorMessage } from "../../errors.ts";
import { decodeResults, ID_HEADER, isMalformedLetter } from "./codec.ts";
import { type RabbitConnection, type Session, Unreachable } from "./connection.ts";
import type { JobNames } from "./topology.ts";

/** How long a snapshot keeps retrying while another reader holds the queue. */
const SNAPSHOT_TIMEOUT_MS = 15_000;
/** A snapshot that got fewer messages than counted stops after this much silence. */
const SNAPSHOT_IDLE_MS = 1000;
/** How long a marker may take through the live feed. */
const SYNC_TIMEOUT_MS = 5000;
const SYNC_HEADER = "x-ttg-sync";

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
      if (count > 0) {
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
        throw new Unreachable(
          `queue "${queue}" is held by another reader for more than ${SNAPSHOT_TIMEOUT_MS} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * Math.min(attempt + 1, 5)));
    } finally {
      await channel.close().catch(() => {});
    }
  }
}

class Busy extends Error {}

/** Key that identifies one results message, however many times it is read. */
function messageKey(message: { content: Uint8Array; properties: { headers?: unknown } }): string {
  const headers = message.properties.headers as Record<string, unknown> | undefined;
  const id = headers?.[ID_HEADER];
  return typeof id === "string" ? id : new TextDecoder().decode(message.content);
}

/**
 * The results of one job: the first result of each chunk (in queue order) is counted, every
 * other copy is a duplicate. Messages are recognised by key, so reading the queue again, or the
 * same message through the live feed, changes nothing.
 */
export class ResultIndex {
  readonly #first = new Map<string, StoredResult>();
  /** The counted results in the order they were first seen (the queue's order): pages' order. */
  readonly #order: StoredResult[] = [];
  readonly #seen = new Set<string>();
  #copies = 0;
  #params = 0;

  /** Adds the results of one message (ignored when its key was seen). */
  add(key: string, results: readonly StoredResult[]): void {
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    for (const result of results) {
      this.#copies += 1;
      if (this.#first.has(result.chunkId)) continue;
      this.#first.set(result.chunkId, result);
      this.#order.push(result);
      this.#params += Number(result.params) || 0;
    }
  }

  /** Adds a results message as received from RabbitMQ. */
  addMessage(message: ConsumeMessage): void {
    const key = messageKey(message);
    if (!this.#seen.has(key)) this.add(key, decodeResults(message.content));
  }

  /** Whether the chunk has a counted result. */
  has(chunkId: string): boolean {
    return this.#first.has(chunkId);
  }

  get completed(): number {
    return this.#first.size;
  }

  get duplicates(): number {
    return this.#copies - this.#first.size;
  }

  /** Parameters of the counted results. */
  get completedParams(): number {
    return this.#params;
  }

  /**
   * The counted results after `cursor` (a position in this order, which only grows at its end),
   * at most `limit` of them.
   */
  page(cursor: string | null, limit: number): ResultPage {
    const start = cursor === null ? 0 : parseCursor(cursor);
    const results = this.#order.slice(start, start + limit);
    const end = start + results.length;
    return { results, cursor: end < this.#order.length ? `r${end.toString(36)}` : null };
  }
}

/** The position a results cursor names; a `TypeError` for anything else. */
function parseCursor(cursor: string): number {
  const n = /^r[0-9a-z]{1,10}$/.test(cursor) ? parseInt(cursor.slice(1), 36) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new TypeError(`Invalid cursor "${cursor}": expected the cursor of a previous page`);
  }
  return n;
}

/** The dead-lettered chunks of one job (unreadable messages are not chunks). */
export class LetterIndex {
  readonly #chunks = new Set<string>();

  /** Adds a dead-letter message as received from RabbitMQ. */
  addMessage(message: ConsumeMessage): void {
    if (isMalformedLetter(message.properties)) return;
    try {
      const chunkId = JSON.parse(new TextDecoder().decode(message.content))?.chunk_id;
      if (typeof chunkId === "string") this.#chunks.add(chunkId);
    } catch {
      // not a chunk
    }
  }

  /** Notes a dead letter this instance wrote (before its feed brings it). */
  add(chunkId: string): void {
    this.#chunks.add(chunkId);
  }

  /** Whether the chunk has a dead letter. */
  has(chunkId: string): boolean {
    return this.#chunks.has(chunkId);
  }
}

interface Feed {
  readonly session: Session;
  readonly queue: string;
  readonly tag: string;
  /** Waiting markers: called with nothing when the marker came back, with an error otherwise. */
  readonly markers: Map<string, (error?: Error) => void>;
}

interface JobIndex<I> {
  readonly index: I;
  feed?: Feed;
  starting?: Promise<Feed | undefined>;
}

/** Which queue a {@linkcode LiveIndexes} reads, and what it builds of its messages. */
export interface LiveQueue<I> {
  /** The queue, its exchange and routing key. */
  where(names: JobNames): { queue: string; exchange: string; key: string };
  /** A new, empty index. */
  create(): I;
}

/**
 * An index per job of a queue that is never consumed (results, dead letters): read once with a
 * snapshot, then kept current by a live feed.
 */
export class LiveIndexes<I extends { addMessage(message: ConsumeMessage): void }> {
  readonly #connection: RabbitConnection;
  readonly #names: (jobId: string) => JobNames;
  readonly #kind: LiveQueue<I>;
  readonly #jobs = new Map<string, JobIndex<I>>();

  constructor(
    connection: RabbitConnection,
    names: (jobId: string) => JobNames,
    kind: LiveQueue<I>,
  ) {
    this.#connection = connection;
    this.#names = names;
    this.#kind = kind;
  }

  /** What this instance knows of the job now, without reading anything. */
  known(jobId: string): I {
    return this.#job(jobId).index;
  }

  /** The job's index, including every message confirmed before this call. */
  async fresh(jobId: string): Promise<I> {
    const job = this.#job(jobId);
    const session = await this.#connection.session();
    let feed = job.feed?.session === session && session.alive ? job.feed : undefined;
    if (!feed) {
      job.starting ??= this.#start(jobId, job, session).finally(() => (job.starting = undefined));
      feed = await job.starting;
      if (!feed) return job.index; // the job has no such queue: nothing to know
    }
    await this.#sync(feed);
    return job.index;
  }

  /** Forgets the job (a reset, or messages removed): stops its feed. */
  async forget(jobId: string): Promise<void> {
    const job = this.#jobs.get(jobId);
    this.#jobs.delete(jobId);
    const feed = job?.feed;
    if (feed?.session.alive) await feed.session.main.cancel(feed.tag).catch(() => {});
  }

  #job(jobId: string): JobIndex<I> {
    let job = this.#jobs.get(jobId);
    if (!job) {
      job = { index: this.#kind.create() };
      this.#jobs.set(jobId, job);
    }
    return job;
  }

  async #start(jobId: string, job: JobIndex<I>, session: Session): Promise<Feed | undefined> {
    const { queue: source, exchange, key } = this.#kind.where(this.#names(jobId));
    const admin = this.#connection.admin;
    if (!(await admin.probe(source))) return undefined;
    let queue: string;
    try {
      queue = await admin.run(async (ch) => {
        const ok = await ch.assertQueue("", { exclusive: true, autoDelete: true, durable: false });
        await ch.bindQueue(ok.queue, exchange, key);
        return ok.queue;
      });
    } catch (error) {
      if (/404|NOT[-_]FOUND/.test(errorMessage(error))) return undefined; // reset meanwhile
      throw error;
    }
    const markers = new Map<string, (error?: Error) => void>();
    session.onLost(() => {
      for (const done of [...markers.values()]) done(new Unreachable("the connection was lost"));
    });
    const { consumerTag } = await session.main.consume(queue, (m) => {
      if (!m) return;
      const marker = m.properties.headers?.[SYNC_HEADER];
      if (typeof marker === "string") markers.get(marker)?.();
      else job.index.addMessage(m);
    }, { noAck: true });
    await snapshot(this.#connection, source, (messages) => {
      for (const m of messages) job.index.addMessage(m);
    });
    const feed = { session, queue, tag: consumerTag, markers };
    if (this.#jobs.get(jobId) === job) job.feed = feed;
    return feed;
  }

  /** Sends a marker through the feed; resolves when it came back. */
  #sync(feed: Feed): Promise<void> {
    const id = crypto.randomUUID();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        feed.markers.delete(id);
        reject(new Unreachable(`the live feed was silent for ${SYNC_TIMEOUT_MS} ms`));
      }, SYNC_TIMEOUT_MS);
      feed.markers.set(id, (error) => {
        clearTimeout(timer);
        feed.markers.delete(id);
        if (error) reject(error);
        else resolve();
      });
      try {
        feed.session.main.sendToQueue(feed.queue, Buffer.alloc(0), {
          headers: { [SYNC_HEADER]: id },
          persistent: false,
        });
      } catch (error) {
        clearTimeout(timer);
        feed.markers.delete(id);
        reject(error);
      }
    });
  }
}

/** The results queue of a job. */
export const RESULTS: LiveQueue<ResultIndex> = {
  where: (names) => ({ queue: names.results, exchange: names.resultsExchange, key: names.results }),
  create: () => new ResultIndex(),
};

/** The dead-letter queue of a job. */
export const LETTERS: LiveQueue<LetterIndex> = {
  where: (names) => ({ queue: names.dlq, exchange: names.dlqExchange, key: names.dlq }),
  create: () => new LetterIndex(),
};

/** The results of every job this instance reads or writes. */
export type Results = LiveIndexes<ResultIndex>;
/** The dead-lettered chunks of every job this instance dead-letters into. */
export type Letters = LiveIndexes<LetterIndex>;
