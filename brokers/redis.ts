/**
 * The Redis Streams broker (npm:ioredis), wire-compatible with the Python predecessor: for job
 * `ttg` the tasks are the stream `ttg:tasks` read by the consumer group `ttg-workers`, and every
 * counted result is also an entry of `ttg:results` in the predecessor's format, so old and new
 * workers can share one Redis during a migration. Key layout: redis_scripts.ts; entry formats:
 * redis_codec.ts.
 *
 * Every per-batch step is one Lua script (one round trip): claim, ack + store results, nack,
 * extend, reclaim, stats. A claim gets a fencing epoch (kept in the job's `leases` hash); ack, nack
 * and extend are rejected as `zombie` when their epoch is no longer current. Waiting for work is a
 * blocking XREADGROUP on a dedicated connection, cut short by the pull's AbortSignal
 * (CLIENT UNBLOCK).
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
  assertJobId,
  assertTask,
  type Broker,
  type BrokerCapabilities,
  type BrokerOptions,
  brokerOptions,
  type BrokerStats,
  type ChunkTask,
  type DeadLetter,
  type DeadLetterSelector,
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
import { BrokerError } from "./errors.ts";
import {
  decodeDeadLetter,
  decodeResult,
  decodeTask,
  DEFAULT_KEY_PREFIX,
  encodeTask,
  jobKeyBase,
  jobKeys,
} from "./redis_codec.ts";
import {
  connectionName,
  connectRedis,
  interpretError,
  isNoGroup,
  liveConnectionNames,
  type RedisConnectionOptions,
  type RedisTarget,
  redisTarget,
} from "./redis_connection.ts";
import { BlockingReaders, type ReadEntry } from "./redis_blocking.ts";
import { type ScriptName, SCRIPTS } from "./redis_scripts.ts";

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

/** Tasks per publish script (each script is atomic; this bounds how long it holds Redis). */
const PUBLISH_BATCH = 500;
/** Results-stream entries read per page by results(). */
const RESULTS_PAGE = 5000;
/**
 * A consumer whose connection is gone (a killed process) loses the chunks it has not touched for
 * this long (at most a third of the lease), instead of waiting for the whole lease.
 */
const DEAD_CONSUMER_IDLE_MS = 1000;
/** Legacy results absorbed per stats script. */
const ABSORB_LIMIT = 10_000;

const NACK_OUTCOMES: Record<string, NackOutcome> = {
  l: "released",
  r: "retrying",
  d: "dead_lettered",
  s: "split",
  z: "zombie",
};
const ACK_OUTCOMES: Record<string, AckOutcome> = { s: "stored", d: "duplicate", z: "zombie" };

type ClaimedEntry = [receipt: string, epoch: number, fields: string[]];
type Stream = [band: string, key: string];
type ScriptCaller = (...args: (string | number)[]) => Promise<unknown>;

