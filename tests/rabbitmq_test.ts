/**
 * The RabbitMQ broker against a real RabbitMQ: the shared conformance suite on classic and on
 * quorum queues, then what is RabbitMQ's own (the predecessor's wire format, a redelivered chunk
 * that already has a result, fencing after a dropped connection, SIGKILL of a consumer process,
 * a refused result copy, multiple acks between malformed messages, the connection wait).
 *
 * RabbitMQ is `AMQP_URL`, else `RABBITMQ_HOST`/`RABBITMQ_PORT`/`RABBITMQ_USER`/`RABBITMQ_PASSWORD`,
 * else amqp://guest:guest@127.0.0.1:5672, shared with others: every case uses its own name prefix
 * (or vhost) and deletes what it declared, and nothing here stops that node. The restart case
 * kills a private node (rabbitmq_node.ts) of its own.
 */
import assert from "node:assert/strict";
import * as amqp from "amqplib";
import type { Broker, ChunkResult, Delivery, PartialBrokerOptions } from "../brokers/broker.ts";
import { DEFAULT_RETRY } from "../brokers/policy.ts";
import { allResults } from "../brokers/results.ts";
import { encodeTask, FRESH } from "../brokers/rabbitmq/codec.ts";
import { openRabbitBroker, type RabbitBrokerOptions } from "../brokers/rabbitmq/rabbitmq.ts";
import { rabbitTarget } from "../brokers/rabbitmq/target.ts";
import {
  deliveryLimit,
  jobNames,
  type QueueType,
  taskQueueArguments,
} from "../brokers/rabbitmq/topology.ts";
import { holderScript } from "../bench/rabbitmq.ts";
import { redactUrl } from "../errors.ts";
import { computeRange } from "../jobs/sweep.ts";
import { type ConformanceSetup, makeTasks, runBrokerConformance } from "./conformance.ts";
import { declareLegacyTopology } from "./fixtures/legacy_rabbitmq_worker.ts";
import { assertReadsLegacyJob, freePort, readUntil, ttg, until } from "./helpers.ts";
import { PrivateRabbitNode, whyNoPrivateNode } from "./rabbitmq_node.ts";
import {
  assertBusyHandlerKeepsItsLease,
  assertPausedWorkerCannotCommit,
} from "./stall_scenarios.ts";

export const AMQP_URL = Deno.env.get("AMQP_URL") ?? (() => {
  const user = Deno.env.get("RABBITMQ_USER") ?? "guest";
  const password = Deno.env.get("RABBITMQ_PASSWORD") ?? "guest";
  const host = Deno.env.get("RABBITMQ_HOST") ?? "127.0.0.1";
  const port = Deno.env.get("RABBITMQ_PORT") ?? "5672";
  return `amqp://${user}:${password}@${host}:${port}`;
})();

async function reachable(url: string): Promise<string | undefined> {
  try {
    const conn = await amqp.connect(url);
    await conn.close();
    return undefined;
  } catch (error) {
    return `RabbitMQ is not reachable at ${redactUrl(url)}: ${(error as Error).message}`;
  }
}

const unreachable = await reachable(AMQP_URL);
const noPrivateNode = whyNoPrivateNode();

/** A fresh name prefix per case. */
export function newPrefix(): string {
  return `ttgtest-${crypto.randomUUID().slice(0, 8)}`;
}

