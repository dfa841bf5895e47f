/**
 * The brokers a process-level test runs against (SQLite in a temp file, the local Redis, the
 * local RabbitMQ), and the one rule for a missing one: locally a test is skipped with its reason
 * printed; where `TTG_TEST_REQUIRE` names it (CI sets `redis,rabbitmq`) it fails instead, so a
 * CI run with no broker coverage cannot pass.
 *
 * @module
 */
import amqp from "amqplib";
import { Redis } from "ioredis";
import type { Broker } from "../brokers/broker.ts";
import { openBroker } from "../brokers/open.ts";
import { insertRawTask } from "../brokers/sqlite/sqlite.ts";
import { redactUrl } from "../errors.ts";

/** Local Redis of the tests. */
export const REDIS_URL = Deno.env.get("REDIS_URL") ??
  `redis://${Deno.env.get("REDIS_HOST") ?? "127.0.0.1"}:${Deno.env.get("REDIS_PORT") ?? "6379"}`;
/** Local RabbitMQ of the tests. */
export const AMQP_URL = Deno.env.get("AMQP_URL") ?? "amqp://guest:guest@127.0.0.1:5672";

/** Tools and services this run must have (`TTG_TEST_REQUIRE=redis,rabbitmq,…`). */
export function required(name: string): boolean {
  const list = (Deno.env.get("TTG_TEST_REQUIRE") ?? "").split(",").map((s) => s.trim());
  return list.includes(name) || list.includes("all");
}

/**
 * The reason to skip tests that need `name`, or undefined when they can run. When the run
 * requires `name`, a missing one is not a skip: the returned reason is undefined and
 * {@linkcode missing} tells the test to fail with it.
 */
export function skipReason(name: string, problem: string | undefined): string | undefined {
  if (problem === undefined || required(name)) return undefined;
  return problem;
}

const problems = new Map<string, Promise<string | undefined>>();

/** Why Redis cannot be used (undefined when it answers). */
export function redisProblem(url = REDIS_URL): Promise<string | undefined> {
  const key = `redis ${url}`;
  let p = problems.get(key);
  if (!p) {
    p = (async () => {
      const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null });
      client.on("error", () => {});
      try {
        await client.connect();
        await client.ping();
        return undefined;
      } catch (error) {
        return `Redis is not reachable at ${url}: ${(error as Error).message}`;
      } finally {
        client.disconnect();
      }
    })();
    problems.set(key, p);
  }
  return p;
}

/** Why RabbitMQ cannot be used (undefined when it answers). */
export function rabbitProblem(url = AMQP_URL): Promise<string | undefined> {
  const key = `rabbitmq ${url}`;
  let p = problems.get(key);
  if (!p) {
    p = (async () => {
      try {
        const connection = await amqp.connect(url);
        await connection.close();
        return undefined;
      } catch (error) {
        return `RabbitMQ is not reachable at ${redactUrl(url)}: ${(error as Error).message}`;
      }
    })();
    problems.set(key, p);
  }
  return p;
}

/** A broker the real `ttg` program is pointed at. */
export interface Target {
  readonly backend: "sqlite" | "redis" | "rabbitmq";
  /** Why tests on it are skipped (it is missing, and this run does not require it). */
  readonly skip: string | undefined;
  /** Why it cannot be used, even when required (the test then fails with this). */
  readonly problem: string | undefined;
  /** Makes the place of one test's jobs (a fresh database file for SQLite). */
  prepare(): Promise<TargetRun>;
}

/** One test's use of a target. */
export interface TargetRun {
  /** `ttg` flags that pick the broker (no job id). */
  readonly args: readonly string[];
  /** A broker handle on the same store, to watch and check. */
  open(consumerId: string): Promise<Broker>;
  /** Writes a raw message to the job's task queue as a foreign producer would. */
  injectRaw(jobId: string, raw: string): Promise<void>;
  /** Removes what the test created (its jobs are reset by the test). */
  cleanup(): Promise<void>;
}

function sqliteTarget(): Target {
  return {
    backend: "sqlite",
    skip: undefined,
    problem: undefined,
    async prepare() {
      const dir = await Deno.makeTempDir({ prefix: "ttg-target-" });
      const path = `${dir}/ttg.db`;
      return {
        args: ["--backend", "sqlite", "--sqlite-path", path],
        open: (consumerId) => openBroker({ backend: "sqlite", sqlitePath: path, consumerId }),
        injectRaw: (jobId, raw) => insertRawTask(path, jobId, raw),
        cleanup: () => Deno.remove(dir, { recursive: true }),
      };
    },
  };
}

function redisTarget(problem: string | undefined): Target {
  return {
    backend: "redis",
    skip: skipReason("redis", problem),
    problem,
    prepare() {
      return Promise.resolve({
        args: ["--backend", "redis", "--broker-url", REDIS_URL],
        open: (consumerId) => openBroker({ backend: "redis", url: REDIS_URL, consumerId }),
        async injectRaw(jobId, raw) {
          const client = new Redis(REDIS_URL, { lazyConnect: true });
          client.on("error", () => {});
          await client.connect();
          try {
            await client.xadd(`ttg:${jobId}:tasks`, "*", "payload", raw);
          } finally {
            client.disconnect();
          }
        },
        cleanup: () => Promise.resolve(),
      });
    },
  };
}

function rabbitTarget(problem: string | undefined): Target {
  return {
    backend: "rabbitmq",
    skip: skipReason("rabbitmq", problem),
    problem,
    prepare() {
      return Promise.resolve({
        args: ["--backend", "rabbitmq", "--broker-url", AMQP_URL],
        open: (consumerId) => openBroker({ backend: "rabbitmq", url: AMQP_URL, consumerId }),
        async injectRaw(jobId, raw) {
          // The job's queue exists once the job was submitted: publish straight into it.
          const connection = await amqp.connect(AMQP_URL);
          try {
            const channel = await connection.createConfirmChannel();
            channel.sendToQueue(`ttg.${jobId}.tasks`, Buffer.from(raw), { persistent: true });
            await channel.waitForConfirms();
            await channel.close();
          } finally {
            await connection.close();
          }
        },
        cleanup: () => Promise.resolve(),
      });
    },
  };
}

/** Every broker, for a table of process-level scenarios. */
export async function targets(): Promise<Target[]> {
  const [redis, rabbit] = await Promise.all([redisProblem(), rabbitProblem()]);
  return [sqliteTarget(), redisTarget(redis), rabbitTarget(rabbit)];
}

/**
 * Registers `fn` as a test on `target`: skipped with its reason when the target is missing and
 * not required; failing with the reason when it is required and missing.
 */
export function targetTest(
  target: Target,
  name: string,
  fn: (run: TargetRun) => Promise<void>,
): void {
  Deno.test({
    name: `${target.backend}: ${name}${target.skip ? ` (skipped: ${target.skip})` : ""}`,
    ignore: target.skip !== undefined,
    sanitizeOps: true,
    sanitizeResources: true,
    async fn() {
      if (target.problem) {
        throw new Error(`${target.problem}, and this run requires ${target.backend}`);
      }
      const run = await target.prepare();
      try {
        await fn(run);
      } finally {
        await run.cleanup();
      }
    },
  });
}
