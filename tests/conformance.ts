/**
 * The broker conformance suite: one set of cases, run against every broker module through a tiny
 * factory. A broker's test file is a few lines:
 *
 * ```ts ignore
 * runBrokerConformance({ name: "sqlite", setup: async () => ({ open, injectRaw, traces, cleanup }) });
 * ```
 *
 * A case a broker cannot pass states its reason in `skip`, and the reason is printed. The cases
 * live in tests/conformance/, one module per concern.
 *
 * @module
 */
import type { Broker, PartialBrokerOptions } from "../brokers/broker.ts";
import { basicCases } from "./conformance/basic.ts";
import { failureCases } from "./conformance/failures.ts";
import { leaseCases } from "./conformance/leases.ts";
import { orderCases } from "./conformance/order.ts";
import { accountingCases } from "./conformance/accounting.ts";
import { controlCases } from "./conformance/control.ts";
import { fleetCases } from "./conformance/fleet.ts";
import {
  assertEachParameterOnce,
  type CaseContext,
  type CaseRegistry,
} from "./conformance/support.ts";

export { makeTasks } from "./conformance/support.ts";

/** The predecessor's message format on a broker, for the mixed-fleet case. */
export interface LegacyHooks {
  /** The job whose broker names are the predecessor's. */
  readonly jobId: string;
  /** Enqueues `chunks` chunks of `size` parameters exactly as the predecessor's producer did. */
  enqueue(chunks: number, size: number): Promise<void>;
  /**
   * Runs one of the predecessor's workers until it has completed `count` chunks, writing their
   * results in its own format; resolves with how many it completed.
   */
  work(count: number): Promise<number>;
}

/** A fresh, isolated broker store for one test case. */
export interface ConformanceSetup {
  /** Opens a broker on the case's store; each call is a new consumer (connection, handle). */
  open(options?: PartialBrokerOptions): Promise<Broker>;
  /**
   * Writes `raw` to the job's task queue exactly as a foreign producer would, bypassing
   * validation, so the malformed-message cases can run.
   */
  injectRaw(jobId: string, raw: string): Promise<void>;
  /**
   * What is left of the job in the store, read around the broker (keys, rows, queues that name
   * it); empty after `reset`.
   */
  traces(jobId: string): Promise<string[]>;
  /** Kills the broker server itself and starts it again on the same data (private servers only). */
  restart?(): Promise<void>;
  /** The predecessor's format, where the broker has one. */
  readonly legacy?: LegacyHooks;
  /** Removes everything the case created. */
  cleanup(): Promise<void>;
}

/** Options of {@linkcode runBrokerConformance}. */
export interface ConformanceOptions {
  /** Broker name, used in test names. */
  readonly name: string;
  /** Makes a fresh store for one case. */
  setup(): Promise<ConformanceSetup>;
  /**
   * Makes a store on a private broker server that {@linkcode ConformanceSetup.restart} can kill
   * (the restart case); the restart case is skipped, with its reason, without it.
   */
  privateSetup?(): Promise<ConformanceSetup>;
  /** Cases to skip, each with its reason. */
  readonly skip?: Partial<Record<string, string>>;
  /** Ignore the whole suite (the server is not reachable, and CI did not require it), with this reason. */
  readonly ignoreReason?: string;
}

let jobCounter = 0;

function newJobId(): string {
  jobCounter += 1;
  return `conf-${Date.now().toString(36)}-${jobCounter}-${crypto.randomUUID().slice(0, 6)}`;
}

/**
 * Registers the conformance cases for one broker with `Deno.test` (leak sanitizers on).
 *
 * @example
 * ```ts ignore
 * import { runBrokerConformance } from "./conformance.ts";
 * import { openSqliteBroker } from "../brokers/sqlite/sqlite.ts";
 * runBrokerConformance({ name: "sqlite", setup: async () => ({ ... }) });
 * ```
 */
export function runBrokerConformance(options: ConformanceOptions): void {
  const registry: CaseRegistry = (name, title, fn, needs = {}) => {
    const missing = needs.restart && !options.privateSetup
      ? "it needs a private broker server to kill and restart"
      : undefined;
    const skipReason = options.ignoreReason ?? options.skip?.[name] ?? missing;
    Deno.test({
      name: `${options.name}: ${title}${skipReason ? ` (skipped: ${skipReason})` : ""}`,
      ignore: skipReason !== undefined,
      sanitizeOps: true,
      sanitizeResources: true,
      async fn() {
        const setup = needs.restart ? await options.privateSetup!() : await options.setup();
        const brokers: Broker[] = [];
        const jobId = newJobId();
        const context: CaseContext = {
          jobId,
          setup: {
            ...setup,
            async open(o) {
              const broker = await setup.open(o);
              brokers.push(broker);
              return broker;
            },
          },
        };
        try {
          await fn(context);
          // Whatever the case did, it ends with each parameter at most once counted or lettered.
          const checker = await context.setup.open({ consumerId: "conformance-checker" });
          for (const id of [jobId, `${jobId}-b`, setup.legacy?.jobId]) {
            if (id) await assertEachParameterOnce(checker, id);
          }
        } finally {
          for (const broker of brokers) await broker.close().catch(() => undefined);
          const cleaner = await setup.open().catch(() => undefined);
          for (const id of [jobId, `${jobId}-b`, setup.legacy?.jobId]) {
            if (id) await cleaner?.reset(id).catch(() => undefined);
          }
          await cleaner?.close().catch(() => undefined);
          await setup.cleanup();
        }
      },
    });
  };
  const groups = [
    basicCases,
    failureCases,
    leaseCases,
    orderCases,
    accountingCases,
    controlCases,
    fleetCases,
  ];
  for (const register of groups) {
    register(registry);
  }
}
