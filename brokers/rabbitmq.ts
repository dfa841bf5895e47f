/**
 * The RabbitMQ broker (npm:amqplib), wire-compatible with the Python predecessor: for job `ttg`
 * the queues are `ttg.tasks`, `ttg.tasks.retry`, `ttg.tasks.dlq` and `ttg.results` behind their
 * `ttg.*.exchange`s, with the predecessor's JSON bodies (rabbitmq_topology.ts, rabbitmq_codec.ts).
 *
 * - **Receiving**: `basic.consume` with a prefetch window into a buffer that `pull()` drains;
 *   manual acks (rabbitmq_intake.ts). Never `basic.get` polling.
 * - **Publishing**: persistent, mandatory, and confirmed, always: tasks, retries, dead letters,
 *   results and counters. A delivery is acked only after its retry, dead-letter or result copy was
 *   confirmed, and on the very channel that received it.
 * - **Leases are the connection**: RabbitMQ requeues a dead consumer's unacked deliveries as soon
 *   as its connection drops (a SIGKILLed process: at once; a frozen one: after two missed
 *   heartbeats, and the heartbeat is half the lease). A live consumer's delivery is never taken away, so `extend()` has nothing to renew.
 *   A delivery's `receipt` names the connection generation that holds it; ack, nack or extend of a
 *   delivery whose connection is gone is a `zombie` (counted), and a zombie publishes nothing: a
 *   result is published on the holding channel before the ack, so it exists only if the delivery
 *   was still held. `epoch` is the claim count carried in the message (grows with each retry,
 *   release and redelivery).
 * - **Attempts**: carried in the body; a redelivered message counts one lost attempt (quorum queues
 *   count each via `x-delivery-count`, and `x-delivery-limit` dead-letters crash loops). A
 *   message redelivered after its last attempt is dead-lettered as `expired` on receipt.
 * - **Results, exactly-once accounting**: results are published to the results queue and never
 *   consumed; results()/stats() read it non-destructively (rabbitmq_reader.ts) and count the first
 *   result of each chunk in queue order, every other copy as a duplicate. A consumer keeps an index
 *   of what it read and published (re-read before acking a redelivered delivery), so `ack()`
 *   answers `duplicate` when it can know; two consumers acking two copies of one chunk at the same
 *   instant may both hear `stored`, yet only one is counted.
 * - **Counters** (zombies, retried, reclaimed) are confirmed events in the job's `stats` queue,
 *   summed on read; `inFlight` is a census of the job's consumers (rabbitmq_reader.ts).
 *
 * @example
 * ```ts ignore
 * import { openRabbitBroker } from "./rabbitmq.ts";
 * await using broker = await openRabbitBroker({ url: "amqp://guest:guest@127.0.0.1:5672" });
 * const [delivery] = await broker.pull({ jobId: "ttg", max: 1, waitMs: 0 });
 * ```
 *
 * @module
 */
import {
  type AckOutcome,
  type AckRequest,
  assertJobId,
  assertTask,
  type AttemptRecord,
  type Broker,
  type BrokerCapabilities,
  type BrokerOptions,
  brokerOptions,
  type BrokerStats,
  type ChunkTask,
  type DeadLetterStore,
  type Delivery,
  type ExtendOutcome,
  type JobRecord,
  type NackOutcome,
  type NackRequest,
  type PullOptions,
  type ReclaimOptions,
  retryDelayMs,
  type StoredResult,
} from "./contract.ts";
import type { ConsumeMessage } from "amqplib";
import { BrokerError } from "./errors.ts";
import {
  encodeDeadLetter,
  encodeTask,
  ID_HEADER,
  malformedHeaders,
  resultBody,
  type TaskState,
} from "./rabbitmq_codec.ts";
import {
  interpretError,
  RabbitConnection,
  type RabbitConnectionOptions,
  rabbitTarget,
  type Session,
} from "./rabbitmq_connection.ts";
import { type Held, JobIntake } from "./rabbitmq_intake.ts";
import { RabbitStore } from "./rabbitmq_store.ts";
import {
  declareDelayQueue,
  declareJob,
  type JobNames,
  jobNames,
  type QueueType,
} from "./rabbitmq_topology.ts";

