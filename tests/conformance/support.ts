/**
 * What every conformance case uses: task factories, bounded waits, and the accounting check.
 *
 * @module
 */
import assert from "node:assert/strict";
import type {
  Broker,
  BrokerStats,
  ChunkResult,
  ChunkTask,
  Delivery,
} from "../../brokers/broker.ts";
import { allResults } from "../../brokers/results.ts";
import { formatChunkId } from "../../brokers/task.ts";
import type { ConformanceSetup } from "../conformance.ts";

/** What a case gets: its setup (every broker it opens is closed after it) and a fresh job id. */
export interface CaseContext {
  readonly setup: ConformanceSetup;
  readonly jobId: string;
}

/** Registers one case; `needs.restart` asks for a private server the case may kill. */
export type CaseRegistry = (
  name: string,
  title: string,
  fn: (context: CaseContext) => Promise<void>,
  needs?: { readonly restart?: boolean },
) => void;

/** Makes `count` chunks of `size` parameters for a job. */
export function makeTasks(
  jobId: string,
  count: number,
  overrides: Partial<ChunkTask> = {},
  size = 10,
): ChunkTask[] {
  const createdAt = new Date().toISOString();
  return Array.from({ length: count }, (_, i) => ({
    jobId,
    chunkId: formatChunkId(i),
    handler: "ttg.sweep",
    start: i * size,
    end: (i + 1) * size,
    totalParams: count * size,
    totalChunks: count,
    priority: 0,
    createdAt,
    args: { work_ms: 0 },
    divisible: true,
    ...overrides,
  }));
}

/** A result for a delivery: `{ sum: start, count: params }`. */
export function resultFor(delivery: Delivery, workerId = "w-test"): ChunkResult {
  const params = delivery.task.end - delivery.task.start;
  return {
    value: { sum: delivery.task.start, count: params },
    params,
    workerId,
    durationMs: 1,
    completedAt: new Date().toISOString(),
  };
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Pulls until `count` deliveries arrived; fails when `timeoutMs` passes first. With `reclaim`,
 * takes over lapsed leases between pulls where the broker's leases need it.
 */
export async function pullAll(
  broker: Broker,
  jobId: string,
  count: number,
  options: { readonly timeoutMs?: number; readonly reclaim?: boolean; readonly max?: number } = {},
): Promise<Delivery[]> {
  const { timeoutMs = 10_000, reclaim = false, max } = options;
  const out: Delivery[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count) {
    if (Date.now() > deadline) {
      assert.fail(`Timed out after ${timeoutMs} ms: pulled ${out.length} of ${count} chunks`);
    }
    if (reclaim && broker.capabilities.leases === "extend") await broker.reclaim({ jobId });
    const want = Math.min(max ?? Infinity, count - out.length);
    out.push(...await broker.pull({ jobId, max: want, waitMs: 200 }));
  }
  return out;
}

/** Retries `check` until it passes; rethrows its last failure once `timeoutMs` passed. */
export async function eventually(check: () => Promise<void>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}

/**
 * The accounting identity every broker keeps at every instant: each chunk of the job is in
 * exactly one of ready, in flight, delayed, completed, dead-lettered or cancelled (unreadable
 * messages are dead letters that are not chunks).
 */
export function assertAccounted(stats: BrokerStats, planned: number, when = ""): void {
  const held = stats.ready + stats.inFlight + stats.delayed + stats.completed +
    stats.deadLettered - stats.malformed + stats.cancelled;
  assert.equal(
    held,
    planned + stats.splits,
    `${when}ready ${stats.ready} + in flight ${stats.inFlight} + delayed ${stats.delayed} + ` +
      `completed ${stats.completed} + dead ${stats.deadLettered} - malformed ${stats.malformed} ` +
      `+ cancelled ${stats.cancelled} should be ${planned} planned + ${stats.splits} splits`,
  );
}

/** Opens a consumer, lets it claim `count` chunks, and kills it holding them. */
export async function dieHolding(
  setup: ConformanceSetup,
  jobId: string,
  count: number,
  options: { readonly consumerId: string; readonly leaseMs: number } & Record<string, unknown>,
): Promise<Delivery[]> {
  const doomed = await setup.open(options);
  const held = await pullAll(doomed, jobId, count, { max: count });
  await doomed.close(); // a closed consumer looks dead: its leases are not released
  return held;
}

/**
 * Lets the broker take back lapsed leases: a reclaim where leases need one; where they are the
 * connection, a pull (which is where such a broker looks at what came back), releasing what it
 * got at once (a release spends nothing).
 */
export async function recover(broker: Broker, jobId: string): Promise<void> {
  if (broker.capabilities.leases === "extend") {
    await broker.reclaim({ jobId });
    return;
  }
  const got = await broker.pull({ jobId, max: 50, waitMs: 100 });
  if (got.length === 0) return;
  await broker.nack(
    got.map((delivery) => ({ delivery, kind: "released", reason: "looked", workerId: "t" })),
  );
}

/**
 * The invariant every case ends with: no parameter of the job is both counted and dead-lettered,
 * nor counted twice. A chunk id names its parameters (a bisected half is `<parent>.0` or `.1`),
 * so two ids share parameters exactly when one is the other or one of its ancestors.
 */
export async function assertEachParameterOnce(broker: Broker, jobId: string): Promise<void> {
  const stats = await broker.stats(jobId);
  if (stats.completed + stats.deadLettered === 0) return;
  const ended: [chunkId: string, how: string][] = [];
  for (const result of await allResults(broker, jobId)) ended.push([result.chunkId, "counted"]);
  for (const letter of await broker.deadLetters.list(jobId)) {
    if (letter.task) ended.push([letter.task.chunkId, "dead-lettered"]);
  }
  // Each pair sharing parameters is found from its deeper side: the same id, or an ancestor's.
  const byId = new Map<string, string>();
  for (const [chunkId, how] of ended) {
    const earlier = byId.get(chunkId);
    assert.equal(earlier, undefined, `chunk ${chunkId} ${how}, and ${chunkId} ${earlier}`);
    byId.set(chunkId, how);
  }
  for (const [chunkId, how] of ended) {
    const parts = chunkId.split(".");
    for (let depth = 1; depth < parts.length; depth++) {
      const ancestor = parts.slice(0, depth).join(".");
      const other = byId.get(ancestor);
      assert.equal(other, undefined, `chunk ${chunkId} ${how}, and ${ancestor} ${other}`);
    }
  }
}
