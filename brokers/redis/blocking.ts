/**
 * Blocking reads of the Redis broker: XREADGROUP … BLOCK on dedicated connections (a blocked
 * connection can do nothing else), ended early by an AbortSignal through CLIENT UNBLOCK sent on
 * the main connection. Connections are pooled, so concurrent pulls never queue behind one block.
 *
 * @module
 */
import type { Redis } from "ioredis";
import {
  abortable,
  closeClient,
  connectionName,
  connectRedis,
  type RedisTarget,
} from "./connection.ts";
import { GROUP } from "./codec.ts";

/** An entry claimed by a read: its band (`r` or a priority), stream entry id and fields. */
export interface ReadEntry {
  /** `N` for the tasks stream of priority N, `rN` for its redo stream. */
  readonly band: string;
  /** Stream entry id. */
  readonly id: string;
  /** The entry's flat field list. */
  readonly fields: string[];
}

interface Reader {
  readonly client: Redis;
  /** CLIENT ID of the connection; unknown after a reconnect until asked again. */
  id: number | undefined;
}

type XReadReply = [key: string, entries: [id: string, fields: string[]][]][] | null;

/** How often an abort repeats CLIENT UNBLOCK until the read returns (closes a send race). */
const UNBLOCK_RETRY_MS = 50;

/** A pool of connections for blocking XREADGROUP. */
export class BlockingReaders {
  #main: Redis;
  #target: RedisTarget;
  #consumer: string;
  #idle: Reader[] = [];
  #all = new Set<Reader>();
  #closed = new AbortController();

  /** Blocking reads for `consumer`; `main` sends CLIENT UNBLOCK, `target` opens connections. */
  constructor(main: Redis, target: RedisTarget, consumer: string) {
    this.#main = main;
    this.#target = target;
    this.#consumer = consumer;
  }

  /**
   * Waits up to `blockMs` for new entries on `streams` (band, key), highest priority first, and
   * claims up to `count` per stream for this consumer. Returns [] on timeout or abort.
   */
  async read(
    streams: readonly (readonly [string, string])[],
    count: number,
    blockMs: number,
    signal?: AbortSignal,
  ): Promise<ReadEntry[]> {
    const reader = await this.#acquire();
    let finished = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const unblock = () => {
      if (finished) return;
      if (reader.id !== undefined) {
        this.#main.call("CLIENT", "UNBLOCK", reader.id).catch(() => {});
      }
      timer = setTimeout(unblock, UNBLOCK_RETRY_MS);
    };
    signal?.addEventListener("abort", unblock, { once: true });
    try {
      reader.id ??= Number(
        await abortable(reader.client.call("CLIENT", "ID"), this.#closed.signal),
      );
      if (signal?.aborted) return [];
      const keys = streams.map(([, key]) => key);
      const command = reader.client.call(
        "XREADGROUP",
        "GROUP",
        GROUP,
        this.#consumer,
        "COUNT",
        count,
        "BLOCK",
        blockMs,
        "STREAMS",
        ...keys,
        ...keys.map(() => ">"),
      ) as Promise<XReadReply>;
      const reply = await abortable(command, this.#closed.signal);
      if (!reply) return [];
      const byKey = new Map(reply.map(([key, entries]) => [key, entries]));
      const out: ReadEntry[] = [];
      for (const [band, key] of streams) {
        for (const [id, fields] of byKey.get(key) ?? []) out.push({ band, id, fields });
      }
      return out;
    } finally {
      finished = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", unblock);
      this.#release(reader);
    }
  }

  /** Disconnects every connection; reads in progress fail with a closed connection. */
  async close(): Promise<void> {
    this.#closed.abort(new Error("Connection is closed."));
    const all = [...this.#all];
    this.#all.clear();
    this.#idle = [];
    await Promise.all(all.map((reader) => closeClient(reader.client, 0)));
  }

  async #acquire(): Promise<Reader> {
    const idle = this.#idle.pop();
    if (idle) return idle;
    const client = await connectRedis(this.#target, connectionName(this.#consumer, "block"));
    const reader: Reader = { client, id: undefined };
    client.on("reconnecting", () => reader.id = undefined);
    if (this.#closed.signal.aborted) {
      await closeClient(client, 0);
      throw new Error("Connection is closed.");
    }
    this.#all.add(reader);
    return reader;
  }

  #release(reader: Reader): void {
    if (this.#closed.signal.aborted) return; // close() closes every connection
    this.#idle.push(reader);
  }
}