const LEGACY = new URL("./fixtures/legacy_rabbitmq_worker.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

function legacy(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, LEGACY, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

async function legacyRun(args: string[]): Promise<Record<string, unknown>> {
  const out = await legacy(args).output();
  assert.equal(out.code, 0, "the legacy fixture failed");
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
}

/** rabbitmqctl on the shared node (reads, and what only touches this test's own names). */
async function sharedCtl(...args: string[]): Promise<{ success: boolean; stdout: string }> {
  const out = await new Deno.Command("rabbitmqctl", {
    args: ["-q", ...args],
    stdout: "piped",
    stderr: "null",
  }).output();
  return { success: out.success, stdout: new TextDecoder().decode(out.stdout) };
}

type Ctl = (...args: string[]) => Promise<{ success: boolean; stdout: string }>;

/** Which of the job's queues and exchanges exist, listed by rabbitmqctl (around the broker). */
async function listTraces(ctl: Ctl, prefix: string, jobId: string): Promise<string[]> {
  const names = jobNames(prefix, jobId);
  const fixed = new Set<string>(Object.values(names).filter((v) => typeof v === "string"));
  fixed.delete(jobId);
  // The job's entries of the broker's key-value store (brokers/rabbitmq/kv.ts).
  for (const space of ["jobs", "controls", "finished"]) fixed.add(`${prefix}:kv:${space}:${jobId}`);
  const delay = new RegExp(`^${names.retry.replaceAll(".", "\\.")}\\.\\d+ms$`);
  const base = names.legacy ? undefined : `${prefix}.${jobId}.`;
  const found: string[] = [];
  for (const kind of ["list_queues", "list_exchanges"]) {
    const out = await ctl(kind, "name");
    assert.ok(out.success, `rabbitmqctl ${kind} failed`);
    for (const line of out.stdout.split("\n")) {
      const name = line.trim();
      if (fixed.has(name) || delay.test(name) || (base && name.startsWith(base))) {
        found.push(`${kind === "list_queues" ? "queue" : "exchange"} ${name}`);
      }
    }
  }
  return found.sort();
}

/**
 * Deletes the case's key-value queues (`<prefix>:kv…`: entries, indexes, locks), which outlive
 * its jobs by design (the fleet registry, settings, the indexes).
 */
async function deleteKvQueues(url: string, ctl: Ctl, prefix: string): Promise<void> {
  const out = await ctl("list_queues", "name");
  const mine = out.stdout.split("\n").map((l) => l.trim()).filter((name) =>
    name.startsWith(`${prefix}:kv`)
  );
  if (mine.length === 0) return;
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    for (const queue of mine) await channel.deleteQueue(queue);
    await channel.close();
  } finally {
    await connection.close();
  }
}

/** A conformance setup on the RabbitMQ at `url`, with its own name prefix. */
function conformanceSetup(
  url: string,
  queueType: QueueType,
  ctl: Ctl,
  defaults: Partial<RabbitBrokerOptions> = {},
): ConformanceSetup {
  const prefix = newPrefix();
  let raw: amqp.ChannelModel | undefined;
  return {
    open: (o?: PartialBrokerOptions) =>
      openRabbitBroker({ url, namePrefix: prefix, queueType, ...defaults, ...o }),
    async injectRaw(jobId: string, message: string) {
      raw ??= await amqp.connect(url);
      const ch = await raw.createConfirmChannel();
      const names = jobNames(prefix, jobId);
      await ch.assertExchange(names.taskExchange, "direct", { durable: true });
      await ch.assertQueue(names.tasks, {
        durable: true,
        // As the broker declares it with its default retry policy.
        arguments: taskQueueArguments(names, {
          queueType,
          deliveryLimit: deliveryLimit(DEFAULT_RETRY.maxCrashes),
        }),
      });
      await ch.bindQueue(names.tasks, names.taskExchange, names.tasks);
      ch.publish(names.taskExchange, names.tasks, Buffer.from(message), { persistent: true });
      await ch.waitForConfirms();
      await ch.close();
    },
    traces: (jobId) => listTraces(ctl, prefix, jobId),
    legacy: {
      jobId: prefix,
      async enqueue(chunks, size) {
        await legacyRun(["submit", url, prefix, String(chunks * size), String(size)]);
      },
      async work(count) {
        const out = await legacyRun(["worker", url, prefix, "legacy-0", "3", String(count)]);
        return Number(out.done);
      },
    },
    async cleanup() {
      await raw?.close();
      await deleteKvQueues(url, ctl, prefix);
    },
  };
}

for (const queueType of ["classic", "quorum"] as const) {
  const quorum = queueType === "quorum";
  runBrokerConformance({
    name: quorum ? "rabbitmq (quorum queues)" : "rabbitmq",
    ...(unreachable ? { ignoreReason: unreachable } : {}),
    skip: {
      aging: "RabbitMQ orders a queue by static priority only; it cannot age waiting messages",
      "across-aging":
        "RabbitMQ orders by static priority only, and across jobs by what each job's consumer prefetched: waiting chunks never age",
      zombie:
        "leases are the connection: a live consumer's delivery is never taken away, so nothing supersedes a stalled holder; fencing after a dropped connection is tested below",
      ...(quorum
        ? { priority: "quorum queues have no x-max-priority (RabbitMQ 3.x): documented" }
        : {}),
    },
    setup: () => Promise.resolve(conformanceSetup(AMQP_URL, queueType, sharedCtl)),
    ...(noPrivateNode ? {} : {
      async privateSetup() {
        const node = await PrivateRabbitNode.start();
        // Calls wait for the node's restart (several seconds) instead of failing at once.
        const setup = conformanceSetup(node.url, queueType, (...args) => node.ctl(...args), {
          connectTimeoutMs: 30_000,
        });
        return {
          ...setup,
          // A hard kill of a single node loses its quorum queues' leader (see bounce()).
          restart: () => quorum ? node.bounce() : node.restart(),
          async cleanup() {
            await setup.cleanup();
            await node.stop();
          },
        };
      },
    }),
  });
}

function sweepResult(d: Delivery, workerId: string): ChunkResult {
  return {
    value: computeRange(d.task.start, d.task.end),
    params: d.task.end - d.task.start,
    workerId,
    durationMs: 0,
    completedAt: new Date().toISOString(),
  };
}

function rabbitTest(name: string, fn: () => Promise<void>, ignore?: string): void {
  const reason = unreachable ?? ignore;
  Deno.test({
    name: `rabbitmq: ${name}${reason ? ` (skipped: ${reason})` : ""}`,
    ignore: reason !== undefined,
    sanitizeOps: true,
    sanitizeResources: true,
    fn,
  });
}

/** Runs `fn` with a broker, then resets the job named like the prefix and `jobs`, pass or fail. */
async function withBroker(
  prefix: string,
  o: Partial<RabbitBrokerOptions>,
  fn: (broker: Broker) => Promise<void>,
  jobs: readonly string[] = [],
): Promise<void> {
  const broker = await openRabbitBroker({ url: AMQP_URL, namePrefix: prefix, ...o });
  try {
    await fn(broker);
  } finally {
    for (const job of [prefix, ...jobs]) await broker.reset(job).catch(() => {});
    await broker.close();
  }
}

/** Publishes raw bodies to a job's task exchange on a connection of its own. */
async function publishRaw(prefix: string, jobId: string, bodies: readonly Buffer[]) {
  const names = jobNames(prefix, jobId);
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createConfirmChannel();
    for (const body of bodies) ch.publish(names.taskExchange, names.tasks, body);
    await ch.waitForConfirms();
  } finally {
    await conn.close();
  }
}

