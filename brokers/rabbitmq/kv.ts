/**
 * The RabbitMQ broker's key-value store ({@linkcode DriverKv}), on which registry.ts builds the
 * job index, job controls, the fleet registry, settings and retention marks. RabbitMQ has no such
 * store, so each entry is a queue:
 *
 * - **One queue per (space, key)**, `<prefix>:kv:<space>:<key>` (`:` cannot occur in a job id,
 *   so no job's queue can be named so; a key that would make the name longer than RabbitMQ's 255
 *   bytes, or that starts with `~`, is replaced by `~` and its SHA-256). The queue holds at most
 *   one message (`x-max-length` 1, `x-overflow` drop-head), so a put replaces the value in one
 *   confirmed publish on the session's channel; a time to live is the message's `expiration`
 *   (with one message, it is always at the head, where classic queues expire messages).
 * - **A put to a missing queue** comes back `returned` (it is published mandatory): the queue is
 *   declared and the value published again. `workers` queues also expire (`x-expires`) once no one
 *   wrote them for a record's time to live, so a fleet's departed workers leave nothing behind;
 *   a writer declares its queue again every third of that, which renews the lease.
 * - **ifAbsent and ifValue** run under the space's cross-instance lock (lock.ts): read, compare,
 *   then put.
 * - **A get** takes a snapshot of the queue (reader.ts): an exclusive consumer on a short-lived
 *   channel, closed at once, so RabbitMQ puts the message back. The channel is the point: its
 *   close requeues the message and removes the consumer in one step of the queue, so a reader
 *   racing another sees either the value or a consumer (and retries), never a false "absent"
 *   (a `basic.get` and requeue would show an empty queue in between).
 * - **list** folds the space's index queue `<prefix>:kv:<space>`, where a key is appended the
 *   first time this instance writes it (and again when its queue had to be declared), reads each
 *   key, and compacts the index: repeated keys and keys whose queue is gone leave it.
 *
 * Deleting an entry deletes its queue, so a reset job leaves no queue of its entries.
 *
 * @module
 */
import type { ConsumeMessage } from "amqplib";
import { errorMessage } from "../../errors.ts";
import {
  type DriverKv,
  type KvPutOptions,
  type KvSpace,
  WORKER_RECORD_TTL_MS,
} from "../registry.ts";
import type { RabbitConnection } from "./connection.ts";
import { withLock } from "./lock.ts";
import { snapshot } from "./reader.ts";

/** Longest queue name RabbitMQ accepts, in bytes. */
const MAX_NAME_BYTES = 255;
/** Spaces whose queues expire once nobody wrote them for this long (`x-expires`). */
const EXPIRES_MS: Partial<Record<KvSpace, number>> = { workers: WORKER_RECORD_TTL_MS };

/** The queue names of a store under `prefix`. */
export interface KvNames {
  /** The index of a space's keys. */
  index(space: KvSpace): string;
  /** The queue of one entry. */
  entry(space: KvSpace, key: string): Promise<string>;
  /** The space's lock (ifAbsent). */
  lock(space: KvSpace): string;
}

/** Names under `prefix`. */
export function kvNames(prefix: string): KvNames {
  return {
    index: (space) => `${prefix}:kv:${space}`,
    async entry(space, key) {
      const plain = `${prefix}:kv:${space}:${key}`;
      if (!key.startsWith("~") && new TextEncoder().encode(plain).length <= MAX_NAME_BYTES) {
        return plain;
      }
      const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
      const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
      return `${prefix}:kv:${space}:~${hex}`;
    },
    lock: (space) => `${prefix}:kv-lock:${space}`,
  };
}

/**
 * The store, with a hook told of every write this instance made, once it is confirmed (the
 * control cache, and the announcement of a control change).
 */
export class RabbitKv implements DriverKv {
  readonly #connection: RabbitConnection;
  readonly #names: KvNames;
  readonly #onWrite: (space: KvSpace, key: string, value: string | null) => void;
  /** Entry queues this instance declared, with when (for `x-expires` renewal). */
  readonly #declared = new Map<string, number>();
  /** Keys this instance appended to their space's index. */
  readonly #indexed = new Set<string>();

  constructor(
    connection: RabbitConnection,
    prefix: string,
    onWrite: (space: KvSpace, key: string, value: string | null) => void = () => {},
  ) {
    this.#connection = connection;
    this.#names = kvNames(prefix);
    this.#onWrite = onWrite;
  }

