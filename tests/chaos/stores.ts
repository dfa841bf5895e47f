/**
 * Where a chaos scenario runs: a store on each broker (a temp SQLite file, the shared Redis or
 * RabbitMQ, or a private server the scenario may crash), with what the scenario needs of it:
 * `ttg` flags, a broker handle that reads the truth, a raw write into the task queue, and the
 * broker's address so workers can be sent through a fault proxy.
 *
 * @module
 */
import type { Broker } from "../../brokers/broker.ts";
import { openBroker } from "../../brokers/open.ts";
import { AMQP_URL, REDIS_URL, type TargetRun, targets } from "../targets.ts";
import { PrivateRabbit, PrivateRedis, privateServerProblem } from "../servers.ts";

/** The backends of the chaos suite. */
export type Backend = "sqlite" | "redis" | "rabbitmq";

/** A store for one scenario. */
export interface ChaosStore {
  readonly backend: Backend;
  /** `ttg` flags that pick the broker (no job id). */
  readonly args: readonly string[];
  /** The broker's host and port (undefined for SQLite). */
  readonly endpoint?: { readonly hostname: string; readonly port: number };
  /** `ttg` flags that reach the same broker through 127.0.0.1:`port` (a fault proxy). */
  argsVia(port: number): readonly string[];
  open(consumerId: string): Promise<Broker>;
  injectRaw(jobId: string, raw: string): Promise<void>;
  /** Kills the broker server hard and starts it again (private stores only). */
  crash?(downMs: number): Promise<void>;
  /** RabbitMQ: stop_app then start_app (private stores only). */
  bounce?(downMs: number): Promise<void>;
  cleanup(): Promise<void>;
}

function withUrl(backend: Backend, url: string): Pick<ChaosStore, "args" | "endpoint" | "argsVia"> {
  const parsed = new URL(url);
  const viaUrl = (port: number) => {
    const copy = new URL(url);
    copy.hostname = "127.0.0.1";
    copy.port = String(port);
    return copy.href.replace(/\/$/, "");
  };
  return {
    args: ["--backend", backend, "--broker-url", url],
    endpoint: { hostname: parsed.hostname, port: Number(parsed.port) },
    argsVia: (port) => ["--backend", backend, "--broker-url", viaUrl(port)],
  };
}

/** A store on the shared broker (a temp file for SQLite). */
export async function sharedStore(backend: Backend): Promise<ChaosStore> {
  const target = (await targets()).find((t) => t.backend === backend)!;
  if (target.problem) throw new Error(`${target.problem}, and this scenario needs it`);
  const run: TargetRun = await target.prepare();
  const base = backend === "sqlite"
    ? { args: run.args, argsVia: () => run.args }
    : withUrl(backend, backend === "redis" ? REDIS_URL : AMQP_URL);
  return { backend, ...base, open: run.open, injectRaw: run.injectRaw, cleanup: run.cleanup };
}

/** A store on a private server of its own, which the scenario may crash. */
export async function privateStore(backend: "redis" | "rabbitmq"): Promise<ChaosStore> {
  const problem = privateServerProblem(backend);
  if (problem) throw new Error(`${problem}: the scenario needs a private ${backend} server`);
  const server = backend === "redis"
    ? await PrivateRedis.start({ aof: true })
    : await PrivateRabbit.start();
  const url = server.url;
  const store: ChaosStore = {
    backend,
    ...withUrl(backend, url),
    open: (consumerId) => openBroker({ backend, url, consumerId }),
    injectRaw: () => Promise.reject(new Error("not used on private stores")),
    crash: (downMs) => server.crash(downMs),
    cleanup: () => server.stop(),
  };
  if (server instanceof PrivateRabbit) {
    return { ...store, bounce: (downMs) => server.bounceApp(downMs) };
  }
  return store;
}