rabbitTest(
  "the job named like the prefix uses the predecessor's names, arguments and task JSON",
  async () => {
    const prefix = newPrefix();
    await withBroker(prefix, {}, async (broker) => {
      await broker.publish(makeTasks(prefix, 2, { args: { work_ms: 0 } }));
      const conn = await amqp.connect(AMQP_URL);
      try {
        const ch = await conn.createChannel();
        // The predecessor's declarations must meet equivalent queues (no PRECONDITION_FAILED).
        await declareLegacyTopology(ch, jobNames(prefix, prefix));
        const message = await ch.get(`${prefix}.tasks`, { noAck: false });
        assert.ok(message, "no task in the legacy queue");
        const body = JSON.parse(message.content.toString());
        assert.equal(body.chunk_id, "00000");
        assert.equal(body.start_param, "0");
        assert.equal(body.end_param, "10");
        assert.equal(body.params_count, "10");
        assert.equal(body.total_params, "20");
        assert.equal(body.total_chunks, "2");
        assert.equal(body.status, "pending");
        assert.equal(body.retry_count, 0);
        assert.equal(message.properties.deliveryMode, 2);
        await ch.close(); // requeues it
      } finally {
        await conn.close();
      }
      assert.equal((await broker.stats(prefix)).ready, 2);
    });
  },
);

rabbitTest("results() and stats() read a job produced entirely by legacy workers", async () => {
  const prefix = newPrefix();
  await withBroker(prefix, {}, async (broker) => {
    assert.deepEqual(await legacyRun(["submit", AMQP_URL, prefix, "1000", "100"]), {
      submitted: 10,
    });
    const worker = await legacyRun(["worker", AMQP_URL, prefix, "legacy-0", "1"]);
    assert.equal(worker.done, 10);
    const results = await allResults(broker, prefix);
    assert.equal(results.length, 10);
    const sum = results.reduce((s, r) => s + (r.value as { sum: number }).sum, 0);
    assert.ok(Math.abs(sum - computeRange(0, 1000).sum) < 1e-6);
    assert.ok(results.every((r) => r.workerId === "legacy-0" && r.params === 100));
    const stats = await broker.stats(prefix);
    assert.equal(stats.completed, 10);
    assert.equal(stats.duplicates, 0);
    assert.equal(stats.ready + stats.inFlight + stats.delayed, 0);
    assert.equal(await broker.getJob(prefix), null);
  });
});

