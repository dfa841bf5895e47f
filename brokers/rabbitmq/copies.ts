/**
 * How a chunk this instance holds moves elsewhere: as a confirmed, persistent copy (a release or
 * a fresh copy after a crash back in the task queue, a retry in the delay queue of its backoff,
 * the halves of a split, a dead letter), after which the caller acks the original on the channel
 * that received it. A copy is not a requeue: RabbitMQ marks a requeued message redelivered, which
 * reads as a crash. If the copy fails the original is not acked: it is put back, or, when its
 * channel is gone, RabbitMQ has requeued it.
 *
 * @module
 */
import type { ConsumeMessage } from "amqplib";
import type { ChunkTask, NackOutcome } from "../broker.ts";
import type { PlannedNack } from "../guard.ts";
import type { ExpiryPlan, LetterFields, NackPlan } from "../policy.ts";
import {
  type EncodedDeadLetter,
  encodeDeadLetter,
  encodeMalformed,
  encodeTask,
  FRESH,
  type TaskState,
} from "./codec.ts";
import { addCounters, type CounterEvent, isEmptyEvent } from "./counters.ts";
import type { AdminChannels, Session } from "./connection.ts";
import type { Deliveries, Held, Received } from "./deliveries.ts";
import type { LetterIndex } from "./reader.ts";
import { declareDelayQueue, type JobNames } from "./topology.ts";

/** The copies of one step (one call), and the counter changes they cause. */
export class CopyBatch {
  readonly event: CounterEvent = {};
  readonly #session: Session;
  readonly #names: JobNames;
  readonly #admin: AdminChannels;
  readonly #delayQueues = new Map<number, Promise<string>>();

  readonly #letters: LetterIndex | undefined;

  /**
   * `letters`: the job's dead-lettered chunks, read fresh before the step; a chunk that has a dead
   * letter already gets no second one (a copy of it outlived a crash between its letter and ack).
   */
  constructor(session: Session, names: JobNames, admin: AdminChannels, letters?: LetterIndex) {
    this.#session = session;
    this.#names = names;
    this.#admin = admin;
    this.#letters = letters;
  }

  /** Counts `n` more of a counter of this step. */
  count(name: "zombies" | "retried" | "reclaimed" | "malformed", n = 1): void {
    this.event[name] = (this.event[name] ?? 0) + n;
  }

  /** Applies a nack's plan to a held delivery; throws when a copy was not confirmed. */
  async nack(held: Held, plan: NackPlan): Promise<NackOutcome> {
    const { task, state, epoch } = held;
    switch (plan.action) {
      case "release":
        await this.task(task, { ...state, claims: epoch });
        return "released";
      case "retry": {
        const queue = await this.#delayQueue(plan.delayMs);
        await this.#copy(
          this.#names.retryExchange,
          queue,
          encodeTask(task, {
            ...state,
            attempt: plan.attempt,
            claims: epoch,
            history: plan.history,
          }),
          task,
        );
        this.count("retried");
        (this.event.delays ??= []).push(plan.delayMs);
        return "retrying";
      }
      case "split":
        await this.split(task, plan.parts);
        return "split";
      case "dead":
        await this.deadLetter(task, { ...state, claims: epoch }, plan.letter);
        return "dead_lettered";
      case "cancel":
        this.cancel(task);
        return "cancelled";
    }
  }

  /** Applies the plan of a chunk whose previous holder's connection closed (one reclaim). */
  async expiry(received: Received, plan: ExpiryPlan): Promise<void> {
    const { task, state } = received;
    // The lost claim had epoch claims + 1: the next claim must have a larger one.
    const lost = { ...state, claims: state.claims + 1 };
    if (plan.action === "requeue") {
      await this.task(task, { ...lost, crashes: plan.crashes, history: plan.history });
    } else if (plan.action === "split") await this.split(task, plan.parts);
    else if (plan.action === "dead") await this.deadLetter(task, lost, plan.letter);
    else this.cancel(task);
    this.count("reclaimed");
  }

  /**
   * Counts a chunk of a cancelled job as cancelled: no copy, its ack alone ends it (by id, so a
   * chunk whose ack was lost and that comes back is counted once).
   */
  cancel(task: ChunkTask): void {
    (this.event.cancelledChunks ??= []).push(task.chunkId);
  }

  /** A confirmed copy of `task` with `state` in the task queue. */
  task(task: ChunkTask, state: TaskState): Promise<void> {
    return this.#copy(
      this.#names.taskExchange,
      this.#names.tasks,
      encodeTask(task, state),
      task,
    );
  }

  /** The halves of a split, with fresh budgets, and the split counted (once per chunk). */
  async split(task: ChunkTask, parts: readonly ChunkTask[]): Promise<void> {
    await Promise.all(parts.map((part) => this.task(part, FRESH)));
    (this.event.splits ??= []).push(task.chunkId);
  }

  /** A chunk's dead letter, unless it has one. */
  async deadLetter(task: ChunkTask, state: TaskState, letter: LetterFields): Promise<void> {
    if (this.#letters?.has(task.chunkId)) return;
    await this.#letter(encodeDeadLetter(task, state, letter), task.chunkId);
    this.#letters?.add(task.chunkId);
  }

  /** An unreadable message's dead letter (its body as received), counted as malformed. */
  async malformed(message: ConsumeMessage, letter: LetterFields): Promise<void> {
    await this.#letter(encodeMalformed(message.content, letter), "malformed");
    this.count("malformed");
  }

  async #letter(letter: EncodedDeadLetter, messageId: string): Promise<void> {
    const outcome = await this.#session.publish(
      this.#names.dlqExchange,
      this.#names.dlq,
      letter.content,
      { headers: letter.headers, messageId, timestamp: Math.floor(Date.now() / 1000) },
    );
    if (outcome !== "ack") throw new Error(`the dead letter was ${outcome}`);
  }

  async #copy(exchange: string, key: string, content: Buffer, task: ChunkTask): Promise<void> {
    const outcome = await this.#session.publish(exchange, key, content, {
      priority: task.priority,
      messageId: task.chunkId,
    });
    if (outcome !== "ack") throw new Error(`the copy of chunk "${task.chunkId}" was ${outcome}`);
  }

  /** The delay queue of one backoff step, declared (again) once per step, so it has not expired. */
  #delayQueue(delayMs: number): Promise<string> {
    let queue = this.#delayQueues.get(delayMs);
    if (!queue) {
      queue = declareDelayQueue(this.#admin, this.#names, delayMs);
      this.#delayQueues.set(delayMs, queue);
    }
    return queue;
  }
}

