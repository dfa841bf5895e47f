/**
 * The RabbitMQ broker (npm:amqplib), wire-compatible with the Python predecessor: for job `ttg`
 * the queues are `ttg.tasks`, `ttg.tasks.retry`, `ttg.tasks.dlq` and `ttg.results` behind their
 * `ttg.*.exchange`s, with the predecessor's JSON bodies (topology.ts, codec.ts).
 *
 * - **Receiving** (intake.ts): `basic.consume` with a prefetch window into a buffer that `pull()`
 *   drains; manual acks. Redeliveries and malformed messages are dealt with on receipt.
 * - **Moving a chunk** (copies.ts, commit.ts): a persistent, mandatory, confirmed copy (result,
 *   retry, release, halves, dead letter), then the ack, on the very channel that received the
 *   delivery, each step inside the job's transition gate (gate.ts).
 * - **Leases are the connection**: RabbitMQ requeues a dead consumer's unacked deliveries as soon
 *   as its connection drops (a SIGKILLed process: at once; a frozen one: after two missed
 *   heartbeats, and the heartbeat is half the lease). A live consumer's delivery is never taken
 *   away, so `extend()` only confirms it is still held, and there is no `reclaim()`.
 * - **Counts** (stats.ts): a census of the job's consumers, paused while the other queues are
 *   read, and counter events (counters.ts).
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
import type {
  AckOutcome,
  AckRequest,
  Broker,
  BrokerCapabilities,
  BrokerOptions,
  BrokerStats,
  ChunkTask,
  DeadLetter,
  Delivery,
  ExtendOutcome,
  JobRecord,
  NackOutcome,
  PartialBrokerOptions,
  StoredResult,
} from "../broker.ts";
import {
  type BrokerDriver,
  brokerOptions,
  guardBroker,
  type PlannedNack,
  type PullRequest,
} from "../guard.ts";
import { assertJobId } from "../task.ts";
import { commit, countZombies } from "./commit.ts";
import { interpretError, RabbitConnection, type Session } from "./connection.ts";
import { DEAD_LETTER_IDS } from "./codec.ts";
import { applyNacks } from "./copies.ts";
import { announce, CensusResponder } from "./census.ts";
import { Deliveries } from "./deliveries.ts";
import { TransitionGate } from "./gate.ts";
import { JobIntake } from "./intake.ts";
import { publishTasks } from "./publish.ts";
import { withLock } from "./lock.ts";
import {
  type LetterIndex,
  LETTERS,
  type Letters,
  LiveIndexes,
  RESULTS,
  type Results,
} from "./reader.ts";
import { readStats } from "./stats.ts";
import * as store from "./store.ts";
import { type RabbitConnectionOptions, rabbitTarget } from "./target.ts";
import {
  backoffSteps,
  declareJob,
  deliveryLimit,
  type JobNames,
  jobNames,
  type QueueType,
} from "./topology.ts";

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
    /** Task queues of namespaced jobs: classic (with priorities) or quorum. @default "classic" */
    readonly queueType?: QueueType;
    /** Fixed prefetch window per job; by default twice the largest `max` a pull asked for. */
    readonly prefetch?: number;
  }
  & PartialBrokerOptions;

/**
 * Opens a broker on RabbitMQ. Connects at once (retrying up to `connectTimeoutMs`, telling
 * `onConnectRetry` of each retry), then reconnects by itself whenever the connection drops.
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
  const driver = new RabbitDriver(options);
  await driver.connection.open();
  return guardBroker(driver);
}

/** The RabbitMQ steps behind the guard. */
class RabbitDriver implements BrokerDriver {
  readonly backend = "rabbitmq";
  readonly displayName = "RabbitMQ";
  readonly options: BrokerOptions;
  readonly capabilities: BrokerCapabilities = Object.freeze({
    strictPriority: false,
    multiProcess: true,
    leases: "connection" as const,
  });
  readonly deadLetterIds = DEAD_LETTER_IDS;
  readonly connection: RabbitConnection;
  readonly #prefix: string;
  readonly #queueType: QueueType;
  readonly #prefetch: number | undefined;
  readonly #names = new Map<string, JobNames>();
  readonly #deliveries: Deliveries;
  readonly #results: Results;
  readonly #letters: Letters;
  readonly #census: CensusResponder;
  readonly #intakes = new Map<string, JobIntake>();
  readonly #gates = new Map<string, TransitionGate>();
  readonly #topologies = new Map<string, { session: Session; ready: Promise<void> }>();
  readonly #background = new Set<Promise<unknown>>();

