/**
 * The receiving side of the RabbitMQ broker, per job: one `basic.consume` with a prefetch window
 * into a buffer that `pull()` drains, and what is done with a message before anything is handed
 * out:
 *
 * - a message that is not a chunk of the job is dead-lettered as `malformed` (policy.ts
 *   `malformedLetter`) and acked;
 * - a redelivered message (the redelivered flag; `x-delivery-count` on quorum queues) is a chunk
 *   whose holder's connection closed. First, if the chunk already has a counted result (its holder
 *   died between storing the result and acking) or a dead letter (between the letter and the
 *   ack), it is dropped: acked, nothing else. Otherwise it
 *   is planned with `planExpiry` and applied: a fresh copy with one more crash and the same
 *   attempt (not a requeue, which would read as another crash), or its halves, or its dead letter
 *   (`expired`) once the crash budget is spent. Each counts as reclaimed. In a cancelled job it
 *   is cancelled instead (`underControl`).
 *
 * Prefetch: RabbitMQ orders by priority only what it has not delivered yet, so the window is
 * twice the largest `max` asked for (one batch worked on, one waiting), unless `prefetch` is set.
 * A consumer that holds nothing and stops pulling for `LINGER_MS` stops consuming and puts its
 * unclaimed prefetched messages back (fresh copies: no attempt, no crash), so an idle consumer
 * hoards nothing; a release stops it at once, so what it gives back stays for the others. A pull
 * across jobs asks for a window of what it holds plus two pulls, so the job's queue can go on
 * delivering while the puller holds earlier chunks. A job with a `maxInFlight` cap has a window
 * of exactly the cap (its queue has a single active consumer: topology.ts).
 *
 * @module
 */
import type { ConsumeMessage } from "amqplib";
import { isLastCrash, reconnectDelayMs, type RetryPolicy } from "../policy.ts";
import type { JobControl } from "../registry.ts";
import { decodeTask } from "./codec.ts";
import type { AdminChannels, Session } from "./connection.ts";
import { CopyBatch, putBack } from "./copies.ts";
import { addCounters } from "./counters.ts";
import { deadLetterUnreadable, recoverBatch, type Unreadable } from "./recovery.ts";
import type { Deliveries, Received } from "./deliveries.ts";
import type { TransitionGate } from "./gate.ts";
import type { LetterIndex, Letters, Results } from "./reader.ts";
import type { JobNames } from "./topology.ts";

/** How long a consumer keeps consuming after its last pull ended. */
export const LINGER_MS = 100;

/** What an intake works with. */
export interface IntakeOptions {
  readonly names: JobNames;
  readonly deliveries: Deliveries;
  readonly gate: TransitionGate;
  readonly results: Results;
  /** The job's dead-lettered chunks. */
  readonly letters: Letters;
  /** Runs a step that may dead-letter under the job's lock, with its dead letters read fresh. */
  readonly deadLettering: <T>(step: (letters: LetterIndex) => Promise<T>) => Promise<T>;
  readonly admin: AdminChannels;
  readonly policy: RetryPolicy;
  readonly consumerId: string;
  /** Fixed prefetch window; by default twice the largest `max` asked for. */
  readonly prefetch?: number;
  /** Whether deliveries of the job handed out on `session` are still unsettled. */
  readonly holding: (session: Session) => boolean;
  /** Keeps track of work that outlives a call, so close() can wait for it. */
  readonly background: (work: Promise<unknown>) => void;
  /** The job's control word (a redelivery of a cancelled job is cancelled). */
  readonly control: () => Promise<JobControl>;
}

/** The prefetch window a pull asks for. */
export interface ConsumeWindow {
  /** The pull's `max`. */
  readonly max: number;
  /** Deliveries of the job the puller holds now (a pull across jobs); none for a one-job pull. */
  readonly held?: number;
  /** The job's `maxInFlight`: the window is exactly this. */
  readonly cap?: number;
}

/** Receiving state of one job. */
export class JobIntake {
  readonly #o: IntakeOptions;
  readonly #buffer: Received[] = [];
  readonly #recovering: Received[] = [];
  readonly #unreadable: Unreadable[] = [];
  #consumer: { session: Session; tag: string; prefetch: number } | undefined;
  #starting: Promise<void> | undefined;
  #pulls = 0;
  #lastPull = 0;
  #linger: ReturnType<typeof setTimeout> | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #retries = 0;
  #recovery: Promise<void> | undefined;
  #deadLettering: Promise<void> | undefined;
  #waiters = new Set<() => void>();
  #stopped = false;

  constructor(options: IntakeOptions) {
    this.#o = options;
  }

