/**
 * The brokers the load, fleet and scale sections run against, each opened the same way: a SQLite
 * file in a temporary folder, a private redis-server on a free port (its INFO memory is then the
 * bench's alone), and the local RabbitMQ (shared: the bench's own job ids, reset after each run).
 *
 * @module
 */
import type { Broker } from "../brokers/broker.ts";
import { openBroker } from "../brokers/open.ts";
import { BrokerError } from "../errors.ts";
import { type RedisServer, startRedisServer } from "./redis_server.ts";

/** The brokers these sections know, in the order they run. */
export const BACKENDS = ["sqlite", "redis", "rabbitmq"] as const;
/** One of {@linkcode BACKENDS}. */
export type Backend = typeof BACKENDS[number];

/** One broker to measure. */
export interface BenchTarget {
  readonly backend: Backend;
  /** Where it is, for the tables. */
  readonly where: string;
  /** Nothing but the bench uses it: a fleet may serve `--all-jobs` on it. */
  readonly private: boolean;
  /** The `ttg` flags that reach it. */
  readonly flags: readonly string[];
  /** The redis:// URL of a Redis target. */
  readonly url?: string;
  /** The database file of a SQLite target. */
  readonly sqlitePath?: string;
  /** Opens a client of the broker (the caller closes it). */
  open(consumerId?: string): Promise<Broker>;
  /** A job id of the bench's own, unique in this run. */
  jobId(what: string): string;
  /** A glob matching every job id of this target (for a fleet's `--jobs`). */
  readonly jobGlob: string;
  /** Stops what the target started and removes its files. */
  close(): Promise<void>;
}

/** The prefix of every job id the bench makes (`ttgbench-…`), for a fleet's `--jobs` glob. */
export const JOB_PREFIX = "ttgbench";

/** Opens a target of `backend`. */
export async function openTarget(backend: Backend): Promise<BenchTarget> {
  const tag = crypto.randomUUID().slice(0, 6);
  let n = 0;
  const jobId = (what: string) => `${JOB_PREFIX}-${tag}-${what}-${n++}`;
  const jobGlob = `${JOB_PREFIX}-${tag}-*`;
  switch (backend) {
    case "sqlite": {
      const dir = await Deno.makeTempDir({ prefix: "ttg-bench-" });
      const sqlitePath = `${dir}/bench.db`;
      return {
        backend,
        where: "a file in a temporary folder",
        private: true,
        flags: ["--backend", "sqlite", "--sqlite-path", sqlitePath],
        sqlitePath,
        open: (consumerId) =>
          openBroker({ backend, sqlitePath, consumerId: consumerId ?? `bench-${Deno.pid}` }),
        jobId,
        jobGlob,
        close: () => Deno.remove(dir, { recursive: true }),
      };
    }
    case "redis": {
      const server: RedisServer = await startRedisServer();
      const { url } = server;
      return {
        backend,
        where: "a private redis-server",
        private: true,
        flags: ["--backend", "redis", "--broker-url", url],
        url,
        open: (consumerId) =>
          openBroker({ backend, url, consumerId: consumerId ?? `bench-${Deno.pid}` }),
        jobId,
        jobGlob,
        close: () => server.stop(),
      };
    }
    case "rabbitmq": {
      const url = Deno.env.get("AMQP_URL") ?? "amqp://guest:guest@127.0.0.1:5672";
      return {
        backend,
        where: "the local RabbitMQ (own job ids)",
        private: false,
        flags: ["--backend", "rabbitmq", "--broker-url", url],
        url,
        open: (consumerId) =>
          openBroker({ backend, url, consumerId: consumerId ?? `bench-${Deno.pid}` }),
        jobId,
        jobGlob,
        close: () => Promise.resolve(),
      };
    }
  }
}

/** Runs `fn` with a target of `backend`, closing it after. */
export async function withTarget<T>(
  backend: Backend,
  fn: (target: BenchTarget) => Promise<T>,
): Promise<T> {
  const target = await openTarget(backend);
  try {
    return await fn(target);
  } finally {
    await target.close();
  }
}

/** Resets the bench's jobs on the target, whatever state they are in. */
export async function resetJobs(target: BenchTarget, jobIds: readonly string[]): Promise<void> {
  const broker = await target.open(`bench-reset-${Deno.pid}`);
  try {
    for (const jobId of jobIds) await broker.reset(jobId).catch(() => {});
  } finally {
    await broker.close();
  }
}

/**
 * Why a broker cannot serve a fleet's pull across jobs, or undefined when it can: a pull across
 * two jobs the bench never made, which claims nothing where it works and fails with a
 * `BrokerError` of code `NOT_IMPLEMENTED` where the broker pulls from one job at a time.
 */
export async function multiJobPullGap(target: BenchTarget): Promise<string | undefined> {
  const broker = await target.open(`bench-probe-${Deno.pid}`);
  try {
    await broker.pull({ jobIds: [target.jobId("probe"), target.jobId("probe")], waitMs: 0 });
    return undefined;
  } catch (error) {
    if (error instanceof BrokerError && error.code === "NOT_IMPLEMENTED") {
      return `${target.backend} does not pull across jobs yet (NOT_IMPLEMENTED: ${error.message})`;
    }
    throw error;
  } finally {
    await broker.close();
  }
}

/** The first line of an error, for a skipped row. */
export function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (message.split("\n")[0] ?? message).slice(0, 200);
}