rabbitTest("a legacy retry is read as history and a foreign job's task is malformed", async () => {
  const prefix = newPrefix();
  const jobId = "mixed";
  await withBroker(prefix, {}, async (broker) => {
    await broker.publish(makeTasks(jobId, 1));
    const legacyRetry = {
      chunk_id: "00007",
      start_param: "70",
      end_param: "80",
      params_count: "10",
      total_params: "100",
      total_chunks: "10",
      created_at: new Date().toISOString(),
      status: "pending",
      retry_count: 2,
      last_error: "boom",
      failed_at: new Date().toISOString(),
    };
    await publishRaw(prefix, jobId, [
      Buffer.from(JSON.stringify(legacyRetry)),
      Buffer.from(JSON.stringify({ ...legacyRetry, chunk_id: "00008", job_id: "other" })),
    ]);
    const got: Delivery[] = [];
    for (let i = 0; i < 20 && got.length < 2; i++) {
      got.push(...await broker.pull({ jobId, max: 5, waitMs: 200 }));
    }
    assert.deepEqual(got.map((d) => d.task.chunkId).sort(), ["00000", "00007"]);
    const old = got.find((d) => d.task.chunkId === "00007")!;
    assert.equal(old.attempt, 3);
    assert.equal(old.task.handler, "ttg.sweep");
    assert.deepEqual(old.history.map((h) => [h.kind, h.reason]), [["failed", "boom"]]);
    const letters = await until(
      async () => {
        const list = await broker.deadLetters.list(jobId);
        return list.length > 0 ? list : undefined;
      },
      5000,
      "the foreign task's dead letter",
    );
    assert.equal(letters.length, 1);
    assert.equal(letters[0]!.kind, "malformed");
    assert.match(letters[0]!.reason, /unknown job "other"/);
  }, [jobId]);
});

rabbitTest(
  "a redelivered chunk that already has a counted result is dropped: acked, not retried or dead-lettered",
  async () => {
    const prefix = newPrefix();
    const jobId = "drop";
    await withBroker(prefix, { consumerId: "a" }, async (broker) => {
      const [task] = makeTasks(jobId, 2);
      await broker.publish(makeTasks(jobId, 2));
      // A holder stores the result of 00000 and dies before its ack: the result is counted and
      // the message comes back redelivered.
      const [first] = await broker.pull({ jobId, max: 1, waitMs: 5000 });
      assert.equal(first?.task.chunkId, task!.chunkId);
      assert.deepEqual(await broker.ack([{ delivery: first!, result: sweepResult(first!, "a") }]), [
        "stored",
      ]);
      await publishRaw(prefix, jobId, [encodeTask(task!, { ...FRESH, claims: 1 })]);
      const names = jobNames(prefix, jobId);
      const conn = await amqp.connect(AMQP_URL);
      try {
        const ch = await conn.createChannel();
        await ch.prefetch(10);
        const held = await until(
          async () => {
            const m = await ch.get(names.tasks, { noAck: false });
            return m && JSON.parse(m.content.toString()).chunk_id === "00000" ? m : undefined;
          },
          5000,
          "the copy of 00000",
        );
        assert.ok(held);
        await ch.close(); // the dying holder: RabbitMQ requeues it, redelivered (00001 as well)
      } finally {
        await conn.close();
      }
      const rest: Delivery[] = [];
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        rest.push(...await broker.pull({ jobId, max: 5, waitMs: 200 }));
        const stats = await broker.stats(jobId);
        if (stats.ready + stats.inFlight === rest.length && rest.length > 0) break;
      }
      assert.deepEqual(rest.map((d) => d.task.chunkId), ["00001"], "00000 was handed out again");
      await broker.ack(rest.map((d) => ({ delivery: d, result: sweepResult(d, "a") })));
      const stats = await broker.stats(jobId);
      assert.deepEqual(
        [stats.completed, stats.deadLettered, stats.ready, stats.inFlight, stats.delayed],
        [2, 0, 0, 0, 0],
      );
      assert.equal(stats.duplicates, 0);
      assert.equal((await allResults(broker, jobId)).length, 2);
    }, [jobId]);
  },
);

