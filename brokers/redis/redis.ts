/**
 * The Redis Streams broker (npm:ioredis), wire-compatible with the Python predecessor: for job
 * `ttg` the tasks are the stream `ttg:tasks` read by the consumer group `ttg-workers`, and every
 * counted result is also an entry of `ttg:results` in the predecessor's format, so old and new
 * workers can share one Redis during a migration. Key layout: scripts/prelude.ts; entry formats:
 * codec.ts (the predecessor's fields: legacy.ts).
 *
 * This module is a {@linkcode BrokerDriver}: the guard (guard.ts) checks arguments and plans
 * nacks, the failure policy (policy.ts) decides what becomes of a chunk, and each step here is
 * one Lua script per batch (one round trip): claim, ack + store results, nack (apply the plans),
 * extend, stats. Reclaim is two scripts around `planExpiry`: a takeover of entries idle past the
 * lease (and sooner, a third of the lease and at most 1 s, those of a consumer whose connection is
 * gone from CLIENT LIST, so a killed worker's chunks come back in about a second), then the plans
 * applied to the entries still held. A claim is current while its entry is pending for its
 * consumer; a takeover acknowledges the entry at once, so the old holder's ack, nack and extend
 * are zombies. Waiting for work is a blocking XREADGROUP on a dedicated connection, cut
 * short by the pull's AbortSignal (CLIENT UNBLOCK). Lost connections are retried with
 * policy.ts `reconnectDelayMs`; commands wait for the reconnect, and a resent ack is recognised
 * and answered `stored`; a command fails after about 10 s without Redis. It needs a standalone
 * Redis (scripts touch keys they derive, which Redis Cluster does not allow).
 *
 * Job control: the key-value store (kv.ts) is one hash per space under the prefix, so a job's
 * control is one HGET, read by the claim, giveback, nack, extend and expire scripts in the step
 * they make: in a cancelled job every plan the guard made becomes `cancel` there, as policy.ts
 * `underControl` says. Where Redis's way differs: a pull of a paused or cancelled job does not
 * block on the streams but looks again every 250 ms; what a blocking read that waited since
 * before a pause claimed is given back (since before a cancel, cancelled); cancelling skips a
 * stream's waiting entries by moving its group's last-delivered id (reclaim trims them later);
 * `oldestReady` ages a chunk that came back from when it came back (its new entry id), as the
 * claim's aging does, where SQLite ages it from its publish.
 *
 * @example
 * ```ts ignore
 * import { openRedisBroker } from "./redis.ts";
 * await using broker = await openRedisBroker({ url: "redis://127.0.0.1:6379" });
 * const [delivery] = await broker.pull({ jobId: "ttg", max: 1, waitMs: 0 });
 * ```
 *
 * @module
 */
import type { Redis } from "ioredis";
import type {
  AckOutcome,
  AckRequest,
  Broker,
  BrokerCapabilities,
  BrokerOptions,
  BrokerStats,
  DeadLetter,
  Delivery,
  ExtendOutcome,
  NackOutcome,
  PartialBrokerOptions,
  ResultPage,
} from "../broker.ts";
import {
  type BrokerDriver,
  brokerOptions,
  guardBroker,
  type PlannedNack,
  type PullRequest,
} from "../guard.ts";
import type { DriverKv } from "../registry.ts";
import type { JobHead } from "../share.ts";
import type { ChunkTask, JobRecord } from "../task.ts";
import { BlockingReaders } from "./blocking.ts";
import {
  DEFAULT_KEY_PREFIX,
  jobKeyBase,
  jobKeys,
  kvKey,
  publishBatches,
  resultRow,
} from "./codec.ts";
import {
  abortable,
  closeClient,
  connectionName,
  connectRedis,
  interpretError,
  liveConnectionNames,
  type RedisConnectionOptions,
  type RedisTarget,
  redisTarget,
} from "./connection.ts";
import { redisKv } from "./kv.ts";
import { expireArgs, nackArgs, type TakenEntry } from "./plans.ts";
import { pullDeliveries } from "./pull.ts";
import {
  arrayOf,
  listDeadLetters,
  purgeDeadLetters,
  readResults,
  readStats,
  type RedisAccess,
  replayDeadLetters,
} from "./reads.ts";
import { type ScriptName, SCRIPTS } from "./scripts/mod.ts";

