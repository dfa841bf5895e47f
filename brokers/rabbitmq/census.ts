/**
 * Who holds which chunks of a job, asked of its consumers themselves (RabbitMQ cannot tell which
 * chunk an unacked message is).
 *
 * - **Presence**: each consumer of a job consumes the job's `<base>.consumers` queue, which never
 *   holds a message; its consumer count is the job's live consumers (a consumer whose connection
 *   died, or that closed, is gone from it at once).
 * - **Census**: a reader publishes a request on the job's fanout `control` exchange; every
 *   consumer's private control queue receives it. The consumer pauses the job's
 *   {@linkcode TransitionGate}, waits for the steps under way, and answers, on RabbitMQ's direct
 *   reply-to, the ids of the chunks it holds (handed out, prefetched, or being recovered). It
 *   starts no new step until the reader's `release` (or `PAUSE_MAX_MS`).
 * - **Announcements**: a reset, dead letters replayed or purged, and a change of the job's
 *   control (pause, resume, cancel) are announced on the same exchange, so consumers drop what
 *   they knew.
 *
 * @module
 */
import type { Channel, ConsumeMessage } from "amqplib";
import type { RabbitConnection, Session } from "./connection.ts";
import type { JobNames } from "./topology.ts";

const REPLY_TO = "amq.rabbitmq.reply-to";
/** Longest wait for the consumers' answers. */
const CENSUS_TIMEOUT_MS = 1000;

/** What a consumer does when the job's census, release or reset arrives. */
export interface CensusHandlers {
  /** Pauses the job's gate (until `release`), waits for the steps under way; the held chunk ids. */
  census(jobId: string, id: string): Promise<string[]>;
  release(jobId: string, id: string): void;
  reset(jobId: string): void;
  /** Dead letters of the job were replayed or purged. */
  lettersRemoved(jobId: string): void;
  /** The job's control changed. */
  controlChanged(jobId: string): void;
}

/** The consumer side: a private control queue per session, and presence per job. */
export class CensusResponder {
  readonly #instance = crypto.randomUUID();
  readonly #connection: RabbitConnection;
  readonly #names: (jobId: string) => JobNames;
  readonly #handlers: CensusHandlers;
  #control: { session: Session; queue: string; joined: Map<string, Promise<void>> } | undefined;

  /** This instance's id: its own announcements come back to it and are ignored. */
  get instance(): string {
    return this.#instance;
  }

  constructor(
    connection: RabbitConnection,
    names: (jobId: string) => JobNames,
    handlers: CensusHandlers,
  ) {
    this.#connection = connection;
    this.#names = names;
    this.#handlers = handlers;
  }

  /** Starts the private control queue of a new session. */
  async setupSession(session: Session): Promise<void> {
    const { queue } = await session.main.assertQueue("", {
      exclusive: true,
      autoDelete: true,
      durable: false,
    });
    this.#control = { session, queue, joined: new Map() };
    await session.main.consume(queue, (m) => m && this.#receive(session, m), { noAck: true });
  }

  /**
   * Makes this instance a consumer of the job on `session`: present in its consumer count and
   * answering its censuses. Once per session and job; the job's topology must exist.
   */
  join(session: Session, jobId: string): Promise<void> {
    const control = this.#control;
    if (!control || control.session !== session) return Promise.resolve();
    let joined = control.joined.get(jobId);
    if (!joined) {
      const names = this.#names(jobId);
      joined = (async () => {
        await this.#connection.admin.run((ch) => ch.bindQueue(control.queue, names.control, ""));
        await session.main.consume(names.presence, (m) => {
          if (!m) control.joined.delete(jobId); // its queue was deleted (reset): join again
        }, { noAck: true });
      })();
      control.joined.set(jobId, joined);
      joined.catch(() => control.joined.delete(jobId));
    }
    return joined;
  }

  /** Forgets the job on this session (after a reset, the next pull joins again). */
  leave(jobId: string): void {
    this.#control?.joined.delete(jobId);
  }

  #receive(session: Session, message: ConsumeMessage): void {
    let request: { type?: string; jobId?: string; id?: string; from?: string };
    try {
      request = JSON.parse(message.content.toString());
    } catch {
      return; // not ours
    }
    const { type, jobId, id = "" } = request;
    if (typeof jobId !== "string") return;
    if (type === "release") return this.#handlers.release(jobId, id);
    if (type === "reset") return this.#handlers.reset(jobId);
    if (type === "letters") return this.#handlers.lettersRemoved(jobId);
    if (type === "control" && request.from !== this.#instance) {
      return this.#handlers.controlChanged(jobId);
    }
    const replyTo = message.properties.replyTo;
    if (type !== "census" || typeof replyTo !== "string") return;
    void this.#handlers.census(jobId, id).then((held) => {
      if (!session.alive) return;
      const reply = { instance: this.#instance, id, held };
      session.main.sendToQueue(replyTo, Buffer.from(JSON.stringify(reply)), {
        persistent: false,
      });
    }).catch(() => {});
  }
}