/** A JSON array from a script (Lua's cjson encodes an empty table as `{}`). */
function arrayOf<T>(value: T[] | Record<string, never>): T[] {
  return Array.isArray(value) ? value : [];
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
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(redis: Redis, target: RedisTarget, prefix: string, options: BrokerOptions) {
    this.#redis = redis;
    this.#target = target;
    this.#prefix = prefix;
    this.options = Object.freeze({ ...options, retry: Object.freeze({ ...options.retry }) });
    this.#readers = new BlockingReaders(redis, target, options.consumerId);
    this.deadLetters = {
      list: (jobId, o) => this.#listDeadLetters(jobId, o?.limit),
      replay: (selector) => this.#replay(selector),
      purge: (selector) => this.#purge(selector),
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
      await this.#run("publish tasks", jobId, async (base) => {
        for (let i = 0; i < list.length; i += PUBLISH_BATCH) {
          const batch = list.slice(i, i + PUBLISH_BATCH).sort((a, b) => b.priority - a.priority);
          const entries = batch.map((task) => [String(task.priority), encodeTask(task)]);
          await this.#script("ttgPublish", [base, JSON.stringify(entries)]);
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
    return await this.#run("pull tasks", jobId, async (base) => {
      const consumer = this.options.consumerId;
      while (!signal?.aborted && !this.#closed) {
        const reply = JSON.parse(
          await this.#script("ttgClaim", [
            base,
            consumer,
            max,
            this.options.priorityAgingMs,
          ]) as string,
        ) as [number, Stream[], ClaimedEntry[]];
        const nextDueMs = reply[0];
        const streams = arrayOf(reply[1]);
        const claimed = arrayOf(reply[2]);
        if (claimed.length > 0) {
          const deliveries = await this.#accept(jobId, base, claimed);
          if (deliveries.length > 0) return deliveries;
          continue; // only malformed entries: they are dead-lettered, look again
        }
        const left = Math.ceil(deadline - performance.now());
        if (left <= 0 || signal?.aborted || this.#closed) break;
        const blockMs = nextDueMs >= 0 ? Math.max(1, Math.min(left, nextDueMs)) : left;
        let read: ReadEntry[];
        try {
          read = await this.#readers.read(streams, max, blockMs, signal);
        } catch (error) {
          if (this.#closed) break;
          if (isNoGroup(error)) continue; // the claim script recreates missing groups
          throw error;
        }
        if (read.length === 0) continue;
        const adopted = await this.#script("ttgAdopt", [
          base,
          consumer,
          max,
          ...read.map((r) => r.receipt),
        ]) as string;
        const deliveries = await this.#accept(jobId, base, arrayOf(JSON.parse(adopted)));
        if (deliveries.length > 0) return deliveries;
      }
      return [];
    }, true);
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
        const args: (string | number)[] = [base, list[0]!.delivery.task.jobId];
        for (const request of list) args.push(...this.#nackArgs(request));
        const letters = await this.#script("ttgNack", args) as string;
        return [...letters].map((c) => NACK_OUTCOMES[c]!);
      },
    );
  }

  #nackArgs(request: NackRequest): (string | number)[] {
    const { delivery, kind, reason, workerId, split } = request;
    const at = new Date().toISOString();
    const head = [delivery.receipt, delivery.epoch];
    if (kind === "released") {
      return [...head, "release", delivery.attempt - 1, JSON.stringify(delivery.history), ""];
    }
    const history = JSON.stringify([
      ...delivery.history,
      { attempt: delivery.attempt, kind, reason, workerId, at },
    ]);
    if (split && split.length > 0) {
      return [...head, "split", delivery.attempt, history, JSON.stringify(split.map(encodeTask))];
    }
    const retry = this.options.retry;
    if (kind === "unrecoverable" || delivery.attempt >= retry.maxAttempts) {
      return [...head, "dead", delivery.attempt, history, JSON.stringify({ kind, reason, at })];
    }
    return [...head, "retry", delivery.attempt, history, retryDelayMs(retry, delivery.attempt)];
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
    return await this.#run("read stats", jobId, async (base) => {
      const windowMs = Math.max(10_000, 3 * this.options.leaseMs);
      for (;;) {
        const v = await this.#script("ttgStats", [base, windowMs, ABSORB_LIMIT]) as number[];
        if (v[10] === 1) continue; // legacy results left to count: count them first
        return {
          ready: v[0]!,
          inFlight: v[1]!,
          delayed: v[2]!,
          deadLettered: v[3]!,
          completed: v[4]!,
          duplicates: v[5]!,
          zombies: v[6]!,
          retried: v[7]!,
          reclaimed: v[8]!,
          consumers: v[9]!,
        };
      }
    });
  }

  async results(jobId: string): Promise<StoredResult[]> {
    return await this.#run("read results", jobId, async (base) => {
      while (await this.#script("ttgAbsorb", [base, ABSORB_LIMIT]) === 1) {
        // counting legacy results, a page at a time
      }
      const out: StoredResult[] = [];
      for (let start = "";;) {
        const page = JSON.parse(
          await this.#script("ttgResults", [base, start, RESULTS_PAGE]) as string,
        ) as [string, string[][]];
        for (const fields of arrayOf(page[1])) out.push(decodeResult(fields));
        if (page[0] === "") return out;
        start = page[0];
      }
    });
  }

  async reset(jobId: string): Promise<void> {
    await this.#run("reset job", jobId, async (base) => {
      await this.#redis.unlink(...jobKeys(base));
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= (async () => {
      this.#readers.close();
      await this.#redis.quit().catch(() => this.#redis.disconnect());
    })();
    await this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #listDeadLetters(jobId: string, limit?: number): Promise<DeadLetter[]> {
    return await this.#run("list dead letters", jobId, async (base) => {
      const rows = limit === undefined
        ? await this.#redis.xrange(`${base}:dlq`, "-", "+")
        : await this.#redis.xrange(`${base}:dlq`, "-", "+", "COUNT", limit);
      return rows.map(([id, fields]) => decodeDeadLetter(jobId, id, fields));
    });
  }

  async #replay(selector: DeadLetterSelector): Promise<number> {
    return await this.#run("replay dead letters", selector.jobId, async (base) => {
      const ids = selector.ids ??
        (await this.#redis.xrange(`${base}:dlq`, "-", "+")).map(([id]) => id);
      let replayed = 0;
      for (let i = 0; i < ids.length; i += 500) {
        replayed += await this.#script("ttgReplay", [base, ...ids.slice(i, i + 500)]) as number;
      }
      return replayed;
    });
  }

  async #purge(selector: DeadLetterSelector): Promise<number> {
    return await this.#run("purge dead letters", selector.jobId, async (base) => {
      const key = `${base}:dlq`;
      if (selector.ids) {
        return selector.ids.length ? await this.#redis.xdel(key, ...selector.ids) : 0;
      }
      const reply = await this.#redis.multi().xlen(key).del(key).exec();
      return Number(reply?.[0]?.[1] ?? 0);
    });
  }

  /** Turns claimed entries into deliveries; dead-letters the malformed ones (kind "malformed"). */
  async #accept(jobId: string, base: string, claimed: ClaimedEntry[]): Promise<Delivery[]> {
    const deliveries: Delivery[] = [];
    const malformed: (string | number)[] = [];
    const at = new Date().toISOString();
    for (const [receipt, epoch, fields] of claimed) {
      const entryId = receipt.slice(receipt.indexOf(":") + 1);
      const decoded = decodeTask(jobId, entryId, fields);
      if (decoded.ok) {
        deliveries.push({
          task: decoded.task,
          attempt: decoded.attempts + 1,
          maxAttempts: this.options.retry.maxAttempts,
          epoch,
          receipt,
          history: decoded.history,
        });
        continue;
      }
      const { reason, raw } = decoded;
      const attempt = {
        attempt: 1,
        kind: "malformed",
        reason,
        workerId: this.options.consumerId,
        at,
      };
      const extra = { kind: "malformed", reason, at, raw };
      malformed.push(receipt, epoch, "dead", 1, JSON.stringify([attempt]), JSON.stringify(extra));
    }
    if (malformed.length > 0) await this.#script("ttgNack", [base, jobId, ...malformed]);
    return deliveries;
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
      return await fn(jobKeyBase(this.#prefix, jobId));
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
