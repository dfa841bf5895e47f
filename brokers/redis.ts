/**
 * The Redis Streams broker (npm:ioredis), wire-compatible with the Python predecessor: for job
 * `ttg` the tasks are the stream `ttg:tasks` read by the consumer group `ttg-workers`, and every
 * counted result is also an entry of `ttg:results` in the predecessor's format, so old and new
 * workers can share one Redis during a migration. Key layout: redis_scripts.ts; entry formats:
 * redis_codec.ts.
 *
 * Every per-batch step is one Lua script (one round trip): claim (due retries, priority bands with
 * aging, XREADGROUP … COUNT, entries returned as one JSON string), ack + store results, nack,
 * extend, reclaim, stats. A claim's fencing epoch is its entry's carried epoch + 1; ack, nack and
 * extend are rejected as `zombie` once the entry is no longer pending for the consumer (a reclaim
 * acknowledges the entries it takes over). Reclaim takes entries idle past the lease
 * (XAUTOCLAIM), and sooner (a third of the lease, at most 1 s) those of a consumer whose
 * connection is gone from CLIENT LIST, so a killed worker's chunks come back in about a second;
 * it also trims acknowledged entries off the task streams (XTRIM MINID below the oldest pending
 * entry), so a stream holds only the work not yet done. It needs a standalone Redis (scripts touch
 * keys they derive, which Redis Cluster does not allow). Waiting for work is a blocking XREADGROUP
 * on a dedicated connection, cut short by the pull's AbortSignal (CLIENT UNBLOCK). Lost connections are retried with backoff (50 ms doubling to
 * 2 s); commands wait for the reconnect, and a resent ack is recognised and answered `stored`.
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
import {
  type AckOutcome,
  type AckRequest,
  assertDeadLetterIds,
  assertJobId,
  assertTask,
  type Broker,
  type BrokerCapabilities,
  type BrokerOptions,
  brokerOptions,
  type BrokerStats,
  type ChunkTask,
  type DeadLetterSelector,
  type DeadLetterStore,
  type Delivery,
  type ExtendOutcome,
  type JobRecord,
  type NackOutcome,
  type NackRequest,
  type PullOptions,
  type ReclaimOptions,
  type StoredResult,
} from "./contract.ts";
import { BrokerError } from "./errors.ts";
import {
  DEFAULT_KEY_PREFIX,
  encodeNack,
  jobKeyBase,
  jobKeys,
  publishBatches,
} from "./redis_codec.ts";
import {
  abortable,
  connectionName,
  connectRedis,
  interpretError,
  liveConnectionNames,
  type RedisConnectionOptions,
  type RedisTarget,
  redisTarget,
} from "./redis_connection.ts";
import { BlockingReaders } from "./redis_blocking.ts";
import {
  listDeadLetters,
  purgeDeadLetters,
  readResults,
  readStats,
  type RedisAccess,
  replayDeadLetters,
} from "./redis_reads.ts";
import { type PullContext, pullDeliveries } from "./redis_pull.ts";
import { type ScriptName, SCRIPTS } from "./redis_scripts_upkeep.ts";

/** The form of a Redis stream entry id (a dead letter's id). */
const STREAM_ID = /^[0-9]{1,20}-[0-9]{1,20}$/;

export type { RedisConnectionOptions } from "./redis_connection.ts";

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
  & Partial<BrokerOptions>;

/** Tasks per publish script (a script holds Redis while it runs: about 2 µs per task). */
const PUBLISH_BATCH = 2000;
/**
 * A consumer whose connection is gone (a killed process) loses the chunks it has not touched for
 * this long (at most a third of the lease), instead of waiting for the whole lease.
 */
const DEAD_CONSUMER_IDLE_MS = 1000;
/** How long close() waits for pending replies before dropping the connection. */
const QUIT_WAIT_MS = 1000;

const NACK_OUTCOMES: Record<string, NackOutcome> = {
  l: "released",
  r: "retrying",
  d: "dead_lettered",
  s: "split",
  z: "zombie",
};
const ACK_OUTCOMES: Record<string, AckOutcome> = { s: "stored", d: "duplicate", z: "zombie" };

type ScriptCaller = (...args: (string | number)[]) => Promise<unknown>;

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
  return new RedisBroker(client, target, prefix, resolved);
}

class RedisBroker implements Broker {
  readonly backend = "redis";
  readonly options: BrokerOptions;
  readonly capabilities: BrokerCapabilities = Object.freeze({
    strictPriority: true,
    multiProcess: true,
    connectionBoundLeases: false,
  });
  readonly deadLetters: DeadLetterStore;
  #redis: Redis;
  #target: RedisTarget;
  #prefix: string;
  #readers: BlockingReaders;
  #access: RedisAccess;
  #puller: PullContext;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Aborted by close(): calls still waiting on Redis end at once. */
  #closeSignal = new AbortController();

