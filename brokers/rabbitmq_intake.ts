/**
 * The receiving side of the RabbitMQ broker: one `basic.consume` per job with a prefetch window,
 * into a buffer that `pull()` drains, and the deliveries handed out (held) until acked or nacked.
 *
 * Prefetch caveat: RabbitMQ orders by priority only the messages it has not delivered yet. A
 * consumer's window (its prefetch) holds messages delivered earlier, which a newer,
 * higher-priority message does not overtake. The window is therefore sized from the pulls: twice
 * the largest `max` asked for (one batch being worked on, one waiting, so the consumer never
 * stalls on a round trip), unless `prefetch` is set. A higher-priority task thus waits behind at
 * most one batch per consumer; `prefetch: 1` with `max: 1` gives strict priority at a cost.
 *
 * @module
 */
import type { ConsumeMessage } from "amqplib";
import type { ChunkTask } from "./contract.ts";
import {
  decodeTask,
  type EncodedDeadLetter,
  encodeDeadLetter,
  type TaskState,
} from "./rabbitmq_codec.ts";
import type { Session } from "./rabbitmq_connection.ts";
import type { JobNames } from "./rabbitmq_topology.ts";

/** A task message received and decoded, not yet handed out. */
export interface Received {
  readonly generation: number;
  readonly message: ConsumeMessage;
  readonly task: ChunkTask;
  readonly state: TaskState;
  /** Times RabbitMQ delivered this very message before (a consumer died holding it). */
  readonly redeliveries: number;
}

/**
 * A message dead-lettered on receipt: one that could not be read as a task of its job (moved as
 * received, kind `malformed`), or a task whose holder died on its last attempt (`letter`).
 */
export interface Unreadable {
  readonly generation: number;
  readonly message: ConsumeMessage;
  readonly reason: string;
  /** The dead letter to publish; by default the body as received, as `malformed`. */
  readonly letter?: EncodedDeadLetter;
  /** Its dead-letter copy is being published. */
  copying?: boolean;
}

/** A delivery handed out by `pull()`, until acked or nacked. */
export interface Held extends Received {
  readonly jobId: string;
  readonly epoch: number;
  readonly receipt: string;
}

/** Receiving state of one job. */
export class JobIntake {
  readonly names: JobNames;
  readonly buffer: Received[] = [];
  readonly unreadable: Unreadable[] = [];
  /** Set while a failed dead-letter copy of an unreadable message waits to be tried again. */
  retryTimer?: ReturnType<typeof setTimeout>;
  /** Wait before the next retry of a failed dead-letter copy (doubles up to 30 s). */
  retryDelayMs = 1000;
  /** Redelivered messages handed out since the last `reclaim()`. */
  reclaimed = 0;
  #tag: string | undefined;
  #generation = 0;
  #prefetch = 0;
  #starting: Promise<void> | undefined;
  #waiters = new Set<() => void>();
  /** Forgets an unreadable message (acked, or its channel is gone). */
  dropUnreadable(entry: Unreadable): void {
    const at = this.unreadable.indexOf(entry);
    if (at >= 0) this.unreadable.splice(at, 1);
  }

  /** Called when unreadable messages arrive (they are dead-lettered in the background). */
  onUnreadable: () => void = () => {};

  readonly #maxAttempts: number;

  constructor(names: JobNames, maxAttempts: number) {
    this.names = names;
    this.#maxAttempts = maxAttempts;
  }

  /** Messages received on `generation` that are still in the buffer. */
  buffered(generation: number): number {
    let n = 0;
    for (const r of this.buffer) if (r.generation === generation) n++;
    return n;
  }

  /**
   * Makes sure this job has a consumer on `session` whose prefetch is at least `window`
   * (re-consuming with a larger window: messages of the old consumer stay valid).
   */
  async consume(
    session: Session,
    window: number,
    fixedPrefetch: number | undefined,
    quorum: boolean,
  ): Promise<void> {
    while (this.#starting) await this.#starting;
    const wanted = fixedPrefetch ?? 2 * Math.max(1, window);
    if (this.#tag && this.#generation === session.generation && this.#prefetch >= wanted) return;
    this.#starting = (async () => {
      const old = this.#generation === session.generation ? this.#tag : undefined;
      await session.main.prefetch(wanted);
      const { consumerTag } = await session.main.consume(
        this.names.tasks,
        (message) => this.#receive(session, message, quorum),
        { noAck: false },
      );
      this.#tag = consumerTag;
      this.#generation = session.generation;
      this.#prefetch = wanted;
      if (old) await session.main.cancel(old).catch(() => {});
    })().finally(() => (this.#starting = undefined));
    await this.#starting;
  }

  /** Stops consuming (reset, close); buffered messages stay until the channel closes. */
  async cancel(session: Session | undefined): Promise<void> {
    const tag = this.#tag;
    this.#tag = undefined;
    this.#prefetch = 0;
    if (tag && session?.alive && session.generation === this.#generation) {
      await session.main.cancel(tag).catch(() => {});
    }
  }

  /** Takes up to `max` buffered messages of `generation` (older ones were requeued by RabbitMQ). */
  take(generation: number, max: number): Received[] {
    const out: Received[] = [];
    const i = 0;
    while (i < this.buffer.length && out.length < max) {
      const r = this.buffer[i]!;
      if (r.generation !== generation) {
        this.buffer.splice(i, 1);
        continue;
      }
      out.push(r);
      this.buffer.splice(i, 1);
    }
    return out;
  }

  /** Resolves when a message arrives, the consumer changes, `ms` passes or `signal` aborts. */
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.#waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /** Wakes every waiting pull (a message arrived, the session died, the broker closed). */
  wake(): void {
    for (const fn of [...this.#waiters]) fn();
  }

  #receive(session: Session, message: ConsumeMessage | null, quorum: boolean): void {
    if (!message) {
      // The server cancelled the consumer (the queue was deleted): consume again next pull.
      this.#tag = undefined;
      this.wake();
      return;
    }
    const count = message.properties.headers?.["x-delivery-count"];
    const redeliveries = quorum && typeof count === "number"
      ? count
      : message.fields.redelivered
      ? 1
      : 0;
    const decoded = decodeTask(
      this.names.jobId,
      message.content,
      message.properties,
      redeliveries,
    );
    if (!decoded.ok) {
      this.unreadable.push({ generation: session.generation, message, reason: decoded.reason });
      this.onUnreadable();
      return;
    }
    if (redeliveries > 0 && decoded.state.attempt > this.#maxAttempts) {
      // Its holder's connection closed while it ran its last attempt: no attempt is left.
      const lost = decoded.state.attempt - 1;
      const reason =
        "Its consumer's connection closed during its last attempt (the worker died or froze)";
      const letter = encodeDeadLetter(decoded.task, { ...decoded.state, attempt: lost }, {
        attempt: lost,
        kind: "expired",
        reason,
        workerId: "unknown",
        at: new Date().toISOString(),
      });
      this.unreadable.push({ generation: session.generation, message, reason, letter });
      this.onUnreadable();
      return;
    }
    this.buffer.push({
      generation: session.generation,
      message,
      task: decoded.task,
      state: decoded.state,
      redeliveries,
    });
    this.wake();
  }
}