/** Options of {@linkcode openRabbitBroker}. */
export type RabbitBrokerOptions =
  & RabbitConnectionOptions
  & {
    /**
     * Prefix of every queue and exchange name. The job whose id equals it uses the predecessor's
     * names (`ttg.tasks`, `ttg.results`, …); other jobs use `<prefix>.<jobId>.tasks`, ….
     * @default "ttg"
     */
    readonly namePrefix?: string;
    /** Alias of `namePrefix`. */
    readonly queuePrefix?: string;
    /** Task queues of namespaced jobs: classic (with priorities) or quorum. @default "classic" */
    readonly queueType?: QueueType;
    /** Fixed prefetch window per job; by default the largest `max` a pull asked for. */
    readonly prefetch?: number;
  }
  & Partial<BrokerOptions>;

/** Results per message for namespaced jobs (the legacy queue gets one per message). */
const RESULTS_PER_MESSAGE = 500;
/** Tasks published before waiting for their confirms. */
const PUBLISH_WINDOW = 1000;

/**
 * Opens a broker on RabbitMQ. Connects at once (retrying up to `connectTimeoutMs`), then
 * reconnects by itself whenever the connection drops.
 *
 * @example
 * ```ts ignore
 * import { openRabbitBroker } from "./rabbitmq.ts";
 * const broker = await openRabbitBroker({ url: "amqp://guest:guest@127.0.0.1:5672", prefetch: 64 });
 * console.log(await broker.stats("ttg"));
 * await broker.close();
 * ```
 */
export async function openRabbitBroker(options: RabbitBrokerOptions = {}): Promise<Broker> {
  const broker = new RabbitBroker(options);
  await broker.connection.open();
  return broker;
}

class RabbitBroker implements Broker {
  readonly backend = "rabbitmq";
  readonly options: BrokerOptions;
  readonly capabilities: BrokerCapabilities;
  readonly connection: RabbitConnection;
  readonly #prefix: string;
  readonly #queueType: QueueType;
  readonly #prefetch: number | undefined;
  readonly #intakes = new Map<string, JobIntake>();
  readonly #held = new Map<string, Held>();
  /** Prefetched messages being put back by close(): unacked, so no `multiple` ack may cover them. */
  readonly #returning = new Set<
    { readonly generation: number; readonly message: ConsumeMessage }
  >();
  readonly #nameCache = new Map<string, JobNames>();
  readonly #store: RabbitStore;
  #closed = false;