  constructor(redis: Redis, target: RedisTarget, prefix: string, options: BrokerOptions) {
    this.#redis = redis;
    this.#target = target;
    this.#prefix = prefix;
    this.options = Object.freeze({ ...options, retry: Object.freeze({ ...options.retry }) });
    this.#readers = new BlockingReaders(redis, target, options.consumerId);
    this.#access = { redis, script: (name, args) => this.#script(name, args) };
    const access = this.#access;
    this.#puller = {
      access,
      readers: this.#readers,
      options: this.options,
      isClosed: () => this.#closed,
    };
    this.deadLetters = {
      list: (jobId, o) =>
        this.#run(
          "list dead letters",
          jobId,
          (base) => listDeadLetters(access, base, jobId, o?.limit),
        ),
      replay: async (selector: DeadLetterSelector) => {
        assertDeadLetterIds(selector.ids, STREAM_ID, "1732780800000-0");
        return await this.#run(
          "replay dead letters",
          selector.jobId,
          (base) => replayDeadLetters(access, base, selector.ids),
        );
      },
      purge: async (selector: DeadLetterSelector) => {
        assertDeadLetterIds(selector.ids, STREAM_ID, "1732780800000-0");
        return await this.#run(
          "purge dead letters",
          selector.jobId,
          (base) => purgeDeadLetters(access, base, selector.ids),
        );
      },
    };
  }

  async createJob(job: JobRecord): Promise<boolean> {
    return await this.#run("record job", job.jobId, async (base) => {
      const set = await this.#redis.set(`${base}:job`, JSON.stringify(job), "NX");
      return set === "OK";
    });
  }

  async getJob(jobId: string): Promise<JobRecord | null> {
    return await this.#run("read job", jobId, async (base) => {
      const text = await this.#redis.get(`${base}:job`);
      if (text === null) return null;
      try {
        return JSON.parse(text) as JobRecord;
      } catch {
        return null;
      }
    });
  }

  async publish(tasks: readonly ChunkTask[]): Promise<void> {
    this.#checkOpen("publish");
    for (const task of tasks) assertTask(task);
    const byJob = new Map<string, ChunkTask[]>();
    for (const task of tasks) {
      const list = byJob.get(task.jobId);
      if (list) list.push(task);
      else byJob.set(task.jobId, [task]);
    }
    for (const [jobId, list] of byJob) {
      // Highest band first, so a consumer blocked on several streams is woken by the highest.
      const sorted = [...list].sort((a, b) => b.priority - a.priority);
      await this.#run("publish tasks", jobId, async (base) => {
        for (const { band, common, rows } of publishBatches(sorted, PUBLISH_BATCH)) {
          await this.#script("ttgPublish", [base, band, common, JSON.stringify(rows)]);
        }
      });
    }
  }

  async pull(options: PullOptions): Promise<Delivery[]> {
    const { jobId, signal } = options;
    const max = options.max ?? 1;
    const waitMs = options.waitMs ?? 1000;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RangeError(`Invalid max "${max}": expected a whole number of at least 1`);
    }
    if (!(waitMs >= 0)) throw new RangeError(`Invalid waitMs "${waitMs}": expected 0 or more`);
    const deadline = performance.now() + waitMs;
    return await this.#run(
      "pull tasks",
      jobId,
      (base) => pullDeliveries(this.#puller, { base, jobId, max, deadline, signal }),
      true,
    );
  }

  async ack(requests: readonly AckRequest[]): Promise<AckOutcome[]> {
    return await this.#perJob(
      requests,
      (r) => r.delivery.task.jobId,
      "ack",
      async (base, group) => {
        const rows = group.map(({ delivery, result }) => [
          delivery.receipt,
          String(delivery.epoch),
          delivery.task.chunkId,
          result.workerId,
          String(result.durationMs / 1000),
          result.completedAt,
          JSON.stringify(result.value ?? null),
          String(result.params),
        ]);
        const letters = await this.#script("ttgAck", [base, JSON.stringify(rows)]) as string;
        return [...letters].map((c) => ACK_OUTCOMES[c]!);
      },
    );
  }

  async nack(requests: readonly NackRequest[]): Promise<NackOutcome[]> {
    for (const request of requests) for (const part of request.split ?? []) assertTask(part);
    return await this.#perJob(
      requests,
      (r) => r.delivery.task.jobId,
      "nack",
      async (base, list) => {
        const jobId = list[0]!.delivery.task.jobId;
        const args: (string | number)[] = [base, jobId, this.options.consumerId];
        for (const request of list) args.push(...encodeNack(request, this.options.retry));
        const letters = await this.#script("ttgNack", args) as string;
        return [...letters].map((c) => NACK_OUTCOMES[c]!);
      },
    );
  }

  async extend(deliveries: readonly Delivery[]): Promise<ExtendOutcome[]> {
    return await this.#perJob(deliveries, (d) => d.task.jobId, "extend", async (base, list) => {
      const args: (string | number)[] = [base, this.options.consumerId];
      for (const d of list) args.push(d.receipt, d.epoch);
      const letters = await this.#script("ttgExtend", args) as string;
      return [...letters].map((c): ExtendOutcome => c === "e" ? "extended" : "zombie");
    });
  }

  async reclaim(options: ReclaimOptions): Promise<number> {
    const max = options.max ?? 1000;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RangeError(`Invalid max "${max}": expected a whole number of at least 1`);
    }
    return await this.#run("reclaim tasks", options.jobId, async (base) => {
      const live = await liveConnectionNames(this.#redis);
      return await this.#script("ttgReclaim", [
        base,
        options.jobId,
        this.options.consumerId,
        this.options.leaseMs,
        this.options.retry.maxAttempts,
        max,
        new Date().toISOString(),
        Math.min(DEAD_CONSUMER_IDLE_MS, Math.floor(this.options.leaseMs / 3)),
        live ? JSON.stringify(live) : "",
      ]) as number;
    });
  }

  async stats(jobId: string): Promise<BrokerStats> {
    const windowMs = Math.max(10_000, 3 * this.options.leaseMs);
    return await this.#run("read stats", jobId, (base) => readStats(this.#access, base, windowMs));
  }

  async results(jobId: string): Promise<StoredResult[]> {
    return await this.#run("read results", jobId, (base) => readResults(this.#access, base));
  }

  async reset(jobId: string): Promise<void> {
    await this.#run("reset job", jobId, async (base) => {
      await this.#redis.unlink(...jobKeys(base));
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#closeSignal.abort(this.#closedError("finish a call"));
    this.#closing ??= (async () => {
      this.#readers.close();
      // QUIT waits for pending replies; a Redis that stopped answering gets a second, then none.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waited = new Promise<void>((resolve) => timer = setTimeout(resolve, QUIT_WAIT_MS));
      const quit = this.#redis.status === "ready" ? this.#redis.quit() : Promise.resolve("");
      await Promise.race([quit.catch(() => {}), waited]);
      clearTimeout(timer);
      this.#redis.disconnect();
    })();
    await this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Runs one script per job over requests that may span jobs; outcomes keep request order. */
  async #perJob<T, O>(
    requests: readonly T[],
    jobOf: (request: T) => string,
    action: string,
    call: (base: string, list: T[]) => Promise<O[]>,
  ): Promise<O[]> {
    this.#checkOpen(action);
    const groups = new Map<string, number[]>();
    requests.forEach((r, i) => {
      const list = groups.get(jobOf(r));
      if (list) list.push(i);
      else groups.set(jobOf(r), [i]);
    });
    const out = new Array<O>(requests.length);
    for (const [jobId, indexes] of groups) {
      const outcomes = await this.#run(
        action,
        jobId,
        (base) => call(base, indexes.map((i) => requests[i]!)),
      );
      indexes.forEach((index, k) => out[index] = outcomes[k]!);
    }
    return out;
  }

  async #script(name: ScriptName, args: (string | number)[]): Promise<unknown> {
    const call = (this.#redis as unknown as Record<ScriptName, ScriptCaller>)[name];
    return await call.apply(this.#redis, args);
  }

  /** Checks the broker and job id, runs `fn` on the job's key base, translates errors. */
  async #run<T>(
    action: string,
    jobId: string,
    fn: (base: string) => Promise<T>,
    quietOnClose = false,
  ): Promise<T> {
    this.#checkOpen(action);
    assertJobId(jobId);
    try {
      return await abortable(fn(jobKeyBase(this.#prefix, jobId)), this.#closeSignal.signal);
    } catch (error) {
      if (this.#closed && quietOnClose) return [] as T;
      if (this.#closed) throw this.#closedError(action, error);
      throw interpretError(error, `${action} of job "${jobId}"`, this.#target.where);
    }
  }

  #checkOpen(action: string): void {
    if (this.#closed) throw this.#closedError(action);
  }

  #closedError(action: string, cause?: unknown): BrokerError {
    return new BrokerError("CLOSED", `Cannot ${action}: the Redis broker is closed`, { cause });
  }
}