rabbitTest(
  "a chunk that has a dead letter gets no second one (a copy of it that outlived a crash)",
  async () => {
    const prefix = newPrefix();
    const jobId = "onceDead";
    await withBroker(prefix, { consumerId: "a" }, async (broker) => {
      const [task] = makeTasks(jobId, 1);
      await broker.publish([task!]);
      const [first] = await broker.pull({ jobId, max: 1, waitMs: 5000 });
      const nack = (d: Delivery) =>
        broker.nack([{ delivery: d, kind: "unrecoverable", reason: "bad", workerId: "a" }]);
      assert.deepEqual(await nack(first!), ["dead_lettered"]);
      // A copy of the same chunk, as a crash between a copy and its ack leaves one behind.
      await publishRaw(prefix, jobId, [encodeTask(task!, { ...FRESH, claims: 1 })]);
      const [copy] = await broker.pull({ jobId, max: 1, waitMs: 5000 });
      assert.equal(copy?.task.chunkId, task!.chunkId);
      assert.deepEqual(await nack(copy!), ["dead_lettered"]);
      assert.equal((await broker.deadLetters.list(jobId)).length, 1);
      const stats = await broker.stats(jobId);
      assert.deepEqual([stats.deadLettered, stats.ready, stats.inFlight], [1, 0, 0]);
    }, [jobId]);
  },
);

/** Closes the server side of this test's connections whose name contains `needle`. */
async function closeConnections(needle: string): Promise<number> {
  const list = await sharedCtl("list_connections", "pid", "client_properties");
  let closed = 0;
  for (const line of list.stdout.split("\n").filter((l) => l.includes(needle))) {
    const pid = line.split("\t")[0]!.trim();
    if ((await sharedCtl("close_connection", pid, "test: connection dropped")).success) closed++;
  }
  return closed;
}

const rabbitmqctl = await (async () => {
  try {
    return (await sharedCtl("status")).success ? undefined : "rabbitmqctl status failed";
  } catch (error) {
    return `rabbitmqctl is not usable here: ${(error as Error).message}`;
  }
})();

rabbitTest(
  "a consumer whose connection dropped cannot ack, nack or extend (fencing), and reconnects",
  async () => {
    const prefix = newPrefix();
    const jobId = "fence";
    const tag = crypto.randomUUID().slice(0, 8);
    await withBroker(prefix, { consumerId: `live-${tag}` }, async (live) => {
      const zombie = await openRabbitBroker({
        url: AMQP_URL,
        namePrefix: prefix,
        consumerId: `zombie-${tag}`,
      });
      try {
        await zombie.publish(makeTasks(jobId, 1));
        const [old] = await zombie.pull({ jobId, max: 1, waitMs: 5000 });
        assert.ok(old);
        assert.deepEqual(await live.pull({ jobId, max: 1, waitMs: 300 }), []);
        assert.ok(await closeConnections(`zombie-${tag}`) >= 1, "no connection was closed");
        const [fresh] = await live.pull({ jobId, max: 1, waitMs: 10_000 });
        assert.ok(fresh, "the dropped consumer's chunk was not redelivered");
        assert.equal(fresh.attempt, 1, "a lost connection spends no attempt");
        assert.equal(fresh.crashes, 1);
        assert.ok(fresh.epoch > old.epoch, `epoch ${fresh.epoch} should exceed ${old.epoch}`);
        await assert.rejects(live.reclaim({ jobId }), { code: "NOT_IMPLEMENTED" });
        assert.deepEqual(await zombie.extend([old]), ["zombie"]);
        assert.deepEqual(
          await live.ack([{ delivery: fresh, result: sweepResult(fresh, "live") }]),
          ["stored"],
        );
        assert.deepEqual(
          await zombie.ack([{ delivery: old, result: sweepResult(old, "zombie") }]),
          ["zombie"],
        );
        assert.deepEqual(
          await zombie.nack([{ delivery: old, kind: "failed", reason: "late", workerId: "z" }]),
          ["zombie"],
        );
        const results = await allResults(live, jobId);
        assert.deepEqual(results.map((r) => r.workerId), ["live"]);
        const stats = await live.stats(jobId);
        assert.equal(stats.zombies, 3);
        assert.equal(stats.reclaimed, 1);
        assert.equal(stats.duplicates, 0);
        assert.equal(stats.deadLettered + stats.delayed + stats.ready + stats.inFlight, 0);
        // The zombie reconnected by itself and works again.
        await zombie.publish(makeTasks(jobId, 2).slice(1));
        const [again] = await zombie.pull({ jobId, max: 1, waitMs: 5000 });
        assert.equal(again?.task.chunkId, "00001");
      } finally {
        await zombie.close();
      }
    }, [jobId]);
  },
  rabbitmqctl,
);

