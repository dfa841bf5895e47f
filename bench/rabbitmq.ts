/**
 * RabbitMQ section of `deno task bench`, also runnable alone:
 *
 * ```sh
 * deno run -A bench/rabbitmq.ts [--chunks 50000]
 * ```
 *
 * - raw cycle: one amqplib client publishes `chunks` persistent messages with confirms awaited
 *   every 500, then drains them with basic.consume (prefetch 100) and acks; messages per second
 *   over both phases. This is the limit of the same broker, measured in the same run.
 * - end to end: `ttg run --backend rabbitmq` of a no-op sweep, `chunks` chunks of 10 parameters,
 *   3 worker processes, chunks per second from its report.
 * - recovery: seconds from SIGKILL of a process holding 20 deliveries until another consumer has
 *   them all again.
 *
 * @module
 */
import * as amqp from "amqplib";
import { parseArgs } from "node:util";
import { openRabbitBroker } from "../brokers/rabbitmq/rabbitmq.ts";
import { makeTasks } from "../tests/conformance.ts";
import { peakRssMb, runSweepBench } from "./e2e.ts";
import { type BenchRow, renderTable } from "./table.ts";

const CONFIG = new URL("../deno.json", import.meta.url).pathname;
const BROKER = new URL("../brokers/rabbitmq/rabbitmq.ts", import.meta.url).href;

/** Options of {@linkcode benchRabbit}. */
export interface RabbitBenchOptions {
  /** Chunks of the sweep, and messages of the raw cycle. @default 50000 */
  readonly chunks?: number;
  /** @default AMQP_URL or amqp://guest:guest@127.0.0.1:5672 */
  readonly url?: string;
}

/** Runs the three figures and returns them as table rows. */
export async function benchRabbit(options: RabbitBenchOptions = {}): Promise<BenchRow[]> {
  const chunks = options.chunks ?? 50_000;
  const url = options.url ?? Deno.env.get("AMQP_URL") ?? "amqp://guest:guest@127.0.0.1:5672";
  const raw = await rawCycle(url, chunks);
  const jobId = `bench-${crypto.randomUUID().slice(0, 8)}`;
  let report;
  try {
    report = await runSweepBench({
      backend: "rabbitmq",
      chunks,
      // Pulls and acks of 256 chunks per call, as in the Redis section.
      extraArgs: ["--job-id", jobId, "--broker-url", url, "--batch", "256"],
    });
  } finally {
    const broker = await openRabbitBroker({ url });
    await broker.reset(jobId).catch(() => {});
    await broker.close();
  }
  const recovery = await sigkillRecoverySeconds(url, 20);
  return [
    {
      section: "rabbitmq",
      figure: "raw cycle: confirmed persistent publish + consume/ack (1 client)",
      value: raw,
      unit: "msgs/s",
    },
    {
      section: "rabbitmq",
      figure: `no-op sweep, ${chunks} chunks × 10, 3 workers`,
      value: report.chunks_per_second,
      unit: "chunks/s",
      rawLimit: raw,
    },
    { section: "rabbitmq", figure: "worker peak RSS", value: peakRssMb(report), unit: "MB" },
    {
      section: "rabbitmq",
      figure: "SIGKILL of a consumer → its 20 deliveries redelivered",
      value: recovery,
      unit: "s",
    },
  ];
}

/** Messages per second of publish (confirms every 500) then consume (prefetch 100) + ack. */
export async function rawCycle(url: string, messages: number): Promise<number> {
  const conn = await amqp.connect(url);
  const queue = `ttg-bench-raw-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const pub = await conn.createConfirmChannel();
    await pub.assertQueue(queue, { durable: true });
    const body = Buffer.from(JSON.stringify({ chunk_id: "00000", start_param: "0", pad: "x" }));
    const t0 = performance.now();
    for (let i = 0; i < messages; i++) {
      pub.sendToQueue(queue, body, { persistent: true });
      if ((i + 1) % 500 === 0) await pub.waitForConfirms();
    }
    await pub.waitForConfirms();
    const sub = await conn.createChannel();
    await sub.prefetch(100);
    let received = 0;
    await new Promise<void>((resolve) => {
      sub.consume(queue, (m) => {
        if (!m) return;
        sub.ack(m);
        if (++received === messages) resolve();
      });
    });
    const seconds = (performance.now() - t0) / 1000;
    await sub.close();
    await pub.deleteQueue(queue);
    await pub.close();
    return messages / seconds;
  } finally {
    await conn.close();
  }
}

/**
 * Starts a process that pulls `count` deliveries and holds them, SIGKILLs it, and measures the
 * seconds until this process has pulled them all again.
 */
export async function sigkillRecoverySeconds(url: string, count: number): Promise<number> {
  const prefix = `ttgbench-${crypto.randomUUID().slice(0, 8)}`;
  const jobId = "kill";
  const survivor = await openRabbitBroker({ url, namePrefix: prefix, consumerId: "survivor" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", CONFIG, holderScript(url, prefix, jobId, count)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    await survivor.publish(makeTasks(jobId, count));
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("holding")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the holder process exited early");
      out += value;
    }
    const t0 = performance.now();
    child.kill("SIGKILL");
    let got = 0;
    while (got < count) {
      const batch = await survivor.pull({ jobId, max: count, waitMs: 5000 });
      if (batch.length === 0) throw new Error(`only ${got} of ${count} deliveries came back`);
      got += batch.length;
    }
    const seconds = (performance.now() - t0) / 1000;
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    return seconds;
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // already dead
    }
    await child.status;
    await survivor.reset(jobId).catch(() => {});
    await survivor.close();
  }
}

/** Code of a process that pulls `count` deliveries of a job, prints "holding" and waits. */
export function holderScript(url: string, prefix: string, jobId: string, count: number): string {
  return `
    import { openRabbitBroker } from ${JSON.stringify(BROKER)};
    const broker = await openRabbitBroker({ url: ${JSON.stringify(url)}, namePrefix: ${
    JSON.stringify(prefix)
  }, consumerId: "holder" });
    const held = [];
    while (held.length < ${count}) {
      held.push(...await broker.pull({ jobId: ${
    JSON.stringify(jobId)
  }, max: ${count} - held.length, waitMs: 1000 }));
    }
    console.log("holding " + held.length);
    setInterval(() => {}, 1000);
  `;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { chunks: { type: "string", default: "50000" } },
  });
  const rows = await benchRabbit({ chunks: Number(values.chunks) });
  console.log(renderTable(rows));
}
