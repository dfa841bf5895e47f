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
 * - **Counts** (stats.ts): a census of consumers, paused while queues are read; counter events.
 * - **The job index, controls and fleet registry** (kv.ts): one queue of at most one message per
 *   entry. Steps read the job's control word (control.ts); pulls (pulls.ts) follow it, keep a
 *   job under its `maxInFlight`, and pull across jobs in the order RabbitMQ allows.
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
  ResultPage,
} from "../broker.ts";
import {
  type BrokerDriver,
  brokerOptions,
  guardBroker,
  type PlannedNack,
  type PullAcrossRequest,
  type PullRequest,
} from "../guard.ts";
import { underControl } from "../policy.ts";
import { commit } from "./commit.ts";
import { interpretError, RabbitConnection, type Session } from "./connection.ts";
import { DEAD_LETTER_IDS } from "./codec.ts";
import { applyNacks } from "./copies.ts";
import { announce, CensusResponder } from "./census.ts";
import { JobControls } from "./control.ts";
import { RabbitKv } from "./kv.ts";
import { Pulls } from "./pulls.ts";
import { type RabbitBrokerOptions, rabbitOptions } from "./options.ts";
import { DeclaredJobs } from "./declared.ts";
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
import { rabbitTarget } from "./target.ts";
import { ZombieCounts } from "./zombies.ts";
import { within } from "../wait.ts";
import { backoffSteps, deliveryLimit, type JobNames, jobNames } from "./topology.ts";