  async put(
    space: KvSpace,
    key: string,
    value: string,
    options: KvPutOptions = {},
  ): Promise<boolean> {
    if (options.ifAbsent || options.ifValue !== undefined) {
      const expected = options.ifAbsent ? null : options.ifValue;
      return await withLock(this.#connection, this.#names.lock(space), async () => {
        if (await this.get(space, key) !== expected) return false;
        await this.#write(space, key, value, options.ttlMs);
        return true;
      });
    }
    await this.#write(space, key, value, options.ttlMs);
    return true;
  }

  async get(space: KvSpace, key: string): Promise<string | null> {
    const found = await this.#read(await this.#names.entry(space, key));
    return found?.value ?? null;
  }

  async list(space: KvSpace): Promise<[key: string, value: string][]> {
    const out: [string, string][] = [];
    await snapshot(this.#connection, this.#names.index(space), async (messages, channel) => {
      // Only a key found alive makes its later copies stale: a key appended again after its
      // queue was found gone (a put raced this read) is read once more.
      const alive = new Set<string>();
      const stale: ConsumeMessage[] = [];
      for (const message of messages) {
        const key = message.content.toString();
        if (alive.has(key)) {
          stale.push(message);
          continue;
        }
        const queue = await this.#names.entry(space, key);
        const found = await this.#read(queue);
        if (found === null) {
          stale.push(message); // deleted: its next put declares it and appends it again
          continue;
        }
        alive.add(key);
        if (found.value !== null) out.push([key, found.value]);
      }
      for (const message of stale) channel.ack(message);
    });
    return out;
  }

  async delete(space: KvSpace, key: string): Promise<void> {
    const queue = await this.#names.entry(space, key);
    await this.#connection.admin.run((ch) => ch.deleteQueue(queue));
    this.#declared.delete(queue);
    this.#indexed.delete(`${space}:${key}`);
    this.#onWrite(space, key, null);
  }

  /** The entry's value (null when it expired), or null when its queue does not exist. */
  #read(queue: string): Promise<{ value: string | null } | null> {
    return snapshot(this.#connection, queue, (held) => ({
      value: held[held.length - 1]?.content.toString() ?? null,
    }));
  }

  /** One confirmed publish; declares the entry (and indexes it) when its queue is missing. */
  async #write(space: KvSpace, key: string, value: string, ttlMs?: number): Promise<void> {
    const queue = await this.#names.entry(space, key);
    const expires = EXPIRES_MS[space];
    const declaredAt = this.#declared.get(queue);
    if (expires !== undefined && (declaredAt ?? 0) < Date.now() - expires / 3) {
      await this.#declare(space, key, queue);
    }
    const content = Buffer.from(value);
    const options = ttlMs === undefined
      ? {}
      : { expiration: String(Math.max(1, Math.ceil(ttlMs))) };
    const session = await this.#connection.session();
    let outcome = await session.publish("", queue, content, options);
    if (outcome === "returned") {
      await this.#declare(space, key, queue);
      outcome = await session.publish("", queue, content, options);
    }
    if (outcome !== "ack") throw new Error(`the value of "${space}/${key}" was ${outcome}`);
    this.#onWrite(space, key, value);
    if (!this.#indexed.has(`${space}:${key}`)) await this.#index(space, key);
  }

  async #declare(space: KvSpace, key: string, queue: string): Promise<void> {
    const expires = EXPIRES_MS[space];
    const args: Record<string, unknown> = { "x-max-length": 1, "x-overflow": "drop-head" };
    if (expires !== undefined) args["x-expires"] = expires;
    try {
      await this.#connection.admin.run((ch) =>
        ch.assertQueue(queue, { durable: true, arguments: args })
      );
    } catch (error) {
      // Declared by an older broker with other arguments: it is used as it is.
      if (!/406|PRECONDITION/.test(errorMessage(error))) throw error;
    }
    this.#declared.set(queue, Date.now());
    // A queue that had to be declared was new or gone: its key goes in the index again.
    this.#indexed.delete(`${space}:${key}`);
  }

  async #index(space: KvSpace, key: string): Promise<void> {
    const index = this.#names.index(space);
    const session = await this.#connection.session();
    let outcome = await session.publish("", index, Buffer.from(key));
    if (outcome === "returned") {
      await this.#connection.admin.run((ch) => ch.assertQueue(index, { durable: true }));
      outcome = await session.publish("", index, Buffer.from(key));
    }
    if (outcome !== "ack") throw new Error(`the index of "${space}" was ${outcome}`);
    this.#indexed.add(`${space}:${key}`);
  }
}