export type { RedisConnectionOptions } from "./connection.ts";

/** Options of {@linkcode openRedisBroker}. */
export type RedisBrokerOptions =
  & RedisConnectionOptions
  & {
    /**
     * Prefix of every key. The job whose id equals it uses the predecessor's names
     * (`ttg:tasks`, `ttg:results`); other jobs use `<prefix>:<jobId>:…`.
     * @default "ttg"
     */
    readonly keyPrefix?: string;
  }
  & PartialBrokerOptions;

/** Tasks per publish script (a script holds Redis while it runs: about 2 µs per task). */
const PUBLISH_BATCH = 2000;
/**
 * A consumer whose connection is gone (a killed process) loses the chunks it has not touched for
 * this long (at most a third of the lease), instead of waiting for the whole lease.
 */
const DEAD_CONSUMER_IDLE_MS = 1000;
/** How long close() waits for pending replies (QUIT) before dropping the connection. */
const QUIT_WAIT_MS = 1000;
/** The form of a Redis stream entry id (a dead letter's id). */
const STREAM_ID = /^[0-9]{1,20}-[0-9]{1,20}$/;

const ACK_OUTCOMES: Record<string, AckOutcome> = { s: "stored", d: "duplicate", z: "zombie" };
const NACK_OUTCOMES: Record<string, NackOutcome> = {
  l: "released",
  r: "retrying",
  d: "dead_lettered",
  s: "split",
  c: "cancelled",
  z: "zombie",
};
const EXTEND_OUTCOMES: Record<string, ExtendOutcome> = {
  e: "extended",
  c: "cancelled",
  g: "gone",
  z: "zombie",
};

type ScriptCaller = (...args: (string | number)[]) => Promise<unknown>;

/** One outcome per letter of a script's reply. */
function outcomes<T>(reply: unknown, table: Record<string, T>): T[] {
  return [...String(reply)].map((letter) => table[letter]!);
}

/**
 * Opens a Redis broker and checks that Redis answers.
 *
 * @example
 * ```ts ignore
 * import { openRedisBroker } from "./redis.ts";
 * const broker = await openRedisBroker({ url: "redis://:secret@127.0.0.1:6379", leaseMs: 3000 });
 * console.log(await broker.stats("ttg"));
 * await broker.close();
 * ```
 */
export async function openRedisBroker(options: RedisBrokerOptions = {}): Promise<Broker> {
  const { url, username, password, tls, connectTimeoutMs, keyPrefix, ...partial } = options;
  const resolved = brokerOptions(partial);
  const prefix = keyPrefix ?? DEFAULT_KEY_PREFIX;
  if (prefix === "" || /\s/.test(prefix)) {
    throw new TypeError(`Invalid keyPrefix "${prefix}": expected a non-empty name without spaces`);
  }
  const target = redisTarget({ url, username, password, tls, connectTimeoutMs });
  const client = await connectRedis(target, connectionName(resolved.consumerId));
  for (const [name, source] of Object.entries(SCRIPTS)) client.defineCommand(name, source);
  return guardBroker(new RedisDriver(client, target, prefix, resolved));
}

