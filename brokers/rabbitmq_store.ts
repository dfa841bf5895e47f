/**
 * What the RabbitMQ broker keeps besides tasks: declared topology per connection, result indexes
 * (with a live feed for readers of stats/results), counter events, the job record, dead letters,
 * and the in-flight census responder.
 *
 * Counters are confirmed JSON events (`{ zombies, retried, reclaimed, delays }`) in the job's
 * durable `stats` queue, summed when read: they survive restarts and need no single writer. The
 * live feed is an exclusive, auto-deleted queue bound to the results exchange, so a reader that
 * polls stats() reads the results queue once and then only what is new.
 *
 * @module
 */
import type { ConsumeMessage } from "amqplib";
import type {
  BrokerStats,
  DeadLetter,
  DeadLetterSelector,
  DeadLetterStore,
  JobRecord,
} from "./contract.ts";
import { assertJobId } from "./contract.ts";
import { BrokerError } from "./errors.ts";
import { deadLetterTask, decodeDeadLetter, encodeTask } from "./rabbitmq_codec.ts";
import type { RabbitConnection, Session } from "./rabbitmq_connection.ts";
import { census, ResultIndex, snapshot } from "./rabbitmq_reader.ts";
import {
  declareJobRecordQueue,
  delayQueue,
  deleteJob,
  type JobNames,
} from "./rabbitmq_topology.ts";

/** Counter increments of one job. */
export interface CounterEvent {
  zombies?: number;
  retried?: number;
  reclaimed?: number;
  /** Backoff steps used (their delay queues are counted as `delayed`). */
  delay?: number;
}

interface Pending {
  zombies: number;
  retried: number;
  reclaimed: number;
  delays: Set<number>;
}

/** What the store needs from its broker. */
export interface StoreDeps {
  readonly connection: RabbitConnection;
  names(jobId: string): JobNames;
  topology(session: Session, jobId: string): Promise<void>;
  /** Backoff steps of this broker's retry policy. */
  delays(): number[];
  /** Deliveries of the job this broker holds (handed out or prefetched). */
  inFlight(jobId: string): number;
}

/** Per-broker bookkeeping over RabbitMQ queues. */
export class RabbitStore {
  readonly #deps: StoreDeps;
  readonly #topologies = new Map<string, { generation: number; ready: Promise<void> }>();
  readonly #indexes = new Map<string, ResultIndex>();
  readonly #indexing = new Map<string, Promise<ResultIndex>>();
  readonly #pending = new Map<string, Pending>();
  readonly #instance = crypto.randomUUID();
  #control: { generation: number; queue: string; bound: Set<string> } | undefined;

  constructor(deps: StoreDeps) {
    this.#deps = deps;
  }

