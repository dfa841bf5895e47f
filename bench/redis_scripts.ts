/**
 * The Redis section's figure of the hot-path scripts: the server time per call of the claim,
 * extend and ack scripts over batches of {@linkcode COST_BATCH}, from INFO commandstats.
 *
 * @module
 */
import { Redis } from "ioredis";
import type { ChunkResult, ChunkTask, Delivery } from "../brokers/broker.ts";
import { openRedisBroker } from "../brokers/redis/redis.ts";
import { formatChunkId } from "../brokers/task.ts";

/** Tasks per pull, extend and ack of {@linkcode scriptCosts} (the sweep's `--batch`). */
export const COST_BATCH = 256;

/** Server time per call of the hot-path scripts, in µs. */
export interface ScriptCosts {
  readonly claim: number;
  readonly extend: number;
  readonly ack: number;
}

/**
 * Publishes `chunks` tasks, then claims them all in pulls of {@linkcode COST_BATCH}, extends and
 * acks them in batches of as many: the EVALSHA time Redis spent per call in each phase (INFO
 * commandstats before and after it; other clients of a shared Redis add theirs).
 */
export async function scriptCosts(url: string, chunks: number): Promise<ScriptCosts> {
  const jobId = `bench-cost-${crypto.randomUUID().slice(0, 8)}`;
  const broker = await openRedisBroker({ url, consumerId: `bench-cost-${Deno.pid}` });
  const client = new Redis(url, { lazyConnect: true, protocol: 2 });
  await client.connect();
  const evalsha = async () => {
    const info = await client.info("commandstats");
    const match = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(info);
    return { calls: Number(match?.[1] ?? 0), usec: Number(match?.[2] ?? 0) };
  };
  const perCall = async (phase: () => Promise<void>) => {
    const before = await evalsha();
    await phase();
    const after = await evalsha();
    return (after.usec - before.usec) / Math.max(1, after.calls - before.calls);
  };
  const batches = (list: readonly Delivery[]) =>
    Array.from(
      { length: Math.ceil(list.length / COST_BATCH) },
      (_, i) => list.slice(i * COST_BATCH, (i + 1) * COST_BATCH),
    );
  try {
    const tasks = Array.from({ length: chunks }, (_, i) => benchTask(jobId, i, chunks));
    await broker.publish(tasks);
    // One call of each script first, so the measured calls are EVALSHA of loaded scripts.
    const [first] = await broker.pull({ jobId, max: 1, waitMs: 0 });
    await broker.extend([first!]);
    await broker.ack([{ delivery: first!, result: benchResult(first!) }]);
    const held: Delivery[] = [];
    const claim = await perCall(async () => {
      for (;;) {
        const got = await broker.pull({ jobId, max: COST_BATCH, waitMs: 0 });
        if (got.length === 0) return;
        held.push(...got);
      }
    });
    const extend = await perCall(async () => {
      for (const batch of batches(held)) await broker.extend(batch);
    });
    const ack = await perCall(async () => {
      for (const batch of batches(held)) {
        await broker.ack(batch.map((delivery) => ({ delivery, result: benchResult(delivery) })));
      }
    });
    return { claim, extend, ack };
  } finally {
    await broker.reset(jobId).catch(() => {});
    await broker.close();
    await client.quit();
  }
}

function benchTask(jobId: string, i: number, chunks: number): ChunkTask {
  return {
    jobId,
    chunkId: formatChunkId(i),
    handler: "ttg.sweep",
    start: i * 10,
    end: i * 10 + 10,
    totalParams: chunks * 10,
    totalChunks: chunks,
    priority: 0,
    createdAt: new Date().toISOString(),
    args: { work_ms: 0 },
    divisible: true,
  };
}

function benchResult(delivery: Delivery): ChunkResult {
  return {
    value: { sum: delivery.task.start, count: 10 },
    params: 10,
    workerId: "bench-cost",
    durationMs: 0,
    completedAt: new Date().toISOString(),
  };
}