/**
 * Puts messages whose step failed back as they were (a confirmed copy, then the ack), so they
 * spend nothing; a message whose copy fails too is requeued (RabbitMQ marks it redelivered, which
 * costs it one crash, never the chunk).
 */
export async function putBack(
  batch: CopyBatch,
  deliveries: Deliveries,
  session: Session,
  items: readonly { message: ConsumeMessage; task: ChunkTask; state: TaskState }[],
): Promise<void> {
  const acked: ConsumeMessage[] = [];
  await Promise.all(items.map(async ({ message, task, state }) => {
    try {
      await batch.task(task, state);
      acked.push(message);
    } catch {
      deliveries.requeue(session, message);
    }
  }));
  deliveries.ack(session, acked);
}

/**
 * Applies each nack's plan to its delivery while it is held on `session` (else `zombie`): the
 * confirmed copies, the counter event, then the acks. A delivery whose copy failed is put back as
 * it was; when the counter event fails, the moved deliveries are requeued instead of acked (they
 * come back as redeliveries, which the intake recovers), so no move is left uncounted.
 */
export async function applyNacks(
  ctx: {
    readonly session: Session | undefined;
    readonly names: JobNames;
    readonly admin: AdminChannels;
    readonly letters: LetterIndex;
  },
  deliveries: Deliveries,
  requests: readonly PlannedNack[],
): Promise<NackOutcome[]> {
  const { session, names, admin, letters } = ctx;
  const out: NackOutcome[] = requests.map(() => "zombie");
  const live = requests.flatMap(({ delivery, plan }, i) => {
    const held = deliveries.live(delivery, session);
    return held ? [{ i, held, plan }] : [];
  });
  if (!session || live.length === 0) return out;
  const batch = new CopyBatch(session, names, admin, letters);
  let moved: { i: number; held: Held }[] = [];
  const failed: Held[] = [];
  await Promise.all(live.map(async ({ i, held, plan }) => {
    try {
      out[i] = await batch.nack(held, plan);
      moved.push({ i, held });
    } catch {
      failed.push(held);
    }
  }));
  if (!isEmptyEvent(batch.event)) {
    await addCounters(session, names, batch.event).catch(() => {
      for (const { i, held } of moved) {
        deliveries.requeue(session, held.message);
        out[i] = "zombie";
      }
      moved = [];
    });
  }
  deliveries.ack(session, moved.map(({ held }) => held.message));
  const back = failed.map((h) => ({ ...h, state: { ...h.state, claims: h.epoch } }));
  await putBack(batch, deliveries, session, back);
  deliveries.settle(live.map(({ held }) => held.receipt));
  return out;
}