rabbitTest(
  "SIGKILL of a consumer process: its unacked chunks come back at once, with no attempt spent",
  async () => {
    const prefix = newPrefix();
    const jobId = "kill";
    await withBroker(prefix, { consumerId: "survivor" }, async (survivor) => {
      await survivor.publish(makeTasks(jobId, 10));
      const child = new Deno.Command(Deno.execPath(), {
        args: ["eval", "--config", CONFIG, holderScript(AMQP_URL, prefix, jobId, 10)],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      try {
        await readUntil(reader, (line) => line.includes("holding"), {
          timeoutMs: 60_000,
          what: 'the holder to print "holding"',
        });
        assert.equal((await survivor.stats(jobId)).inFlight, 10);
        const t0 = performance.now();
        child.kill("SIGKILL");
        const back: Delivery[] = [];
        while (back.length < 10 && performance.now() - t0 < 10_000) {
          back.push(...await survivor.pull({ jobId, max: 10, waitMs: 500 }));
        }
        const seconds = (performance.now() - t0) / 1000;
        console.log(`rabbitmq: SIGKILL → 10 chunks back in ${seconds.toFixed(3)} s`);
        assert.equal(back.length, 10);
        assert.ok(back.every((d) => d.attempt === 1 && d.crashes === 1));
        await survivor.ack(back.map((d) => ({ delivery: d, result: sweepResult(d, "survivor") })));
        const stats = await survivor.stats(jobId);
        assert.equal(stats.completed, 10);
        assert.equal(stats.reclaimed, 10);
      } finally {
        try {
          child.kill("SIGKILL");
        } catch {
          // already dead
        }
        await child.status;
        await reader.cancel(); // and the piped stdout behind it
      }
    }, [jobId]);
  },
);

rabbitTest(
  "a delivery whose result copy RabbitMQ refuses goes back without spending an attempt",
  async () => {
    const prefix = newPrefix();
    const jobId = "refused";
    const results = jobNames(prefix, jobId).results;
    const policy = `${prefix}-refuse`;
    // A full results queue that rejects publishes (a policy on this test's queue only).
    await sharedCtl(
      "set_policy",
      "--apply-to",
      "queues",
      "--priority",
      "100",
      policy,
      `^${results.replaceAll(".", "\\.")}$`,
      JSON.stringify({ "max-length": 0, "overflow": "reject-publish" }),
    );
    try {
      await withBroker(prefix, {
        consumerId: "a",
        retry: { maxAttempts: 1, baseDelayMs: 1, factor: 1, maxDelayMs: 1 },
      }, async (broker) => {
        await broker.publish(makeTasks(jobId, 1));
        const [first] = await broker.pull({ jobId, max: 1, waitMs: 5000 });
        assert.ok(first, "no delivery");
        assert.deepEqual(
          await broker.ack([{ delivery: first, result: sweepResult(first, "a") }]),
          ["zombie"],
        );
        await sharedCtl("clear_policy", policy);
        const attempts = [first.attempt];
        let outcome: string | undefined = "zombie";
        for (let i = 0; i < 20 && outcome !== "stored"; i++) {
          const [again] = await broker.pull({ jobId, max: 1, waitMs: 5000 });
          assert.ok(again, "the refused delivery did not come back");
          attempts.push(again.attempt);
          [outcome] = await broker.ack([{ delivery: again, result: sweepResult(again, "a") }]);
        }
        assert.equal(outcome, "stored");
        assert.deepEqual(new Set(attempts), new Set([1]), "a refused copy spent an attempt");
        assert.equal((await broker.deadLetters.list(jobId)).length, 0);
        assert.equal((await broker.stats(jobId)).completed, 1);
      }, [jobId]);
    } finally {
      await sharedCtl("clear_policy", policy);
    }
  },
  rabbitmqctl,
);

// Lease 2 s: the AMQP heartbeat is 1 s and runs on the worker's main thread (free while a handler
// thread spins), so RabbitMQ drops only a frozen worker, after about 2 s.
for (
  const [name, scenario] of [
    [
      "a handler thread spinning for 3× the lease keeps its delivery: completed once, never redelivered",
      assertBusyHandlerKeepsItsLease,
    ],
    [
      "a worker paused past its lease (SIGSTOP) loses its connection and cannot commit after SIGCONT",
      assertPausedWorkerCannotCommit,
    ],
  ] as const
) {
  rabbitTest(name, async () => {
    const jobId = `stall-${crypto.randomUUID().slice(0, 8)}`;
    const observer = await openRabbitBroker({ url: AMQP_URL, consumerId: "observer" });
    try {
      await scenario({
        brokerArgs: ["--backend", "rabbitmq", "--broker-url", AMQP_URL, "--job-id", jobId],
        jobId,
        observer,
        leaseMs: 2000,
      });
    } finally {
      await observer.reset(jobId).catch(() => {});
      await observer.close();
    }
  });
}

rabbitTest(
  "malformed messages between good ones are dead-lettered while acks flow, with no channel error",
  async () => {
    const prefix = newPrefix();
    const jobId = "interleaved";
    const good = 60;
    await withBroker(prefix, {}, async (broker) => {
      await broker.publish(makeTasks(jobId, 1));
      const bodies: Buffer[] = [];
      for (const [i, task] of makeTasks(jobId, good + 1).entries()) {
        if (i === 0) continue;
        bodies.push(Buffer.from(`{"garbage": ${i}`), encodeTask(task, FRESH));
      }
      await publishRaw(prefix, jobId, bodies);
      let completed = 0;
      for (let round = 0; round < 200 && completed < good + 1; round++) {
        const got = await broker.pull({ jobId, max: 100, waitMs: 100 });
        // Ack in small groups, each as soon as it can go, while the dead-letter copies are made.
        const groups = Array.from(
          { length: Math.ceil(got.length / 5) },
          (_, i) => got.slice(i * 5, i * 5 + 5),
        );
        for (
          const outcomes of await Promise.all(
            groups.map((g) =>
              broker.ack(g.map((d) => ({ delivery: d, result: sweepResult(d, "w") })))
            ),
          )
        ) completed += outcomes.filter((o) => o === "stored").length;
      }
      assert.equal(completed, good + 1);
      await until(
        async () => (await broker.deadLetters.list(jobId)).length === good || undefined,
        10_000,
        "the malformed messages in the dead letters",
      );
      const stats = await broker.stats(jobId);
      assert.equal(stats.completed, good + 1);
      assert.equal(stats.malformed, good);
      // An ack of an already acked delivery is a 406 channel error: RabbitMQ would requeue every
      // unacked delivery of the channel, and they would come back as reclaimed redeliveries.
      assert.equal(stats.duplicates, 0, "a channel error requeued acked deliveries");
      assert.equal(stats.reclaimed, 0, "a channel error requeued deliveries");
    }, [jobId]);
  },
);

rabbitTest(
  "acks sent just before close() are not lost to the connection close (no redelivery)",
  async () => {
    const prefix = newPrefix();
    const jobId = "closeflush";
    try {
      for (let round = 0; round < 5; round++) {
        const first = await openRabbitBroker({ url: AMQP_URL, namePrefix: prefix });
        await first.publish(
          makeTasks(jobId, 300).map((t) => ({ ...t, chunkId: `${round}-${t.chunkId}` })),
        );
        const got: Delivery[] = [];
        const deadline = Date.now() + 10_000;
        while (got.length < 300) {
          assert.ok(Date.now() < deadline, `only ${got.length} of 300 pulled in time`);
          got.push(...await first.pull({ jobId, max: 300, waitMs: 200 }));
        }
        await first.ack(got.map((d) => ({ delivery: d, result: sweepResult(d, "w") })));
        await first.close();
      }
      await withBroker(prefix, {}, async (broker) => {
        const again = await broker.pull({ jobId, max: 100, waitMs: 500 });
        assert.equal(again.length, 0, `${again.length} acked deliveries came back after close()`);
        const stats = await broker.stats(jobId);
        assert.equal(stats.completed, 1500, JSON.stringify(stats));
        assert.equal(stats.reclaimed, 0, JSON.stringify(stats));
      }, [jobId]);
    } finally {
      const cleaner = await openRabbitBroker({ url: AMQP_URL, namePrefix: prefix });
      await cleaner.reset(jobId).catch(() => {});
      await cleaner.close();
    }
  },
);

rabbitTest(
  "ttg run --rabbitmq-queue-type quorum runs the job on a quorum task queue",
  async () => {
    const jobId = `${newPrefix()}-q`;
    const common = ["--backend", "rabbitmq", "--job-id", jobId];
    try {
      const run = await ttg([
        "run",
        ...common,
        "--rabbitmq-queue-type",
        "quorum",
        "--params",
        "500",
        "--chunk-size",
        "10",
        "--json",
      ], { AMQP_URL });
      assert.equal(run.code, 0, run.stderr);
      const report = JSON.parse(run.stdout);
      assert.equal(report.chunks.completed, 50);
      assert.ok(Math.abs(report.aggregate.sum - computeRange(0, 500).sum) < 1e-6);
      const queues = await sharedCtl("list_queues", "name", "type");
      const line = queues.stdout.split("\n")
        .find((l) => l.startsWith(`${jobNames("ttg", jobId).tasks}\t`));
      assert.match(line ?? "", /\tquorum$/, "the task queue is not a quorum queue");
    } finally {
      await ttg(["reset", ...common], { AMQP_URL });
    }
  },
  rabbitmqctl,
);

Deno.test({
  name: "rabbitmq: amqps:// verifies the server with the given CA; guest is refused off localhost",
  sanitizeOps: true,
  sanitizeResources: true,
}, () => {
  const secure = rabbitTarget({
    url: "amqps://ttg:s3cret@mq.example/jobs",
    tls: { ca: "-----BEGIN CERTIFICATE-----", cert: "C", key: "K" },
  });
  assert.equal(secure.connect.protocol, "amqps");
  assert.equal(secure.connect.port, 5671);
  assert.equal(secure.connect.vhost, "jobs");
  assert.equal(secure.connect.username, "ttg");
  assert.deepEqual(secure.socket, {
    ca: "-----BEGIN CERTIFICATE-----",
    cert: "C",
    key: "K",
    rejectUnauthorized: true,
    noDelay: true,
  });
  assert.equal(secure.where, "mq.example:5671");
  const plain = rabbitTarget({ url: "amqp://127.0.0.1", tls: { ca: "ignored" } });
  assert.deepEqual(plain.socket, { noDelay: true });
  assert.equal(plain.connect.username, "guest");
  assert.throws(
    () => rabbitTarget({ url: "amqps://mq.example" }),
    /guest/,
    "default credentials off localhost",
  );
});

Deno.test({
  name:
    "rabbitmq: ttg status on a closed port says what it tries, gives up after --connect-timeout and words the reason once",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const port = freePort();
    const t0 = performance.now();
    const out = await ttg([
      "status",
      "--backend",
      "rabbitmq",
      "--broker-url",
      `amqp://guest:guest@127.0.0.1:${port}`,
      "--connect-timeout",
      "1",
    ]);
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(out.code, 1, out.stderr);
    assert.ok(seconds < 5, `took ${seconds.toFixed(1)} s`);
    const lines = out.stderr.trim().split("\n");
    const retries = lines.filter((l) =>
      l.startsWith(`Connecting to RabbitMQ at 127.0.0.1:${port}`)
    );
    assert.ok(retries.length >= 2, out.stderr);
    assert.match(retries[0]!, /: connection refused; retrying in \d+\.\d s$/);
    const error = lines[lines.length - 1]!;
    assert.equal(error, `ttg: Cannot connect to RabbitMQ at 127.0.0.1:${port}: connection refused`);
    assert.equal(out.stderr.split("connection refused").length - 1, retries.length + 1);
  },
});

rabbitTest(
  "ttg status and ttg results read a job the predecessor's workers produced (ttg.tasks, own vhost)",
  async () => {
    // A private vhost: the predecessor's names (job id ttg) are used as they are.
    const vhost = newPrefix();
    assert.ok((await sharedCtl("add_vhost", vhost)).success, "rabbitmqctl add_vhost");
    try {
      const user = new URL(AMQP_URL).username || "guest";
      await sharedCtl("set_permissions", "-p", vhost, user, ".*", ".*", ".*");
      const url = `${AMQP_URL.replace(/\/+$/, "")}/${vhost}`;
      assert.deepEqual(await legacyRun(["submit", url, "ttg", "1000", "100"]), { submitted: 10 });
      assert.equal((await legacyRun(["worker", url, "ttg", "legacy-0", "1"])).done, 10);
      await assertReadsLegacyJob("rabbitmq", { AMQP_URL: url });
    } finally {
      await sharedCtl("delete_vhost", vhost);
    }
  },
  rabbitmqctl,
);