  constructor(options: RabbitBrokerOptions) {
    const { namePrefix = "ttg", queueType = "classic", prefetch, ...rest } = options;
    this.options = brokerOptions(rest);
    assertJobId(namePrefix);
    if (queueType !== "classic" && queueType !== "quorum") {
      throw new TypeError(`Invalid queueType "${queueType}": expected classic or quorum`);
    }
    if (prefetch !== undefined && !(Number.isInteger(prefetch) && prefetch > 0)) {
      throw new RangeError(`Invalid prefetch "${prefetch}": expected a whole number above 0`);
    }
    this.#prefix = namePrefix;
    this.#queueType = queueType;
    this.#prefetch = prefetch;
    this.#deliveries = new Deliveries(this.options.retry.maxAttempts);
    this.connection = new RabbitConnection(
      rabbitTarget({ leaseMs: this.options.leaseMs, ...options }),
      `ttg ${this.options.consumerId}`,
      (session) => this.#setupSession(session),
      options.onConnectRetry,
    );
    const names = (jobId: string) => this.#namesOf(jobId);
    this.#results = new LiveIndexes(this.connection, names, RESULTS);
    this.#letters = new LiveIndexes(this.connection, names, LETTERS);
    this.#census = new CensusResponder(this.connection, names, {
      census: async (jobId, id) => {
        const session = this.connection.current;
        await this.#gate(jobId).pause(id);
        return [
          ...this.#deliveries.heldIds(jobId, session),
          ...(this.#intakes.get(jobId)?.heldIds(session) ?? []),
        ];
      },
      release: (jobId, id) => this.#gates.get(jobId)?.resume(id),
      reset: (jobId) => void this.#forget(jobId),
      lettersRemoved: (jobId) => void this.#letters.forget(jobId),
    });
  }

  async createJob(job: JobRecord): Promise<boolean> {
    return await store.createJob(this.connection, this.#namesOf(job.jobId), job);
  }

  getJob(jobId: string): Promise<JobRecord | null> {
    return store.getJob(this.connection, this.#namesOf(jobId));
  }

  async publish(jobId: string, tasks: readonly ChunkTask[]): Promise<void> {
    await publishTasks({
      connection: this.connection,
      names: this.#namesOf(jobId),
      topology: (session) => this.#topology(session, jobId),
      forget: () => this.#topologies.delete(jobId),
    }, tasks);
  }

  async pull({ jobId, max, waitMs, signal }: PullRequest): Promise<Delivery[]> {
    const intake = this.#intake(jobId);
    const deadline = Date.now() + waitMs;
    intake.pullStarted();
    try {
      for (;;) {
        if (signal.aborted) return [];
        const session = await this.connection.session(Math.max(100, deadline - Date.now()));
        await this.#topology(session, jobId);
        await this.#census.join(session, jobId);
        await intake.consume(session, max);
        const taken = intake.take(session, max);
        if (taken.length > 0) return taken.map((r) => this.#deliveries.handOut(jobId, r));
        const left = deadline - Date.now();
        if (left <= 0) return [];
        await intake.wait(left, signal);
      }
    } finally {
      intake.pullEnded();
    }
  }

  /** Not inside the gate: a result only adds to the results, read before a census (stats.ts). */
  ack(jobId: string, requests: readonly AckRequest[]): Promise<AckOutcome[]> {
    return commit({
      names: this.#namesOf(jobId),
      deliveries: this.#deliveries,
      admin: this.connection.admin,
      known: this.#results.known(jobId),
      session: this.connection.current,
      counterSession: () => this.connection.session(),
    }, requests);
  }

  async nack(jobId: string, requests: readonly PlannedNack[]): Promise<NackOutcome[]> {
    const names = this.#namesOf(jobId);
    if (requests.some((r) => r.plan.action === "release")) await this.#intakes.get(jobId)?.idle();
    const step = (letters: LetterIndex) =>
      this.#gate(jobId).run(() =>
        applyNacks(
          { session: this.connection.current, names, admin: this.connection.admin, letters },
          this.#deliveries,
          requests,
        )
      );
    // A chunk with a dead letter already (a copy of it that outlived a crash) gets no second one.
    const outcomes = requests.some((r) => r.plan.action === "dead")
      ? await this.#deadLettering(jobId, step)
      : await step(this.#letters.known(jobId));
    const zombies = outcomes.filter((o) => o === "zombie").length;
    await countZombies(() => this.connection.session(), names, zombies);
    return outcomes;
  }

  async extend(jobId: string, deliveries: readonly Delivery[]): Promise<ExtendOutcome[]> {
    const session = this.connection.current;
    const outcomes = deliveries.map((d) => this.#deliveries.extendOutcome(d, session));
    const zombies = outcomes.filter((o) => o === "zombie").length;
    await countZombies(() => this.connection.session(), this.#namesOf(jobId), zombies);
    return outcomes;
  }

  stats(jobId: string): Promise<BrokerStats> {
    const sources = {
      connection: this.connection,
      results: this.#results,
      delays: backoffSteps(this.options.retry),
    };
    return readStats(sources, this.#namesOf(jobId));
  }

  async results(jobId: string): Promise<StoredResult[]> {
    return (await this.#results.fresh(jobId)).results();
  }

  listDeadLetters(jobId: string, limit: number | undefined): Promise<DeadLetter[]> {
    return store.listDeadLetters(this.connection, this.#namesOf(jobId), limit);
  }

  async replayDeadLetters(jobId: string, ids: readonly string[] | undefined): Promise<number> {
    const session = await this.connection.session();
    await this.#topology(session, jobId);
    await this.#letters.forget(jobId);
    return await store.replayDeadLetters(session, this.connection, this.#namesOf(jobId), ids);
  }

  async purgeDeadLetters(jobId: string, ids: readonly string[] | undefined): Promise<number> {
    await this.#letters.forget(jobId);
    const session = await this.connection.session();
    return await store.purgeDeadLetters(session, this.connection, this.#namesOf(jobId), ids);
  }

  /** Runs a step that may dead-letter: under the job's lock, with its dead letters read fresh. */
  #deadLettering<T>(jobId: string, step: (letters: LetterIndex) => Promise<T>): Promise<T> {
    return withLock(
      this.connection,
      this.#namesOf(jobId).lock,
      async () => step(await this.#letters.fresh(jobId)),
    );
  }

  async reset(jobId: string): Promise<void> {
    const names = this.#namesOf(jobId);
    await announce(this.connection, names, "reset");
    await this.#forget(jobId);
    await store.deleteJobQueues(this.connection, names, backoffSteps(this.options.retry));
  }

  async close(): Promise<void> {
    for (const gate of this.#gates.values()) gate.resumeAll();
    const intakes = [...this.#intakes.values()];
    for (const intake of intakes) intake.end();
    // Prefetched messages nobody claimed go back unchanged (no attempt, no crash).
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(intakes.map((i) => i.stop().catch(() => {}))),
      new Promise((resolve) => (timer = setTimeout(resolve, 2000))),
    ]);
    clearTimeout(timer);
    await Promise.all([...intakes.map((i) => i.settled()), ...this.#background]);
    await this.connection.close();
  }

  translate(error: unknown, action: string): unknown {
    return interpretError(error, action, this.connection.target.where);
  }

  /** Drops what this instance knew of a job that was reset. */
  async #forget(jobId: string): Promise<void> {
    const intake = this.#intakes.get(jobId);
    this.#intakes.delete(jobId);
    this.#topologies.delete(jobId);
    this.#census.leave(jobId);
    this.#deliveries.reset(jobId);
    await intake?.drop();
    await this.#results.forget(jobId);
    await this.#letters.forget(jobId);
  }

  async #setupSession(session: Session): Promise<void> {
    session.onLost(() => {
      for (const gate of this.#gates.values()) gate.resumeAll();
    });
    await this.#census.setupSession(session);
  }

  #topology(session: Session, jobId: string): Promise<void> {
    const known = this.#topologies.get(jobId);
    if (known?.session === session) return known.ready;
    const ready = declareJob(this.connection.admin, this.#namesOf(jobId), {
      queueType: this.#queueType,
      deliveryLimit: deliveryLimit(this.options.retry.maxCrashes),
    });
    this.#topologies.set(jobId, { session, ready });
    ready.catch(() => {
      if (this.#topologies.get(jobId)?.ready === ready) this.#topologies.delete(jobId);
    });
    return ready;
  }

  #intake(jobId: string): JobIntake {
    return cached(this.#intakes, jobId, () =>
      new JobIntake({
        names: this.#namesOf(jobId),
        deliveries: this.#deliveries,
        gate: this.#gate(jobId),
        results: this.#results,
        letters: this.#letters,
        deadLettering: (step) => this.#deadLettering(jobId, step),
        admin: this.connection.admin,
        policy: this.options.retry,
        consumerId: this.options.consumerId,
        ...(this.#prefetch ? { prefetch: this.#prefetch } : {}),
        holding: (session) => this.#deliveries.holds(jobId, session),
        background: (work) => this.#track(work),
      }));
  }

  #track(work: Promise<unknown>): void {
    const tracked = work.catch(() => {}).finally(() => this.#background.delete(tracked));
    this.#background.add(tracked);
  }

  #gate(jobId: string): TransitionGate {
    return cached(this.#gates, jobId, () => new TransitionGate());
  }

  #namesOf(jobId: string): JobNames {
    return cached(this.#names, jobId, () => jobNames(this.#prefix, jobId));
  }
}

/** The value of `key`, made and kept on first use. */
function cached<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) map.set(key, value = make());
  return value;
}
