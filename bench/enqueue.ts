/**
 * Enqueue figures: a sweep's chunks planned and published through TTG's submit path (the calls
 * `ttg submit` makes, in this process, so no process start is timed), beside the raw bulk append
 * of the same broker measured in the same run: SQLite rows inserted in transactions of 1,000,
 * Redis XADD of a real chunk's fields pipelined 100 at a time, RabbitMQ persistent publishes with
 * confirms awaited every 500.
 *
 * @module
 */
import * as amqp from "amqplib";
import { DatabaseSync } from "node:sqlite";
import { Redis } from "ioredis";
import { planSweep } from "../workers/plan.ts";
import { type Backend, type BenchTarget, resetJobs } from "./targets.ts";
import { submitSweep } from "./ttg_process.ts";

/** One chunk as the raw appends write it (the body of a real task of the sweep). */
function sampleTask(chunks: number) {
  return planSweep({
    jobId: "ttgbench-raw",
    params: 10,
    chunkSize: 10,
    args: { work_ms: 0, fault_rate: 0 },
  }).tasks.map((t) => ({ ...t, totalChunks: chunks, totalParams: chunks * 10 }))[0]!;
}

/** Raw bulk insert into a fresh SQLite file beside the target's (WAL, synchronous=NORMAL). */
export function rawSqliteInsert(path: string, entries: number): number {
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    db.exec("CREATE TABLE q (id INTEGER PRIMARY KEY, job TEXT, chunk TEXT, body TEXT NOT NULL)");
    const insert = db.prepare("INSERT INTO q (job, chunk, body) VALUES (?, ?, ?)");
    const body = JSON.stringify(sampleTask(entries));
    const t0 = performance.now();
    for (let i = 0; i < entries; i += 1000) {
      db.exec("BEGIN");
      for (let j = i; j < Math.min(entries, i + 1000); j++) insert.run("raw", String(j), body);
      db.exec("COMMIT");
    }
    return entries / ((performance.now() - t0) / 1000);
  } finally {
    db.close();
  }
}

/** Raw XADD of `entries` entries with a real chunk's fields, pipelined 100 at a time. */
export async function rawRedisAppend(url: string, entries: number): Promise<number> {
  const { encodeTask } = await import("../brokers/redis/codec.ts");
  const client = new Redis(url, { lazyConnect: true, protocol: 2 });
  await client.connect();
  const key = `ttgbench-raw-${crypto.randomUUID().slice(0, 8)}`;
  const fields = encodeTask(sampleTask(entries));
  try {
    const t0 = performance.now();
    for (let i = 0; i < entries; i += 100) {
      const pipeline = client.pipeline();
      for (let j = i; j < Math.min(entries, i + 100); j++) pipeline.xadd(key, "*", ...fields);
      await pipeline.exec();
    }
    return entries / ((performance.now() - t0) / 1000);
  } finally {
    await client.del(key);
    await client.quit();
  }
}

/** Raw persistent publishes of a chunk's JSON to a queue of our own, confirms every 500. */
export async function rawRabbitPublish(url: string, messages: number): Promise<number> {
  const conn = await amqp.connect(url);
  const queue = `ttgbench-raw-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const channel = await conn.createConfirmChannel();
    await channel.assertQueue(queue, { durable: true });
    const body = Buffer.from(JSON.stringify(sampleTask(messages)));
    const t0 = performance.now();
    for (let i = 0; i < messages; i++) {
      channel.sendToQueue(queue, body, { persistent: true });
      if ((i + 1) % 500 === 0) await channel.waitForConfirms();
    }
    await channel.waitForConfirms();
    const rate = messages / ((performance.now() - t0) / 1000);
    await channel.deleteQueue(queue);
    await channel.close();
    return rate;
  } finally {
    await conn.close();
  }
}

/** The raw append of `target`'s broker, entries per second. */
export async function rawAppend(target: BenchTarget, entries: number): Promise<number> {
  const raw: Record<Backend, () => Promise<number>> = {
    sqlite: async () => {
      const path = `${target.sqlitePath}.raw-${crypto.randomUUID().slice(0, 6)}`;
      try {
        return rawSqliteInsert(path, entries);
      } finally {
        for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(path + suffix).catch(() => {});
      }
    },
    redis: () => rawRedisAppend(target.url!, entries),
    rabbitmq: () => rawRabbitPublish(target.url!, entries),
  };
  return await raw[target.backend]();
}

/** One run: TTG's submit of `chunks` chunks (× 10 parameters), chunks per second. */
export async function ttgEnqueue(target: BenchTarget, chunks: number): Promise<number> {
  const jobId = target.jobId("enqueue");
  const broker = await target.open();
  try {
    const ms = await submitSweep(broker, { jobId, params: chunks * 10, chunkSize: 10 });
    return chunks / (ms / 1000);
  } finally {
    await broker.close();
    await resetJobs(target, [jobId]);
  }
}

/** `runs` alternating runs of TTG's enqueue and the raw append. */
export async function measureEnqueue(
  target: BenchTarget,
  chunks: number,
  runs: number,
): Promise<{ ttg: number[]; raw: number[] }> {
  const ttg: number[] = [];
  const raw: number[] = [];
  for (let run = 0; run < runs; run++) {
    ttg.push(await ttgEnqueue(target, chunks)); // first: a broker TTG cannot use fails at once
    raw.push(await rawAppend(target, chunks));
    console.error(
      `bench: enqueue ${target.backend} run ${run + 1}/${runs}: ${
        Math.round(ttg.at(-1)!)
      } chunks/s (raw ${Math.round(raw.at(-1)!)})`,
    );
  }
  return { ttg, raw };
}