/** A census in progress: the consumers' answers, until released. */
export interface CensusRound {
  /** Chunk ids held by the consumers that answered (each once). */
  readonly held: ReadonlySet<string>;
  /** Consumers that answered. */
  readonly answered: number;
  /** When the request went out (`Date.now()`); the consumers' pauses run from then. */
  readonly sentAt: number;
  /** Lets the consumers go on; idempotent. */
  release(): Promise<void>;
}

/**
 * Asks the job's consumers what they hold and waits for `expected` answers (or
 * `CENSUS_TIMEOUT_MS`); they stay paused until `release()`.
 */
export async function takeCensus(
  connection: RabbitConnection,
  names: JobNames,
  expected: number,
): Promise<CensusRound> {
  const sentAt = Date.now();
  const empty = { held: new Set<string>(), answered: 0, sentAt, release: () => Promise.resolve() };
  if (expected <= 0) return empty;
  const channel = await connection.channel();
  const id = crypto.randomUUID();
  const held = new Set<string>();
  const instances = new Set<string>();
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    publish(channel, names, { type: "release", jobId: names.jobId, id });
    await channel.close().catch(() => {});
  };
  try {
    await channel.checkExchange(names.control);
  } catch {
    await channel.close().catch(() => {});
    return empty; // no control exchange: the job has no consumers
  }
  let done: () => void = () => {};
  const answered = new Promise<void>((resolve) => (done = resolve));
  await channel.consume(REPLY_TO, (message) => {
    if (!message) return;
    try {
      const reply = JSON.parse(message.content.toString()) as {
        instance?: unknown;
        id?: unknown;
        held?: unknown;
      };
      if (reply.id !== id || typeof reply.instance !== "string" || !Array.isArray(reply.held)) {
        return;
      }
      instances.add(reply.instance);
      for (const chunkId of reply.held) if (typeof chunkId === "string") held.add(chunkId);
      if (instances.size >= expected) done();
    } catch {
      // a foreign message
    }
  }, { noAck: true });
  publish(channel, names, { type: "census", jobId: names.jobId, id }, REPLY_TO);
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([answered, new Promise((r) => (timer = setTimeout(r, CENSUS_TIMEOUT_MS)))]);
  clearTimeout(timer);
  return {
    held,
    get answered() {
      return instances.size;
    },
    sentAt,
    release,
  };
}

/** Tells the job's consumers that it was reset, that dead letters went away, or its control. */
export async function announce(
  connection: RabbitConnection,
  names: JobNames,
  type: "reset" | "letters" | "control",
  from?: string,
): Promise<void> {
  const channel = await connection.channel();
  try {
    await channel.checkExchange(names.control);
    publish(channel, names, { type, jobId: names.jobId, ...(from ? { from } : {}) });
  } catch {
    // no control exchange: nobody to tell
  } finally {
    await channel.close().catch(() => {});
  }
}

function publish(channel: Channel, names: JobNames, body: object, replyTo?: string): void {
  channel.publish(names.control, "", Buffer.from(JSON.stringify(body)), {
    persistent: false,
    ...(replyTo ? { replyTo } : {}),
  });
}