  /** Declares the job's topology once per connection. */
  topology(
    session: Session,
    jobId: string,
    declare: (names: JobNames) => Promise<void>,
  ): Promise<void> {
    const known = this.#topologies.get(jobId);
    if (known && known.generation === session.generation) return known.ready;
    const ready = declare(this.#deps.names(jobId));
    this.#topologies.set(jobId, { generation: session.generation, ready });
    ready.catch(() => {
      if (this.#topologies.get(jobId)?.ready === ready) this.#topologies.delete(jobId);
    });
    return ready;
  }

  /** Forgets declared topology (a publish was not routable: something was deleted). */
  forgetTopology(): void {
    this.#topologies.clear();
  }

  /** Starts the census responder of a new connection. */
  async setupSession(session: Session): Promise<void> {
    const { queue } = await session.main.assertQueue("", {
      exclusive: true,
      autoDelete: true,
      durable: false,
    });
    this.#control = { generation: session.generation, queue, bound: new Set() };
    await session.main.consume(queue, (message) => {
      if (!message?.properties.replyTo) return;
      try {
        const { jobId } = JSON.parse(message.content.toString()) as { jobId: string };
        const reply = { instance: this.#instance, inFlight: this.#deps.inFlight(jobId) };
        session.main.sendToQueue(message.properties.replyTo, Buffer.from(JSON.stringify(reply)), {
          persistent: false,
        });
      } catch {
        // not a census request
      }
    }, { noAck: true });
  }

  /** Subscribes this broker to the job's census requests (once per connection). */
  bindControl(session: Session, jobId: string): void {
    const control = this.#control;
    if (!control || control.generation !== session.generation || control.bound.has(jobId)) return;
    control.bound.add(jobId);
    const names = this.#deps.names(jobId);
    this.#deps.connection.admin.run((ch) => ch.bindQueue(control.queue, names.control, ""))
      .catch(() => control.bound.delete(jobId));
  }

  /** The job's index when no read is needed (loaded, or kept current by a live feed). */
  loadedIndex(jobId: string, fresh: boolean): ResultIndex | undefined {
    const index = this.#indexes.get(jobId);
    if (!index || this.#indexing.has(jobId)) return undefined;
    const live = index.liveGeneration !== 0 &&
      index.liveGeneration === this.#deps.connection.current?.generation;
    return live || (index.loaded && !fresh) ? index : undefined;
  }

  /**
   * The job's result index. `fresh` re-reads the results queue (unless a live feed keeps the
   * index current); `live` also attaches a live feed.
   */
  index(jobId: string, fresh: boolean, live = false): Promise<ResultIndex> {
    const running = this.#indexing.get(jobId);
    const next = (running ?? Promise.resolve()).catch(() => {}).then(() =>
      this.#loadIndex(jobId, fresh, live)
    );
    this.#indexing.set(jobId, next);
    return next.finally(() => {
      if (this.#indexing.get(jobId) === next) this.#indexing.delete(jobId);
    });
  }

  async #loadIndex(jobId: string, fresh: boolean, live: boolean): Promise<ResultIndex> {
    let index = this.#indexes.get(jobId);
    if (!index) {
      index = new ResultIndex();
      this.#indexes.set(jobId, index);
    }
    const session = await this.#deps.connection.session();
    if (index.liveGeneration === session.generation) return index;
    if (!fresh && index.loaded && !live) return index;
    const names = this.#deps.names(jobId);
    if (live && await this.#deps.connection.admin.probe(names.results)) {
      const admin = this.#deps.connection.admin;
      const { queue } = await admin.run(async (ch) => {
        const ok = await ch.assertQueue("", { exclusive: true, autoDelete: true, durable: false });
        await ch.bindQueue(ok.queue, names.resultsExchange, names.results);
        return ok;
      });
      const target = index;
      await session.main.consume(queue, (m) => m && target.addMessage(m), { noAck: true });
      index.liveGeneration = session.generation;
      session.onLost(() => {
        if (target.liveGeneration === session.generation) target.liveGeneration = 0;
      });
    }
    const target = index;
    await snapshot(this.#deps.connection, names.results, (messages) => {
      for (const m of messages) target.addMessage(m);
    });
    index.loaded = true;
    return index;
  }

  /** Adds counter increments, published with the next flush. */
  count(jobId: string, event: CounterEvent): void {
    let p = this.#pending.get(jobId);
    if (!p) {
      p = { zombies: 0, retried: 0, reclaimed: 0, delays: new Set() };
      this.#pending.set(jobId, p);
    }
    p.zombies += event.zombies ?? 0;
    p.retried += event.retried ?? 0;
    p.reclaimed += event.reclaimed ?? 0;
    if (event.delay !== undefined) p.delays.add(event.delay);
  }

  hasPending(): boolean {
    return this.#pending.size > 0;
  }

  /** Publishes pending counter events (confirmed); keeps them when that fails. */
  async flush(session: Session): Promise<void> {
    const work = [...this.#pending].map(async ([jobId, p]) => {
      this.#pending.delete(jobId);
      const event = {
        zombies: p.zombies,
        retried: p.retried,
        reclaimed: p.reclaimed,
        delays: [...p.delays],
      };
      const names = this.#deps.names(jobId);
      const outcome = await session.publish("", names.stats, Buffer.from(JSON.stringify(event)))
        .catch(() => "failed");
      if (outcome === "ack" || outcome === "returned") return; // returned: the job was reset
      this.count(jobId, event);
      for (const d of p.delays) this.count(jobId, { delay: d });
    });
    await Promise.all(work);
  }

  async #counters(jobId: string): Promise<Pending> {
    const sum: Pending = { zombies: 0, retried: 0, reclaimed: 0, delays: new Set() };
    await snapshot(this.#deps.connection, this.#deps.names(jobId).stats, (messages) => {
      for (const m of messages) {
        try {
          const e = JSON.parse(m.content.toString()) as Partial<CounterEvent> & {
            delays?: number[];
          };
          sum.zombies += Number(e.zombies ?? 0);
          sum.retried += Number(e.retried ?? 0);
          sum.reclaimed += Number(e.reclaimed ?? 0);
          for (const d of e.delays ?? []) if (Number.isInteger(d)) sum.delays.add(d);
        } catch {
          // not a counter event
        }
      }
    });
    return sum;
  }