export type { RabbitBrokerOptions } from "./options.ts";

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
    discoverMs: 100,
  });
  readonly deadLetterIds = DEAD_LETTER_IDS;
  readonly connection: RabbitConnection;
  readonly kv: RabbitKv;
  readonly #controls: JobControls;
  readonly #pulls: Pulls;
  readonly #jobs: DeclaredJobs;
  readonly #prefix: string;
  readonly #prefetch: number | undefined;
  readonly #names = new Map<string, JobNames>();
  readonly #deliveries: Deliveries;
  readonly #results: Results;
  readonly #letters: Letters;
  readonly #census: CensusResponder;
  readonly #intakes = new Map<string, JobIntake>();
  readonly #gates = new Map<string, TransitionGate>();
  readonly #background = new Set<Promise<unknown>>();
  readonly #zombies = new ZombieCounts(() => this.connection.session());

  constructor(options: RabbitBrokerOptions) {
    const { namePrefix, queueType, prefetch, rest } = rabbitOptions(options);
    this.options = brokerOptions(rest);
    this.#prefix = namePrefix;
    this.#prefetch = prefetch;
    this.#deliveries = new Deliveries(this.options.retry.maxAttempts);
    this.connection = new RabbitConnection(
      rabbitTarget({ leaseMs: this.options.leaseMs, ...options }),
      `ttg ${this.options.consumerId}`,
      (session) => this.#setupSession(session),
      options.onConnectRetry,
    );
    this.#controls = new JobControls(() => this.kv);
    this.kv = new RabbitKv(
      this.connection,
      namePrefix,
      (space, key, value) => {
        this.#controls.noteWrite(space, key, value);
        // The job's consumers elsewhere drop their cached word (control.ts).
        if (space !== "controls") return;
        const names = this.#namesOf(key);
        this.#track(announce(this.connection, names, "control", this.#census.instance));
      },
    );
    const names = (jobId: string) => this.#namesOf(jobId);
    this.#jobs = new DeclaredJobs(this.connection, names, {
      queueType,
      deliveryLimit: deliveryLimit(this.options.retry.maxCrashes),
    });
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
      controlChanged: (jobId) => this.#controlChanged(jobId),
    });
    this.#pulls = new Pulls({
      connection: this.connection,
      deliveries: this.#deliveries,
      intake: (jobId) => this.#intake(jobId),
      join: async (session, jobId) => {
        await this.#jobs.topology(session, jobId);
        await this.#census.join(session, jobId);
      },
      control: (jobId) => this.#controls.of(jobId),
      refreshControls: (jobIds) => this.#controls.refresh(jobIds),
      cap: async (jobId) => (await this.#jobs.record(jobId))?.maxInFlight,
      ready: async (jobId) =>
        (await this.connection.admin.probe(this.#namesOf(jobId).tasks))?.messageCount ?? 0,
    });
  }

  async createJob(job: JobRecord): Promise<boolean> {
    const created = await store.createJob(this.connection, this.#namesOf(job.jobId), job);
    if (created) this.#jobs.recorded(job);
    return created;
  }

  getJob(jobId: string): Promise<JobRecord | null> {
    return store.getJob(this.connection, this.#namesOf(jobId));
  }

  async publish(jobId: string, tasks: readonly ChunkTask[]): Promise<void> {
    await publishTasks({
      connection: this.connection,
      names: this.#namesOf(jobId),
      topology: (session) => this.#jobs.topology(session, jobId),
      forget: () => this.#jobs.redeclare(jobId),
    }, tasks);
  }

  pull(request: PullRequest): Promise<Delivery[]> {
    return this.#pulls.one(request);
  }

  /** RabbitMQ cannot tell each job's head without taking it: no `heads()` (pulls.ts). */
  pullAcross(request: PullAcrossRequest): Promise<Delivery[]> {
    return this.#pulls.across(request);
  }

  async cancelQueued(jobId: string): Promise<number> {
    const names = this.#namesOf(jobId);
    const session = await this.connection.session();
    const delays = backoffSteps(this.options.retry);
    const purged = await store.purgeQueued(session, this.connection, names, delays);
    return purged + (await this.#intakes.get(jobId)?.cancelBuffered() ?? 0);
  }

  /** Not inside the gate: a result only adds to the results, read before a census (stats.ts). */
  ack(jobId: string, requests: readonly AckRequest[]): Promise<AckOutcome[]> {
    return commit({
      names: this.#namesOf(jobId),
      deliveries: this.#deliveries,
      admin: this.connection.admin,
      known: this.#results.known(jobId),
      session: this.connection.current,
      zombies: this.#zombies,
    }, requests);
  }

  async nack(jobId: string, planned: readonly PlannedNack[]): Promise<NackOutcome[]> {
    const names = this.#namesOf(jobId);
    const control = await this.#controls.of(jobId);
    const requests = planned.map((r) => ({ ...r, plan: underControl(r.plan, control) }));
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
    await this.#zombies.add(names, zombies);
    return outcomes;
  }

  async extend(jobId: string, deliveries: readonly Delivery[]): Promise<ExtendOutcome[]> {
    const session = this.connection.current;
    const cancelled = (await this.#controls.of(jobId)) === "cancelled";
    const outcomes = deliveries.map((d) => {
      const outcome = this.#deliveries.extendOutcome(d, session);
      return cancelled && outcome === "extended" ? "cancelled" : outcome;
    });
    const zombies = outcomes.filter((o) => o === "zombie").length;
    await this.#zombies.add(this.#namesOf(jobId), zombies);
    return outcomes;
  }

  stats(jobId: string): Promise<BrokerStats> {
    const sources = {
      connection: this.connection,
      results: this.#results,
      delays: backoffSteps(this.options.retry),
      control: (id: string) => this.#controls.of(id),
    };
    return readStats(sources, this.#namesOf(jobId));
  }

  async results(jobId: string, cursor: string | null, limit: number): Promise<ResultPage> {
    return (await this.#results.fresh(jobId)).page(cursor, limit);
  }

  listDeadLetters(jobId: string, limit: number | undefined): Promise<DeadLetter[]> {
    return store.listDeadLetters(this.connection, this.#namesOf(jobId), limit);
  }

  async replayDeadLetters(jobId: string, ids: readonly string[] | undefined): Promise<number> {
    const session = await this.connection.session();
    await this.#jobs.topology(session, jobId);
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
    await within(2000, Promise.all(intakes.map((i) => i.stop().catch(() => {}))));
    await Promise.all([...intakes.map((i) => i.settled()), ...this.#background]);
    await this.#zombies.close();
    await this.connection.close();
  }

  translate(error: unknown, action: string): unknown {
    return interpretError(error, action, this.connection.target.where);
  }

  /** Drops what this instance knew of a job that was reset. */
  async #forget(jobId: string): Promise<void> {
    const intake = this.#intakes.get(jobId);
    this.#intakes.delete(jobId);
    this.#census.leave(jobId);
    this.#deliveries.reset(jobId);
    this.#jobs.forget(jobId);
    this.#controls.forget(jobId);
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

  /** Another instance changed the job's control: read it again, and follow it at once. */
  #controlChanged(jobId: string): void {
    this.#controls.forget(jobId);
    const intake = this.#intakes.get(jobId);
    if (!intake) return;
    this.#track((async () => {
      const control = await this.#controls.of(jobId);
      if (control === "cancelled") await intake.cancelBuffered();
      else if (control === "paused") await intake.stop();
    })());
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
        control: () => this.#controls.of(jobId),
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
