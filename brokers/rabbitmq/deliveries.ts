/**
 * What this broker instance holds: the messages each session received and has not acked yet
 * (so one `multiple` ack can settle a batch without covering a message still held), and the
 * deliveries handed out by `pull()` until they are settled.
 *
 * A delivery's `receipt` names the session that holds it. While that session lives the delivery
 * is held (`extended`); once its holder settled it (ack, nack, reset) it is `gone`; a delivery
 * whose session died was requeued by RabbitMQ and is a `zombie`.
 *
 * @module
 */
import type { ConsumeMessage } from "amqplib";
import type { ChunkTask, Delivery, ExtendOutcome } from "../broker.ts";
import type { TaskState } from "./codec.ts";
import type { Session } from "./connection.ts";

/** A task message received on a session and decoded. */
export interface Received {
  readonly session: Session;
  readonly message: ConsumeMessage;
  readonly task: ChunkTask;
  readonly state: TaskState;
}

/** A delivery handed out by `pull()`, until settled. */
export interface Held extends Received {
  readonly jobId: string;
  readonly epoch: number;
  readonly receipt: string;
}

/** Settled receipts remembered, so a late heartbeat hears `gone` rather than `zombie`. */
const SETTLED_KEPT = 100_000;

/** The unacked messages of every session, and the handed-out deliveries. */
export class Deliveries {
  readonly #instance = crypto.randomUUID().slice(0, 8);
  readonly #unacked = new Map<Session, Set<number>>();
  readonly #held = new Map<string, Held>();
  readonly #settled = new Set<string>();
  readonly #maxAttempts: number;

  constructor(maxAttempts: number) {
    this.#maxAttempts = maxAttempts;
  }

  /** Notes a message received on `session` (it stays unacked until acked or requeued). */
  track(session: Session, message: ConsumeMessage): void {
    let tags = this.#unacked.get(session);
    if (!tags) {
      tags = new Set();
      this.#unacked.set(session, tags);
      session.onLost(() => this.#lost(session));
    }
    tags.add(message.fields.deliveryTag);
  }

  /**
   * Acks messages of `session`: one `multiple` ack up to the highest tag below every other
   * message the session still holds, single acks for the rest.
   */
  ack(session: Session, messages: readonly ConsumeMessage[]): void {
    const tags = this.#unacked.get(session);
    if (messages.length === 0 || !tags || !session.alive) return;
    const acking = new Set(messages.map((m) => m.fields.deliveryTag));
    let lowestOther = Infinity;
    for (const tag of tags) if (!acking.has(tag) && tag < lowestOther) lowestOther = tag;
    let upTo: ConsumeMessage | undefined;
    for (const m of messages) {
      const tag = m.fields.deliveryTag;
      if (!tags.has(tag)) continue; // acked already: a second ack would close the channel
      tags.delete(tag);
      if (tag < lowestOther) {
        if (!upTo || tag > upTo.fields.deliveryTag) upTo = m;
      } else session.main.ack(m);
    }
    if (upTo) session.main.ack(upTo, true);
  }

  /** Gives a message back to its queue (RabbitMQ marks it redelivered). */
  requeue(session: Session, message: ConsumeMessage): void {
    const tags = this.#unacked.get(session);
    if (!tags?.delete(message.fields.deliveryTag) || !session.alive) return;
    session.main.nack(message, false, true);
  }

  /** Hands a received message out as a delivery of `jobId`. */
  handOut(jobId: string, received: Received): Delivery {
    const { session, message, task, state } = received;
    const receipt = `${this.#instance}.${session.generation}.${message.fields.deliveryTag}`;
    const epoch = state.claims + 1;
    this.#held.set(receipt, { ...received, jobId, epoch, receipt });
    return {
      task,
      attempt: state.attempt,
      maxAttempts: this.#maxAttempts,
      crashes: state.crashes,
      epoch,
      receipt,
      history: state.history,
    };
  }

  /** The held delivery behind `delivery` when its session is `session` and alive. */
  live(delivery: Delivery, session: Session | undefined): Held | undefined {
    const held = this.#held.get(delivery.receipt);
    return held && session?.alive && held.session === session ? held : undefined;
  }

  /** Forgets settled deliveries: a later extend hears `gone`. */
  settle(receipts: Iterable<string>): void {
    for (const receipt of receipts) {
      if (!this.#held.delete(receipt)) continue;
      this.#settled.add(receipt);
      if (this.#settled.size > SETTLED_KEPT) {
        this.#settled.delete(this.#settled.values().next().value!);
      }
    }
  }

  /** What an extend of `delivery` answers. */
  extendOutcome(delivery: Delivery, session: Session | undefined): ExtendOutcome {
    if (this.live(delivery, session)) return "extended";
    return this.#settled.has(delivery.receipt) ? "gone" : "zombie";
  }

  /** Chunk ids of the job's handed-out deliveries held on `session`. */
  heldIds(jobId: string, session: Session | undefined): string[] {
    const out: string[] = [];
    for (const held of this.#held.values()) {
      if (held.jobId === jobId && held.session === session) out.push(held.task.chunkId);
    }
    return out;
  }

  /** How many handed-out deliveries of the job are held on `session` (its `maxInFlight`). */
  count(jobId: string, session: Session): number {
    let n = 0;
    for (const held of this.#held.values()) {
      if (held.jobId === jobId && held.session === session) n += 1;
    }
    return n;
  }

  /** Whether a handed-out delivery of the job held on `session` is unsettled. */
  holds(jobId: string, session: Session): boolean {
    for (const held of this.#held.values()) {
      if (held.jobId === jobId && held.session === session) return true;
    }
    return false;
  }

  /** The job was reset: its deliveries are gone (RabbitMQ dropped them with their queue). */
  reset(jobId: string): void {
    const receipts = [...this.#held.values()].filter((h) => h.jobId === jobId);
    for (const held of receipts) {
      this.#unacked.get(held.session)?.delete(held.message.fields.deliveryTag);
    }
    this.settle(receipts.map((h) => h.receipt));
  }

  #lost(session: Session): void {
    this.#unacked.delete(session);
    for (const [receipt, held] of this.#held) {
      if (held.session === session) this.#held.delete(receipt);
    }
  }
}