  /** The job's counts. */
  async stats(jobId: string): Promise<BrokerStats> {
    const { connection } = this.#deps;
    const names = this.#deps.names(jobId);
    if (this.#pending.has(jobId)) await this.flush(await connection.session());
    const tasks = await connection.admin.probe(names.tasks);
    const dlq = await connection.admin.probe(names.dlq);
    const counters = await this.#counters(jobId);
    let delayed = (await connection.admin.probe(names.retry))?.messageCount ?? 0;
    for (const ms of new Set([...this.#deps.delays(), ...counters.delays])) {
      delayed += (await connection.admin.probe(delayQueue(names, ms)))?.messageCount ?? 0;
    }
    const index = await this.index(jobId, true, true);
    const consumers = tasks?.consumerCount ?? 0;
    const replies = await census(connection, names.control, jobId, consumers);
    return {
      ready: tasks?.messageCount ?? 0,
      inFlight: replies.reduce((n, r) => n + r.inFlight, 0),
      delayed,
      deadLettered: dlq?.messageCount ?? 0,
      completed: index.completed,
      duplicates: index.duplicates,
      zombies: counters.zombies,
      retried: counters.retried,
      reclaimed: counters.reclaimed,
      consumers,
    };
  }

  /** Records a job once: a `reject-publish` queue of length 1 refuses the second record. */
  async createJob(job: JobRecord): Promise<boolean> {
    assertJobId(job.jobId);
    const names = this.#deps.names(job.jobId);
    await declareJobRecordQueue(this.#deps.connection.admin, names);
    const session = await this.#deps.connection.session();
    const outcome = await session.publish("", names.job, Buffer.from(JSON.stringify(job)));
    if (outcome === "returned") {
      throw new BrokerError("UNAVAILABLE", `Cannot record job "${job.jobId}": its queue vanished`);
    }
    return outcome === "ack";
  }

  async getJob(jobId: string): Promise<JobRecord | null> {
    assertJobId(jobId);
    const found = await snapshot(
      this.#deps.connection,
      this.#deps.names(jobId).job,
      (messages) => messages[0] ? JSON.parse(messages[0].content.toString()) as JobRecord : null,
    );
    return found ?? null;
  }

  /** Dead-letter operations; `guard` throws when the broker is closed, `op` translates errors. */
  deadLetters(
    guard: () => void,
    op: <T>(action: string, fn: () => Promise<T>) => Promise<T>,
  ): DeadLetterStore {
    const { connection } = this.#deps;
    const read = <T>(
      jobId: string,
      use: (messages: ConsumeMessage[], channel: import("amqplib").Channel) => Promise<T> | T,
    ) => {
      guard();
      assertJobId(jobId);
      return snapshot(connection, this.#deps.names(jobId).dlq, use);
    };
    const selected = (jobId: string, selector: DeadLetterSelector, m: ConsumeMessage) =>
      !selector.ids || selector.ids.includes(decodeDeadLetter(jobId, m.content, m.properties).id);
    return {
      list: (jobId, options) =>
        op("list dead letters", async () => {
          const letters = await read(jobId, (messages) =>
            messages.map((m): DeadLetter =>
              decodeDeadLetter(jobId, m.content, m.properties)
            ));
          return (letters ?? []).slice(0, options?.limit ?? Infinity);
        }),
      replay: (selector) =>
        op("replay dead letters", async () => {
          const session = await connection.session();
          await this.#deps.topology(session, selector.jobId);
          const names = this.#deps.names(selector.jobId);
          const n = await read(selector.jobId, async (messages, channel) => {
            let count = 0;
            for (const m of messages) {
              if (!selected(selector.jobId, selector, m)) continue;
              const decoded = deadLetterTask(selector.jobId, m.content);
              if (!decoded.ok) continue;
              const content = encodeTask(decoded.task, {
                attempt: 1,
                claims: decoded.state.claims + 1,
                history: [],
              });
              const outcome = await session.publish(names.taskExchange, names.tasks, content, {
                priority: decoded.task.priority,
                messageId: decoded.task.chunkId,
              });
              if (outcome !== "ack") continue;
              channel.ack(m);
              count++;
            }
            return count;
          });
          return n ?? 0;
        }),
      purge: (selector) =>
        op("purge dead letters", async () => {
          const n = await read(selector.jobId, (messages, channel) => {
            let count = 0;
            for (const m of messages) {
              if (!selected(selector.jobId, selector, m)) continue;
              channel.ack(m);
              count++;
            }
            return count;
          });
          return n ?? 0;
        }),
    };
  }

  /** Deletes every queue and exchange of the job and forgets what this broker knew of it. */
  async reset(jobId: string): Promise<void> {
    const names = this.#deps.names(jobId);
    const counters = await this.#counters(jobId).catch(() => undefined);
    const delays = new Set([...this.#deps.delays(), ...(counters?.delays ?? [])]);
    await deleteJob(this.#deps.connection.admin, names, delays);
    this.#topologies.delete(jobId);
    this.#indexes.delete(jobId);
    this.#pending.delete(jobId);
    this.#control?.bound.delete(jobId);
  }
}