  /**
   * Makes sure the job is consumed on `session` with a window for the pull; true when it started
   * (or widened) a consumer, whose first messages may still be on their way.
   */
  async consume(session: Session, window: ConsumeWindow): Promise<boolean> {
    while (this.#starting) await this.#starting;
    const { max, held, cap } = window;
    const base = this.#o.prefetch ?? 2 * Math.max(1, max);
    const wanted = cap ?? (held ?? 0) + base;
    // A pull across jobs keeps a window with room for one more pull (it is widened as the puller
    // holds more, and would otherwise be re-created on nearly every pull).
    const enough = cap ?? (held === undefined ? wanted : held + Math.min(base, Math.max(1, max)));
    const current = this.#consumer;
    if (current && current.session === session && current.prefetch >= enough) return false;
    this.#starting = (async () => {
      const old = current?.session === session ? current.tag : undefined;
      if (!current || current.session !== session) {
        session.onLost(() => this.#lost(session));
      }
      await session.main.prefetch(wanted);
      const { consumerTag } = await session.main.consume(
        this.#o.names.tasks,
        (message) => this.#receive(session, message),
        { noAck: false },
      );
      this.#consumer = { session, tag: consumerTag, prefetch: wanted };
      // Messages of the old consumer stay valid on the same channel.
      if (old) await session.main.cancel(old).catch(() => {});
    })().finally(() => (this.#starting = undefined));
    await this.#starting;
    return true;
  }

  /** The highest priority among the prefetched messages of `session`, or undefined for none. */
  headPriority(session: Session): number | undefined {
    let best: number | undefined;
    for (const r of this.#buffer) {
      if (r.session === session && (best === undefined || r.task.priority > best)) {
        best = r.task.priority;
      }
    }
    return best;
  }

  /** Takes the prefetched message of `session` with the highest priority (oldest first). */
  takeBest(session: Session): Received | undefined {
    let at = -1;
    this.#buffer.forEach((r, i) => {
      if (r.session !== session || !session.alive) return;
      if (at < 0 || r.task.priority > this.#buffer[at]!.task.priority) at = i;
    });
    return at < 0 ? undefined : this.#buffer.splice(at, 1)[0];
  }

  /**
   * The job was cancelled: its prefetched messages are counted as cancelled and acked, in the
   * job's gate (a census sees them held, or cancelled). Returns how many.
   */
  async cancelBuffered(): Promise<number> {
    return await this.#o.gate.run(async () => {
      let n = 0;
      for (const session of new Set(this.#buffer.map((r) => r.session))) {
        const items = this.take(session, Infinity);
        if (items.length === 0 || !session.alive) continue;
        const batch = new CopyBatch(session, this.#o.names, this.#o.admin);
        for (const r of items) batch.cancel(r.task);
        try {
          await addCounters(session, this.#o.names, batch.event);
        } catch (error) {
          this.#buffer.unshift(...items); // uncounted: they stay prefetched
          throw error;
        }
        this.#o.deliveries.ack(session, items.map((r) => r.message));
        n += items.length;
      }
      return n;
    });
  }

  /** A pull starts: keep consuming. */
  pullStarted(): void {
    this.#pulls += 1;
  }

  /**
   * A pull ended: once none has been waiting for `LINGER_MS` and no delivery of the job is held
   * (a worker between two pulls holds what it works on), stop consuming. One timer at a time,
   * not one per pull.
   */
  pullEnded(): void {
    this.#pulls -= 1;
    this.#lastPull = Date.now();
    if (this.#pulls === 0 && !this.#linger && !this.#stopped) this.#lingerFor(LINGER_MS);
  }

  #lingerFor(ms: number): void {
    this.#linger = setTimeout(() => {
      this.#linger = undefined;
      const session = this.#consumer?.session;
      if (this.#pulls > 0 || this.#stopped || !session) return;
      const idleMs = Date.now() - this.#lastPull;
      if (idleMs < LINGER_MS) this.#lingerFor(LINGER_MS - idleMs);
      else if (this.#o.holding(session)) this.#lingerFor(LINGER_MS);
      else this.#o.background(this.stop());
    }, ms);
  }

  /** Takes up to `max` buffered messages of `session`. */
  take(session: Session, max: number): Received[] {
    const out: Received[] = [];
    while (out.length < max && this.#buffer.length > 0) {
      const r = this.#buffer.shift()!;
      if (r.session === session && session.alive) out.push(r);
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

  /** Chunk ids this intake holds on `session`: prefetched, or being recovered. */
  heldIds(session: Session | undefined): string[] {
    const out: string[] = [];
    for (const r of [...this.#buffer, ...this.#recovering]) {
      if (r.session === session) out.push(r.task.chunkId);
    }
    return out;
  }

  /**
   * Stops consuming at once unless a pull is waiting (a release: the chunks given back must stay
   * in the queue for the others, not come back to this idle consumer).
   */
  async idle(): Promise<void> {
    if (this.#pulls === 0) await this.stop();
  }

  /** Stops consuming and puts the unclaimed prefetched messages back (linger, close). */
  async stop(): Promise<void> {
    clearTimeout(this.#linger);
    this.#linger = undefined;
    const consumer = this.#consumer;
    this.#consumer = undefined;
    if (!consumer?.session.alive) return;
    // After cancel-ok, every message of the consumer has arrived: none can follow the put-back.
    await consumer.session.main.cancel(consumer.tag).catch(() => {});
    await this.#o.gate.run(async () => {
      const items = this.take(consumer.session, Infinity);
      if (items.length === 0) return;
      const batch = new CopyBatch(consumer.session, this.#o.names, this.#o.admin);
      await putBack(batch, this.#o.deliveries, consumer.session, items);
    });
  }

  /** Ends this intake for good (close, reset); `work()` resolves once its steps are done. */
  end(): void {
    this.#stopped = true;
    clearTimeout(this.#linger);
    clearTimeout(this.#retry);
    this.#linger = this.#retry = undefined;
    this.#wake();
  }

  /** The job's queues were deleted: forget everything (RabbitMQ dropped the messages). */
  async drop(): Promise<void> {
    this.end();
    const consumer = this.#consumer;
    this.#consumer = undefined;
    this.#buffer.length = this.#recovering.length = this.#unreadable.length = 0;
    if (consumer?.session.alive) await consumer.session.main.cancel(consumer.tag).catch(() => {});
  }

  /** Steps this intake started on its own and has not finished. */
  async settled(): Promise<void> {
    await Promise.all([this.#recovery, this.#deadLettering]);
  }

  #receive(session: Session, message: ConsumeMessage | null): void {
    if (!message) {
      // The server cancelled the consumer (the queue was deleted): consume again next pull.
      if (this.#consumer?.session === session) this.#consumer = undefined;
      this.#wake();
      return;
    }
    this.#o.deliveries.track(session, message);
    const decoded = decodeTask(this.#o.names.jobId, message.content);
    if (!decoded.ok) {
      this.#unreadable.push({ session, message, reason: decoded.reason });
      this.#deadLetterUnreadable();
      return;
    }
    const received = { session, message, task: decoded.task, state: decoded.state };
    const count = message.properties.headers?.["x-delivery-count"];
    if (message.fields.redelivered || (typeof count === "number" && count > 0)) {
      this.#recovering.push(received);
      this.#recover();
      return;
    }
    this.#buffer.push(received);
    this.#wake();
  }

  #recover(): void {
    if (this.#recovery || this.#stopped) return;
    this.#recovery = (async () => {
      try {
        while (this.#recovering.length > 0 && !this.#stopped) {
          // Read before the step: a chunk with a counted result (or a dead letter) is dropped.
          const jobId = this.#o.names.jobId;
          const results = await this.#o.results.fresh(jobId);
          const control = await this.#o.control();
          const step = (letters: LetterIndex) =>
            this.#o.gate.run(async () => {
              const batch = this.#recovering.splice(0);
              for (const session of new Set(batch.map((r) => r.session))) {
                if (!session.alive) continue;
                const mine = batch.filter((r) => r.session === session);
                await recoverBatch(this.#o, session, mine, { results, letters, control });
              }
            });
          const spent = control !== "cancelled" &&
            this.#recovering.some((r) => isLastCrash(this.#o.policy, r.state.crashes));
          if (spent) await this.#o.deadLettering(step);
          else await step(await this.#o.letters.fresh(jobId));
        }
      } catch {
        this.#later(() => this.#recover()); // RabbitMQ is away: the messages stay unacked
      } finally {
        this.#recovery = undefined;
      }
    })();
  }

  /**
   * Moves unreadable messages to the dead letters, then acks them. A copy that fails is tried
   * again while its channel lives, after a backoff from 1 s to 30 s (a full or missing
   * dead-letter queue must not be hammered).
   */
  #deadLetterUnreadable(): void {
    if (this.#deadLettering || this.#stopped) return;
    this.#deadLettering = this.#o.gate.run(async () => {
      const batch = this.#unreadable.splice(0).filter((u) => u.session.alive);
      const kept = await deadLetterUnreadable(this.#o, batch);
      this.#unreadable.push(...kept);
      const failed = kept.length > 0;
      this.#retries = failed ? this.#retries + 1 : 0;
    }).catch(() => {
      this.#retries += 1;
    }).finally(() => {
      this.#deadLettering = undefined;
      if (this.#unreadable.length === 0) return;
      if (this.#retries === 0) this.#deadLetterUnreadable();
      else this.#later(() => this.#deadLetterUnreadable());
    });
  }

  /** Tries `fn` again after a backoff, unless the intake ended. */
  #later(fn: () => void): void {
    if (this.#stopped || this.#retry) return;
    const delayMs = reconnectDelayMs(Math.max(1, this.#retries), { baseMs: 1000, maxMs: 30_000 });
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      fn();
    }, delayMs);
  }

  #lost(session: Session): void {
    const keep = (list: { session: Session }[]) => {
      const kept = list.filter((r) => r.session !== session);
      list.length = 0;
      list.push(...kept);
    };
    keep(this.#buffer);
    keep(this.#recovering);
    keep(this.#unreadable);
    if (this.#consumer?.session === session) this.#consumer = undefined;
    this.#wake();
  }

  #wake(): void {
    for (const fn of [...this.#waiters]) fn();
  }
}