  constructor(options: RabbitBrokerOptions) {
    this.options = brokerOptions(options);
    const target = rabbitTarget(options);
    this.#prefix = options.namePrefix ?? options.queuePrefix ?? "ttg";
    assertJobId(this.#prefix);
    this.#queueType = options.queueType ?? "classic";
    if (this.#queueType !== "classic" && this.#queueType !== "quorum") {
      throw new TypeError(`Invalid queueType "${this.#queueType}": expected classic or quorum`);
    }
    if (
      options.prefetch !== undefined &&
      !(Number.isInteger(options.prefetch) && options.prefetch > 0)
    ) {
      throw new RangeError(
        `Invalid prefetch "${options.prefetch}": expected a whole number above 0`,
      );
    }
    this.#prefetch = options.prefetch;
    this.capabilities = {
      strictPriority: false,
      multiProcess: true,
      connectionBoundLeases: true,
    };
    this.connection = new RabbitConnection(
      target,
      `ttg ${this.options.consumerId}`,
      (session) => this.#setupSession(session),
    );
    this.#store = new RabbitStore({
      connection: this.connection,
      names: (jobId) => this.#names(jobId),
      topology: (session, jobId) => this.#topology(session, jobId),
      delays: () => this.#delays(),
      inFlight: (jobId) => this.#inFlight(jobId),
    });
  }

  createJob(job: JobRecord): Promise<boolean> {
    return this.#op("record a job", () => this.#store.createJob(job));
  }

  getJob(jobId: string): Promise<JobRecord | null> {
    return this.#op("read a job", () => this.#store.getJob(jobId));
  }

  async publish(tasks: readonly ChunkTask[]): Promise<void> {
    this.#assertOpen();
    for (const task of tasks) assertTask(task);
    let pending = [...tasks];
    for (let round = 0; pending.length > 0; round++) {
      if (round >= 5) {
        throw new BrokerError(
          "UNAVAILABLE",
          `Cannot publish ${pending.length} tasks: RabbitMQ kept failing`,
        );
      }
      const session = await this.#op("publish tasks", () => this.connection.session());
      for (const jobId of new Set(pending.map((t) => t.jobId))) {
        await this.#op("declare a job", () => this.#topology(session, jobId));
      }
      const failed: ChunkTask[] = [];
      let previous: Promise<void> = Promise.resolve();
      for (let i = 0; i < pending.length && session.alive; i += PUBLISH_WINDOW) {
        const window = pending.slice(i, i + PUBLISH_WINDOW);
        const confirmed = Promise.all(window.map((task) => {
          const names = this.#names(task.jobId);
          return session.publish(
            names.taskExchange,
            names.tasks,
            encodeTask(task, { attempt: 1, claims: 0, history: [] }),
            { priority: task.priority, messageId: task.chunkId },
          ).then((outcome) => {
            if (outcome !== "ack") failed.push(task);
          }, () => {
            failed.push(task);
          });
        })).then(() => {});
        await previous; // two windows in flight: publishing never waits for a round trip
        previous = confirmed;
        if (!session.alive) failed.push(...pending.slice(i + PUBLISH_WINDOW));
      }
      await previous;
      if (failed.length > 0 && session.alive) this.#store.forgetTopology();
      pending = failed;
    }
  }

  async pull(options: PullOptions): Promise<Delivery[]> {
    this.#assertOpen();
    assertJobId(options.jobId);
    const max = options.max ?? 1;
    if (!(Number.isInteger(max) && max >= 1)) {
      throw new RangeError(`Invalid max "${max}": expected a whole number above 0`);
    }
    const deadline = Date.now() + Math.max(0, options.waitMs ?? 1000);
    const intake = this.#intake(options.jobId);
    for (;;) {
      if (options.signal?.aborted) return [];
      const session = await this.#op(
        "pull",
        () => this.connection.session(Math.max(100, deadline - Date.now())),
      );
      await this.#op("consume", async () => {
        await this.#topology(session, options.jobId);
        await intake.consume(session, max, this.#prefetch, this.#queueType === "quorum");
      });
      this.#bindControl(session, options.jobId);
      const taken = intake.take(session.generation, max);
      if (taken.length > 0) return taken.map((r) => this.#handOut(options.jobId, intake, r));
      const left = deadline - Date.now();
      if (left <= 0) return [];
      await intake.wait(left, options.signal);
      this.#assertOpen();
    }
  }

  async ack(requests: readonly AckRequest[]): Promise<AckOutcome[]> {
    this.#assertOpen();
    const outcomes: AckOutcome[] = requests.map(() => "zombie");
    const session = this.connection.current;
    const live = this.#live(requests.map((r) => r.delivery), session);
    if (session && live.length > 0) {
      const byJob = new Map<string, { index: number; held: Held; body: object }[]>();
      for (const i of live) {
        const request = requests[i]!;
        const held = this.#held.get(request.delivery.receipt)!;
        const body = resultBody(held.jobId, held.task.chunkId, request.result);
        const list = byJob.get(held.jobId) ?? [];
        list.push({ index: i, held, body });
        byJob.set(held.jobId, list);
      }
      const publishes: Promise<void>[] = [];
      const acked: Held[] = [];
      const failed: Held[] = [];
      for (const [jobId, list] of byJob) {
        const fresh = list.some((e) => e.held.redeliveries > 0);
        const index = this.#store.loadedIndex(jobId, fresh) ??
          await this.#op("read results", () => this.#store.index(jobId, fresh));
        const seen = new Set<string>();
        for (const e of list) {
          const dup = index.has(e.held.task.chunkId) || seen.has(e.held.task.chunkId);
          seen.add(e.held.task.chunkId);
          outcomes[e.index] = dup ? "duplicate" : "stored";
        }
        const names = this.#names(jobId);
        const size = names.legacy ? 1 : RESULTS_PER_MESSAGE;
        for (let i = 0; i < list.length; i += size) {
          const part = list.slice(i, i + size);
          const key = crypto.randomUUID();
          const content = Buffer.from(
            JSON.stringify(
              part.length === 1 ? part[0]!.body : { ttg_results: part.map((e) => e.body) },
            ),
          );
          publishes.push(
            session.publish(names.resultsExchange, names.results, content, {
              messageId: part[0]!.held.task.chunkId,
              headers: { [ID_HEADER]: key },
            }).then((outcome) => {
              if (outcome !== "ack") throw new Error(`results ${outcome}`);
              for (const e of part) acked.push(e.held);
              index.add(
                key,
                part.map((e) => ({ ...requests[e.index]!.result, chunkId: e.held.task.chunkId })),
              );
            }).catch(() => {
              for (const e of part) {
                outcomes[e.index] = "zombie";
                failed.push(e.held);
              }
            }),
          );
        }
      }
      await Promise.all(publishes);
      await this.#settle(session, acked, failed);
      for (const i of live) this.#held.delete(requests[i]!.delivery.receipt);
    }
    await this.#countZombies(requests.map((r) => r.delivery), outcomes);
    return outcomes;
  }

  async nack(requests: readonly NackRequest[]): Promise<NackOutcome[]> {
    this.#assertOpen();
    for (const r of requests) for (const t of r.split ?? []) assertTask(t);
    const outcomes: NackOutcome[] = requests.map(() => "zombie");
    const session = this.connection.current;
    const live = this.#live(requests.map((r) => r.delivery), session);
    if (session && live.length > 0) {
      const delays = new Map<string, Promise<string>>();
      const acked: Held[] = [];
      const failed: Held[] = [];
      const work = live.map(async (i) => {
        const request = requests[i]!;
        const held = this.#held.get(request.delivery.receipt)!;
        try {
          outcomes[i] = await this.#fail(session, held, request, delays);
          acked.push(held);
        } catch {
          outcomes[i] = "zombie";
          failed.push(held);
        }
      });
      await Promise.all(work);
      await this.#settle(session, acked, failed);
      for (const i of live) this.#held.delete(requests[i]!.delivery.receipt);
    }
    await this.#countZombies(requests.map((r) => r.delivery), outcomes);
    return outcomes;
  }

  async extend(deliveries: readonly Delivery[]): Promise<ExtendOutcome[]> {
    this.#assertOpen();
    const session = this.connection.current;
    const live = new Set(this.#live(deliveries, session));
    const outcomes: ExtendOutcome[] = deliveries.map((_, i) => live.has(i) ? "extended" : "zombie");
    await this.#countZombies(deliveries, outcomes);
    return outcomes;
  }

  reclaim(options: ReclaimOptions): Promise<number> {
    this.#assertOpen();
    assertJobId(options.jobId);
    const intake = this.#intakes.get(options.jobId);
    if (!intake) return Promise.resolve(0);
    const n = Math.min(intake.reclaimed, options.max ?? 1000);
    intake.reclaimed -= n;
    return Promise.resolve(n);
  }

  stats(jobId: string): Promise<BrokerStats> {
    this.#assertOpen();
    assertJobId(jobId);
    return this.#op("read stats", () => this.#store.stats(jobId));
  }

  results(jobId: string): Promise<StoredResult[]> {
    this.#assertOpen();
    assertJobId(jobId);
    return this.#op(
      "read results",
      async () => (await this.#store.index(jobId, true, true)).results(),
    );
  }

  get deadLetters(): DeadLetterStore {
    return this.#store.deadLetters(() => this.#assertOpen(), (name, fn) => this.#op(name, fn));
  }

  async reset(jobId: string): Promise<void> {
    this.#assertOpen();
    assertJobId(jobId);
    const intake = this.#intakes.get(jobId);
    if (intake) {
      await intake.cancel(this.connection.current);
      intake.buffer.length = 0;
      intake.unreadable.length = 0; // the job's queues go: RabbitMQ drops what they held
      clearTimeout(intake.retryTimer);
      this.#intakes.delete(jobId);
    }
    for (const [receipt, held] of this.#held) if (held.jobId === jobId) this.#held.delete(receipt);
    await this.#op("reset a job", () => this.#store.reset(jobId));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const intake of this.#intakes.values()) {
      clearTimeout(intake.retryTimer);
      intake.wake();
    }
    const session = this.connection.current;
    if (session) {
      await Promise.race([
        this.#releaseBuffered(session),
        new Promise((resolve) => setTimeout(resolve, 2000)),
      ]).catch(() => {});
      await this.#store.flush(session).catch(() => {});
    }
    await this.connection.close();
    this.#held.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** A failed delivery's fate: a confirmed split, release, retry or dead-letter copy. */
  async #fail(
    session: Session,
    held: Held,
    request: NackRequest,
    delays: Map<string, Promise<string>>,
  ): Promise<NackOutcome> {
    const names = this.#names(held.jobId);
    const publish = async (exchange: string, key: string, content: Buffer, priority: number) => {
      const outcome = await session.publish(exchange, key, content, {
        priority,
        messageId: held.task.chunkId,
      });
      if (outcome !== "ack") throw new Error(`copy ${outcome}`);
    };
    if (request.split && request.split.length > 0) {
      await Promise.all(request.split.map((t) =>
        publish(
          names.taskExchange,
          names.tasks,
          encodeTask({ ...t, jobId: held.jobId }, { attempt: 1, claims: 0, history: [] }),
          t.priority,
        )
      ));
      return "split";
    }
    const { task, state } = held;
    if (request.kind === "released") {
      await publish(
        names.taskExchange,
        names.tasks,
        encodeTask(task, { ...state, claims: held.epoch }),
        task.priority,
      );
      return "released";
    }
    const record: AttemptRecord = {
      attempt: state.attempt,
      kind: request.kind,
      reason: request.reason,
      workerId: request.workerId,
      at: new Date().toISOString(),
    };
    const policy = this.options.retry;
    if (request.kind === "unrecoverable" || state.attempt >= policy.maxAttempts) {
      const letter = encodeDeadLetter(task, state, record);
      const outcome = await session.publish(names.dlqExchange, names.dlq, letter.content, {
        headers: letter.headers,
        messageId: task.chunkId,
        timestamp: Math.floor(Date.now() / 1000),
      });
      if (outcome !== "ack") throw new Error(`dead letter ${outcome}`);
      return "dead_lettered";
    }
    const delayMs = retryDelayMs(policy, state.attempt);
    const key = `${held.jobId}\n${delayMs}`;
    if (!delays.has(key)) {
      delays.set(key, declareDelayQueue(this.connection.admin, names, delayMs));
    }
    const queue = await delays.get(key)!;
    await publish(
      names.retryExchange,
      queue,
      encodeTask(task, {
        attempt: state.attempt + 1,
        claims: held.epoch,
        history: [...state.history, record],
      }),
      task.priority,
    );
    this.#store.count(held.jobId, { retried: 1, delay: delayMs });
    return "retrying";
  }

  #handOut(
    jobId: string,
    intake: JobIntake,
    received: Omit<Held, "jobId" | "epoch" | "receipt">,
  ): Delivery {
    const receipt = `${received.generation}.${received.message.fields.deliveryTag}`;
    const held: Held = { ...received, jobId, epoch: received.state.claims + 1, receipt };
    this.#held.set(receipt, held);
    if (received.redeliveries > 0) {
      intake.reclaimed += 1;
      this.#store.count(jobId, { reclaimed: 1 });
    }
    return {
      task: received.task,
      attempt: received.state.attempt,
      maxAttempts: this.options.retry.maxAttempts,
      epoch: held.epoch,
      receipt,
      history: received.state.history,
    };
  }

  /** Indexes of the deliveries still held on the live session. */
  #live(deliveries: readonly Delivery[], session: Session | undefined): number[] {
    const out: number[] = [];
    deliveries.forEach((d, i) => {
      const held = this.#held.get(d.receipt);
      if (held && session && held.generation === session.generation) out.push(i);
      else if (held) this.#held.delete(d.receipt);
    });
    return out;
  }

  /**
   * Acks delivered messages on the channel that received them: one `multiple` ack up to the
   * highest tag below every other message this channel still holds, single acks for the rest.
   */
  #ackHeld(session: Session, acked: readonly Held[]): void {
    if (acked.length === 0 || !session.alive) return;
    const tags = new Set(acked.map((h) => h.message.fields.deliveryTag));
    let lowestOther = Infinity;
    const consider = (generation: number, tag: number) => {
      if (generation === session.generation && !tags.has(tag) && tag < lowestOther) {
        lowestOther = tag;
      }
    };
    for (const h of this.#held.values()) consider(h.generation, h.message.fields.deliveryTag);
    for (const intake of this.#intakes.values()) {
      for (const r of intake.buffer) consider(r.generation, r.message.fields.deliveryTag);
      for (const u of intake.unreadable) consider(u.generation, u.message.fields.deliveryTag);
    }
    for (const r of this.#returning) consider(r.generation, r.message.fields.deliveryTag);
    const sorted = [...acked].sort((a, b) =>
      a.message.fields.deliveryTag - b.message.fields.deliveryTag
    );
    let upTo: Held | undefined;
    for (const h of sorted) {
      if (h.message.fields.deliveryTag < lowestOther) upTo = h;
      else session.main.ack(h.message);
    }
    if (upTo) session.main.ack(upTo.message, true);
  }

  /**
   * Acks the deliveries whose result or retry copy is confirmed and puts back at once those whose
   * copy failed: they must not stay unacked on a live channel, where a later `multiple` ack would
   * cover them and lose them. Each stays in `#held` until settled, so no concurrent `multiple`
   * ack covers it meanwhile.
   */
  async #settle(session: Session, acked: readonly Held[], failed: readonly Held[]): Promise<void> {
    this.#ackHeld(session, acked);
    for (const h of acked) this.#held.delete(h.receipt);
    await Promise.all(
      failed.map((h) =>
        this.#putBack(session, this.#names(h.jobId), h.message, h.task, {
          ...h.state,
          claims: h.epoch,
        })
      ),
    );
  }

  /**
   * Puts a delivered message back on its queue as a fresh, confirmed copy with the state given,
   * then acks the original: unlike a requeue, which RabbitMQ marks redelivered (a lost attempt),
   * this costs the chunk no attempt. If the copy fails the original is requeued after all (a
   * spent attempt, never a lost chunk); if the channel is gone, RabbitMQ has requeued it. A
   * channel lost between the copy's confirm and the ack leaves both queued: the chunk runs twice
   * and its second result is counted as a duplicate, never twice in the aggregate.
   */
  async #putBack(
    session: Session,
    names: JobNames,
    message: ConsumeMessage,
    task: ChunkTask,
    state: TaskState,
  ): Promise<void> {
    const outcome = await session.publish(
      names.taskExchange,
      names.tasks,
      encodeTask(task, state),
      {
        priority: task.priority,
        messageId: task.chunkId,
      },
    ).catch(() => "failed");
    if (!session.alive) return;
    if (outcome === "ack") session.main.ack(message);
    else session.main.nack(message, false, true);
  }

  async #countZombies(deliveries: readonly Delivery[], outcomes: readonly string[]): Promise<void> {
    deliveries.forEach((d, i) => {
      if (outcomes[i] === "zombie") this.#store.count(d.task.jobId, { zombies: 1 });
    });
    if (this.#store.hasPending()) {
      await this.connection.session().then((s) => this.#store.flush(s)).catch(() => {});
    }
  }

  /** Puts prefetched, never handed-out messages back unchanged, so they burn no attempt. */
  async #releaseBuffered(session: Session): Promise<void> {
    const work: Promise<void>[] = [];
    for (const intake of this.#intakes.values()) {
      await intake.cancel(session);
      for (const r of intake.take(session.generation, Infinity)) {
        this.#returning.add(r);
        work.push(
          this.#putBack(session, intake.names, r.message, r.task, r.state)
            .finally(() => this.#returning.delete(r)),
        );
      }
    }
    await Promise.all(work);
  }

  #names(jobId: string): JobNames {
    let names = this.#nameCache.get(jobId);
    if (!names) {
      names = jobNames(this.#prefix, jobId);
      this.#nameCache.set(jobId, names);
    }
    return names;
  }

  #intake(jobId: string): JobIntake {
    let intake = this.#intakes.get(jobId);
    if (!intake) {
      intake = new JobIntake(this.#names(jobId), this.options.retry.maxAttempts);
      intake.onUnreadable = () => void this.#deadLetterUnreadable(intake!);
      this.#intakes.set(jobId, intake);
    }
    return intake;
  }

  /**
   * Moves unreadable messages to the dead letters (confirmed), then acks them. Each stays in
   * `intake.unreadable` until acked, so no `multiple` ack can cover it before its copy is safe; a
   * copy that fails is tried again while its channel lives, after 1 s, then twice as long each
   * time up to 30 s (a full or missing dead-letter queue must not be hammered).
   */
  async #deadLetterUnreadable(intake: JobIntake): Promise<void> {
    const session = this.connection.current;
    let retry = false;
    for (const u of [...intake.unreadable]) {
      // Another pass may have moved it while this one awaited: never copy or ack it twice.
      if (u.copying || !intake.unreadable.includes(u)) continue;
      if (!session || u.generation !== session.generation || !session.alive) {
        intake.dropUnreadable(u); // its channel is gone: RabbitMQ has requeued it
        continue;
      }
      u.copying = true;
      const names = intake.names;
      const letter = u.letter ??
        { content: u.message.content, headers: malformedHeaders(names.jobId, u.reason) };
      const outcome = await session.publish(names.dlqExchange, names.dlq, letter.content, {
        headers: { ...letter.headers, "x-ttg-at": new Date().toISOString() },
        contentType: u.letter
          ? "application/json"
          : u.message.properties.contentType ?? "application/octet-stream",
        timestamp: Math.floor(Date.now() / 1000),
      }).catch(() => "failed");
      u.copying = false;
      if (outcome === "ack" && session.alive) {
        session.main.ack(u.message);
        intake.dropUnreadable(u);
      } else if (session.alive) retry = true;
    }
    const current = () => !this.#closed && this.#intakes.get(intake.names.jobId) === intake;
    if (!retry) intake.retryDelayMs = 1000;
    else if (current() && !intake.retryTimer) {
      const delay = intake.retryDelayMs;
      intake.retryDelayMs = Math.min(30_000, delay * 2);
      intake.retryTimer = setTimeout(() => {
        intake.retryTimer = undefined;
        if (current()) void this.#deadLetterUnreadable(intake);
      }, delay);
    }
  }

  async #setupSession(session: Session): Promise<void> {
    for (const intake of this.#intakes.values()) {
      session.onLost(() => intake.wake());
    }
    session.onLost(() => {
      for (const [receipt, held] of this.#held) {
        if (held.generation === session.generation) this.#held.delete(receipt);
      }
      for (const intake of this.#intakes.values()) {
        for (const u of [...intake.unreadable]) {
          if (u.generation === session.generation) intake.dropUnreadable(u);
        }
      }
    });
    await this.#store.setupSession(session);
  }

  #bindControl(session: Session, jobId: string): void {
    this.#store.bindControl(session, jobId);
  }

  #topology(session: Session, jobId: string): Promise<void> {
    return this.#store.topology(
      session,
      jobId,
      (names) =>
        declareJob(this.connection.admin, names, {
          queueType: this.#queueType,
          deliveryLimit: Math.max(1, this.options.retry.maxAttempts) + 1,
        }),
    );
  }

  #delays(): number[] {
    const policy = this.options.retry;
    const out = new Set<number>();
    for (let a = 1; a < policy.maxAttempts; a++) out.add(retryDelayMs(policy, a));
    return [...out];
  }

  #inFlight(jobId: string): number {
    const session = this.connection.current;
    if (!session) return 0;
    let n = this.#intakes.get(jobId)?.buffered(session.generation) ?? 0;
    for (const held of this.#held.values()) {
      if (held.jobId === jobId && held.generation === session.generation) n++;
    }
    return n;
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new BrokerError("CLOSED", "Cannot use the RabbitMQ broker: it is closed");
    }
  }

  async #op<T>(action: string, fn: () => Promise<T>): Promise<T> {
    this.#assertOpen();
    try {
      return await fn();
    } catch (error) {
      if (this.#closed) {
        throw new BrokerError("CLOSED", `Cannot ${action}: the RabbitMQ broker is closed`, {
          cause: error,
        });
      }
      throw interpretError(error, action, this.connection.target.where);
    }
  }
}