/** The Redis steps behind the guard: one script per batch, and waiting for work. */
class RedisDriver implements BrokerDriver {
  readonly backend = "redis";
  readonly displayName = "Redis";
  readonly options: BrokerOptions;
  readonly capabilities: BrokerCapabilities = Object.freeze({
    strictPriority: true,
    multiProcess: true,
    leases: "extend" as const,
    discoverMs: 10,
  });
  readonly deadLetterIds = { form: STREAM_ID, example: "1732780800000-0" };
  readonly kv: DriverKv;
  readonly #redis: Redis;
  readonly #target: RedisTarget;
  readonly #prefix: string;
  /** Hash of the key-value store's controls space, which the scripts read. */
  readonly #controls: string;
  readonly #readers: BlockingReaders;
  readonly #access: RedisAccess;
  /** Aborted by close(): calls still waiting on Redis (it may be reconnecting) end at once. */
  readonly #closing = new AbortController();
  #closed: Promise<void> | undefined;

  constructor(redis: Redis, target: RedisTarget, prefix: string, options: BrokerOptions) {
    this.#redis = redis;
    this.#target = target;
    this.#prefix = prefix;
    this.#controls = kvKey(prefix, "controls");
    this.options = options;
    this.#readers = new BlockingReaders(redis, target, options.consumerId);
    this.#access = { redis, script: (name, args) => this.#script(name, args) };
    this.kv = redisKv((name, args) => this.#call(() => this.#script(name, args)), prefix);
  }

  createJob(job: JobRecord): Promise<boolean> {
    const key = `${this.#base(job.jobId)}:job`;
    return this.#call(async () => await this.#redis.set(key, JSON.stringify(job), "NX") === "OK");
  }

  getJob(jobId: string): Promise<JobRecord | null> {
    return this.#call(async () => {
      const text = await this.#redis.get(`${this.#base(jobId)}:job`);
      if (text === null) return null;
      try {
        return JSON.parse(text) as JobRecord;
      } catch {
        return null;
      }
    });
  }

  publish(jobId: string, tasks: readonly ChunkTask[]): Promise<void> {
    // Highest band first, so a consumer blocked on several streams is woken by the highest.
    const sorted = [...tasks].sort((a, b) => b.priority - a.priority);
    const base = this.#base(jobId);
    return this.#call(async () => {
      for (const { band, common, rows } of publishBatches(sorted, PUBLISH_BATCH)) {
        await this.#script("ttgPublish", [base, band, common, JSON.stringify(rows)]);
      }
    });
  }

  pull({ jobId, max, waitMs, signal }: PullRequest): Promise<Delivery[]> {
    const ctx = { access: this.#access, readers: this.#readers, options: this.options };
    const deadline = performance.now() + waitMs;
    const request = {
      base: this.#base(jobId),
      jobId,
      controls: this.#controls,
      max,
      deadline,
      signal,
    };
    return this.#call(() => pullDeliveries(ctx, request));
  }

  ack(jobId: string, requests: readonly AckRequest[]): Promise<AckOutcome[]> {
    const rows = requests.map(({ delivery, result }) =>
      resultRow(delivery.receipt, delivery.epoch, delivery.task.chunkId, result)
    );
    const args = [this.#base(jobId), JSON.stringify(rows)];
    return this.#call(async () => outcomes(await this.#script("ttgAck", args), ACK_OUTCOMES));
  }

  nack(jobId: string, requests: readonly PlannedNack[]): Promise<NackOutcome[]> {
    const { consumerId } = this.options;
    const args = [this.#base(jobId), jobId, consumerId, this.#controls, ...nackArgs(requests)];
    return this.#call(async () => outcomes(await this.#script("ttgNack", args), NACK_OUTCOMES));
  }

  extend(jobId: string, deliveries: readonly Delivery[]): Promise<ExtendOutcome[]> {
    const receipts = deliveries.map((d) => d.receipt);
    const args = [this.#base(jobId), this.options.consumerId, this.#controls, jobId, ...receipts];
    return this.#call(async () => outcomes(await this.#script("ttgExtend", args), EXTEND_OUTCOMES));
  }

  /** Takes over lapsed entries, plans each with `planExpiry`, applies the plans still held. */
  reclaim(jobId: string, max: number): Promise<number> {
    const { consumerId, leaseMs, retry } = this.options;
    const base = this.#base(jobId);
    return this.#call(async () => {
      const live = await liveConnectionNames(this.#redis);
      const reply = await this.#script("ttgTakeover", [
        base,
        consumerId,
        leaseMs,
        max,
        Math.min(DEAD_CONSUMER_IDLE_MS, Math.floor(leaseMs / 3)),
        live ? JSON.stringify(live) : "",
      ]);
      type Reply = [token: string, taken: TakenEntry[] | Record<string, never>];
      const [token, entries] = JSON.parse(String(reply)) as Reply;
      const taken = arrayOf(entries);
      if (taken.length === 0) return 0;
      const plans = expireArgs(taken, { jobId, leaseMs, retry, now: Date.now() });
      const args = [base, jobId, this.#controls, token, ...plans];
      return await this.#script("ttgExpire", args) as number;
    });
  }

  /** Each job's head in one script call, for a pull across jobs (share.ts). */
  heads(jobIds: readonly string[], max: number): Promise<JobHead[]> {
    const args: (string | number)[] = [this.options.priorityAgingMs, max];
    for (const jobId of jobIds) args.push(this.#base(jobId), this.#controls, jobId);
    return this.#call(async () => {
      const rows = JSON.parse(await this.#script("ttgHeads", args) as string) as number[][];
      return arrayOf(rows).map(([priority, ready, inFlight, cap], i): JobHead => ({
        jobId: jobIds[i]!,
        priority: priority! < 0 ? null : priority!,
        ready: ready!,
        inFlight: inFlight!,
        ...(cap! < 0 ? {} : { maxInFlight: cap! }),
      }));
    });
  }

  /** Cancels the ready entries of every task stream and the delayed retries, in one script. */
  cancelQueued(jobId: string): Promise<number> {
    const base = this.#base(jobId);
    return this.#call(async () => await this.#script("ttgCancelQueued", [base]) as number);
  }

  stats(jobId: string): Promise<BrokerStats> {
    const windowMs = Math.max(10_000, 3 * this.options.leaseMs);
    return this.#call(async () => {
      const live = await liveConnectionNames(this.#redis);
      const target = { base: this.#base(jobId), jobId, controls: this.#controls };
      return await readStats(this.#access, target, live, windowMs);
    });
  }

  results(jobId: string, cursor: string | null, limit: number): Promise<ResultPage> {
    return this.#call(() => readResults(this.#access, this.#base(jobId), cursor, limit));
  }

  listDeadLetters(jobId: string, limit: number | undefined): Promise<DeadLetter[]> {
    return this.#call(() => listDeadLetters(this.#access, this.#base(jobId), jobId, limit));
  }

  replayDeadLetters(jobId: string, ids: readonly string[] | undefined): Promise<number> {
    return this.#call(() => replayDeadLetters(this.#access, this.#base(jobId), ids));
  }

  purgeDeadLetters(jobId: string, ids: readonly string[] | undefined): Promise<number> {
    return this.#call(() => purgeDeadLetters(this.#access, this.#base(jobId), ids));
  }

  reset(jobId: string): Promise<void> {
    return this.#call(async () => {
      await this.#redis.unlink(...jobKeys(this.#base(jobId)));
    });
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing.abort(new Error("Connection is closed."));
      await Promise.all([this.#readers.close(), closeClient(this.#redis, QUIT_WAIT_MS)]);
    })();
    return this.#closed;
  }

  translate(error: unknown, action: string): unknown {
    return interpretError(error, action, this.#target.where);
  }

  #base(jobId: string): string {
    return jobKeyBase(this.#prefix, jobId);
  }

  /** Runs one step; ends it at once when the broker closes (ioredis may never settle it). */
  #call<T>(fn: () => Promise<T>): Promise<T> {
    return abortable(fn(), this.#closing.signal);
  }

  async #script(name: ScriptName, args: readonly (string | number)[]): Promise<unknown> {
    const call = (this.#redis as unknown as Record<ScriptName, ScriptCaller>)[name];
    return await call.apply(this.#redis, [...args]);
  }
}
