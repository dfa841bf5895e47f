/**
 * The RabbitMQ broker against a real RabbitMQ: the shared conformance suite, then RabbitMQ-specific
 * cases (the predecessor's wire format and a mixed fleet, malformed messages, connection loss and
 * zombies, SIGKILL of a consumer process, a broker restart).
 *
 * RabbitMQ is `AMQP_URL`, else `RABBITMQ_HOST`/`RABBITMQ_PORT`/`RABBITMQ_USER`/`RABBITMQ_PASSWORD`,
 * else amqp://guest:guest@127.0.0.1:5672. Every case uses its own name prefix and deletes what it
 * declared.
 */
import assert from "node:assert/strict";
import * as amqp from "amqplib";
import {
  type Broker,
  type ChunkResult,
  DEFAULT_RETRY,
  type Delivery,
} from "../brokers/contract.ts";
import { openRabbitBroker, type RabbitBrokerOptions } from "../brokers/rabbitmq.ts";
import { encodeTask } from "../brokers/rabbitmq_codec.ts";
import { rabbitTarget } from "../brokers/rabbitmq_connection.ts";
import { jobNames, taskQueueArguments } from "../brokers/rabbitmq_topology.ts";
import { holderScript } from "../bench/rabbitmq.ts";
import { computeRange } from "../jobs/sweep.ts";
import { makeTasks, runBrokerConformance } from "./conformance.ts";
import { declareLegacyTopology } from "./fixtures/legacy_rabbitmq_worker.ts";
import { assertReadsLegacyJob, ttg, until } from "./helpers.ts";
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
    return `RabbitMQ is not reachable at ${url.replace(/:[^:@/]*@/, ":***@")}: ${
      (error as Error).message
    }`;
  }
}

const unreachable = await reachable(AMQP_URL);

/** A fresh name prefix per case. */
export function newPrefix(): string {
  return `ttgtest-${crypto.randomUUID().slice(0, 8)}`;
}

for (const queueType of ["classic", "quorum"] as const) {
  const quorum = queueType === "quorum";
  runBrokerConformance({
    name: quorum ? "rabbitmq (quorum queues)" : "rabbitmq",
    ignoreReason: unreachable,
    sanitize: false,
    skip: {
      aging: "RabbitMQ orders a queue by static priority only; it cannot age waiting messages",
      zombie:
        "leases are the connection: a live consumer's delivery is never taken away, so it cannot be reclaimed while its holder stalls; fencing after a connection loss is tested below",
      ...(quorum
        ? { priority: "quorum queues have no x-max-priority (RabbitMQ 3.x): documented" }
        : {}),
    },
    setup() {
      const prefix = newPrefix();
      let raw: amqp.ChannelModel | undefined;
      return Promise.resolve({
        open: (o?: Partial<RabbitBrokerOptions>) =>
          openRabbitBroker({
            url: AMQP_URL,
            namePrefix: prefix,
            heartbeatSeconds: 2,
            queueType,
            ...o,
          }),
        async injectRaw(jobId: string, message: string) {
          raw ??= await amqp.connect(AMQP_URL);
          const ch = await raw.createConfirmChannel();
          const names = jobNames(prefix, jobId);
          await ch.assertExchange(names.taskExchange, "direct", { durable: true });
          await ch.assertQueue(names.tasks, {
            durable: true,
            // As the broker declares it (its default retry policy).
            arguments: taskQueueArguments(names, {
              queueType,
              deliveryLimit: DEFAULT_RETRY.maxAttempts + 1,
            }),
          });
          await ch.bindQueue(names.tasks, names.taskExchange, names.tasks);
          ch.publish(names.taskExchange, names.tasks, Buffer.from(message), { persistent: true });
          await ch.waitForConfirms();
          await ch.close();
        },
        async cleanup() {
          await raw?.close();
        },
      });
    },
  });
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
  Deno.test({
    name: `rabbitmq: ${name}${ignore ? ` (skipped: ${ignore})` : ""}`,
    ignore: (unreachable ?? ignore) !== undefined,
    sanitizeOps: false,
    sanitizeResources: false,
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
    const results = await broker.results(prefix);
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

rabbitTest("a fleet mixing legacy workers and ours counts every chunk once", async () => {
  const prefix = newPrefix();
  await withBroker(prefix, {}, async (broker) => {
    const tasks = makeTasks(prefix, 300);
    await broker.publish(tasks);
    const olds = [0, 1].map((i) => legacy(["worker", AMQP_URL, prefix, `legacy-${i}`, "2"]));
    let ours = 0;
    const deadline = Date.now() + 60_000;
    while ((await broker.stats(prefix)).completed < 300 && Date.now() < deadline) {
      const batch = await broker.pull({ jobId: prefix, max: 5, waitMs: 200 });
      await new Promise((r) => setTimeout(r, 10));
      const outcomes = await broker.ack(batch.map((d) => ({
        delivery: d,
        result: sweepResult(d, "ttg"),
      })));
      ours += outcomes.filter((o) => o === "stored").length;
    }
    const done = await Promise.all(olds.map(async (p) => {
      const out = await p.output();
      return JSON.parse(new TextDecoder().decode(out.stdout).trim()).done as number;
    }));
    const results = await broker.results(prefix);
    assert.equal(results.length, 300);
    assert.deepEqual(results.map((r) => r.chunkId).sort(), tasks.map((t) => t.chunkId));
    const stats = await broker.stats(prefix);
    assert.equal(stats.completed, 300);
    assert.equal(stats.duplicates, 0);
    assert.equal(ours + done[0]! + done[1]!, 300);
    assert.ok(ours > 0 && done[0]! + done[1]! > 0, `ours ${ours}, legacy ${done}`);
    const sum = results.reduce((s, r) => s + (r.value as { sum: number }).sum, 0);
    assert.ok(Math.abs(sum - computeRange(0, 3000).sum) < 1e-6);
  });
});

rabbitTest("a legacy retry is read as history and a foreign job's task is malformed", async () => {
  const prefix = newPrefix();
  const jobId = "mixed";
  await withBroker(prefix, {}, async (broker) => {
    await broker.publish(makeTasks(jobId, 1));
    const names = jobNames(prefix, jobId);
    const conn = await amqp.connect(AMQP_URL);
    try {
      const ch = await conn.createConfirmChannel();
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
      for (const body of [legacyRetry, { ...legacyRetry, chunk_id: "00008", job_id: "other" }]) {
        ch.publish(names.taskExchange, names.tasks, Buffer.from(JSON.stringify(body)));
      }
      await ch.waitForConfirms();
    } finally {
      await conn.close();
    }
    const got = [];
    for (let i = 0; i < 20 && got.length < 2; i++) {
      got.push(...await broker.pull({ jobId, max: 5, waitMs: 200 }));
    }
    assert.deepEqual(got.map((d) => d.task.chunkId).sort(), ["00000", "00007"]);
    const old = got.find((d) => d.task.chunkId === "00007")!;
    assert.equal(old.attempt, 3);
    assert.equal(old.task.handler, "ttg.sweep");
    assert.deepEqual(old.history.map((h) => [h.kind, h.reason]), [["failed", "boom"]]);
    const letters = await broker.deadLetters.list(jobId);
    assert.equal(letters.length, 1);
    assert.equal(letters[0]!.kind, "malformed");
    assert.match(letters[0]!.reason, /unknown job "other"/);
    await broker.reset(jobId);
  }, [jobId]);
});

/** Closes the server side of the connections whose name contains `needle` (rabbitmqctl). */
async function closeConnections(needle: string): Promise<number> {
  const list = await new Deno.Command("rabbitmqctl", {
    args: ["-q", "list_connections", "pid", "client_properties"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const lines = new TextDecoder().decode(list.stdout).split("\n").filter((l) => l.includes(needle));
  let closed = 0;
  for (const line of lines) {
    const pid = line.split("\t")[0]!.trim();
    const out = await new Deno.Command("rabbitmqctl", {
      args: ["-q", "close_connection", pid, "test: connection dropped"],
      stdout: "null",
      stderr: "null",
    }).output();
    if (out.success) closed++;
  }
  return closed;
}

const rabbitmqctl = await (async () => {
  try {
    const out = await new Deno.Command("rabbitmqctl", {
      args: ["-q", "status"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success ? undefined : "rabbitmqctl status failed";
  } catch (error) {
    return `rabbitmqctl is not usable here: ${(error as Error).message}`;
  }
})();
if (rabbitmqctl) {
  console.log(`rabbitmq tests: ${rabbitmqctl}; connection-drop and restart tests skipped`);
}

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
        assert.equal(fresh.attempt, 2);
        assert.ok(fresh.epoch > old.epoch, `epoch ${fresh.epoch} should exceed ${old.epoch}`);
        assert.equal(await live.reclaim({ jobId }), 1);
        assert.deepEqual(await zombie.extend([old]), ["zombie"]);
        assert.deepEqual(
          await live.ack([{ delivery: fresh, result: sweepResult(fresh, "live") }]),
          [
            "stored",
          ],
        );
        assert.deepEqual(
          await zombie.ack([{ delivery: old, result: sweepResult(old, "zombie") }]),
          [
            "zombie",
          ],
        );
        assert.deepEqual(
          await zombie.nack([{ delivery: old, kind: "failed", reason: "late", workerId: "z" }]),
          ["zombie"],
        );
        const results = await live.results(jobId);
        assert.deepEqual(results.map((r) => r.workerId), ["live"]);
        const stats = await live.stats(jobId);
        assert.equal(stats.zombies, 3);
        assert.equal(stats.reclaimed, 1);
        assert.equal(stats.duplicates, 0);
        assert.equal(stats.deadLettered + stats.delayed + stats.ready + stats.inFlight, 0);
        // The zombie reconnected by itself and works again (once the live consumer is gone).
        await live.close();
        await zombie.publish(makeTasks(jobId, 1, { chunkId: "00001" }));
        const [again] = await zombie.pull({ jobId, max: 1, waitMs: 5000 });
        assert.equal(again?.task.chunkId, "00001");
      } finally {
        await zombie.reset(jobId).catch(() => {});
        await zombie.close();
      }
    }, [jobId]);
  },
  rabbitmqctl,
);

rabbitTest(
  "SIGKILL of a consumer process: its unacked chunks are redelivered at once",
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
      try {
        const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let out = "";
        while (!out.includes("holding")) {
          const { value, done } = await reader.read();
          if (done) throw new Error("the holder exited early");
          out += value;
        }
        reader.releaseLock();
        assert.equal((await survivor.stats(jobId)).inFlight, 10);
        const t0 = performance.now();
        child.kill("SIGKILL");
        const back: Delivery[] = [];
        while (back.length < 10 && performance.now() - t0 < 10_000) {
          back.push(...await survivor.pull({ jobId, max: 10, waitMs: 500 }));
        }
        const seconds = (performance.now() - t0) / 1000;
        console.log(`rabbitmq: SIGKILL → 10 chunks redelivered in ${seconds.toFixed(3)} s`);
        assert.equal(back.length, 10);
        assert.ok(back.every((d) => d.attempt === 2));
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
        await child.stdout.cancel().catch(() => {});
        await survivor.reset(jobId).catch(() => {});
      }
    }, [jobId]);
  },
);

async function ctl(command: string): Promise<void> {
  const out = await new Deno.Command("rabbitmqctl", {
    args: ["-q", command],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`rabbitmqctl ${command}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

rabbitTest(
  "a delivery whose result copy RabbitMQ refuses goes back without spending an attempt",
  async () => {
    const prefix = newPrefix();
    const jobId = "refused";
    const results = jobNames(prefix, jobId).results;
    const policy = `${prefix}-refuse`;
    const setPolicy = (...args: string[]) =>
      new Deno.Command("rabbitmqctl", { args: ["-q", ...args], stdout: "null", stderr: "null" })
        .output();
    // A full results queue that rejects publishes: the broker nacks the result's copy.
    await setPolicy(
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
        await setPolicy("clear_policy", policy);
        const attempts = [first.attempt];
        let outcome: string | undefined = "zombie";
        for (let i = 0; i < 20 && outcome !== "stored"; i++) {
          const [again] = await broker.pull({ jobId, max: 1, waitMs: 5000 });
          assert.ok(again, "the refused delivery did not come back (dead-lettered as expired?)");
          attempts.push(again.attempt);
          [outcome] = await broker.ack([{ delivery: again, result: sweepResult(again, "a") }]);
        }
        assert.equal(outcome, "stored");
        assert.deepEqual(new Set(attempts), new Set([1]), "a refused copy spent an attempt");
        assert.equal((await broker.deadLetters.list(jobId)).length, 0);
        assert.equal((await broker.stats(jobId)).completed, 1);
        await broker.reset(jobId);
      }, [jobId]);
    } finally {
      await setPolicy("clear_policy", policy);
    }
  },
  rabbitmqctl,
);

rabbitTest(
  "a broker restart in the middle of a job loses no chunk and counts none twice",
  async () => {
    const prefix = newPrefix();
    const jobId = "restart";
    const total = 400;
    await withBroker(prefix, { consumerId: "a", connectTimeoutMs: 60_000 }, async (a) => {
      const b = await openRabbitBroker({
        url: AMQP_URL,
        namePrefix: prefix,
        consumerId: "b",
        connectTimeoutMs: 60_000,
      });
      let stop = false;
      const loop = async (broker: Broker, id: string) => {
        while (!stop) {
          try {
            const batch = await broker.pull({ jobId, max: 8, waitMs: 200 });
            await new Promise((r) => setTimeout(r, 20));
            if (batch.length) {
              await broker.ack(batch.map((d) => ({ delivery: d, result: sweepResult(d, id) })));
            }
          } catch {
            await new Promise((r) => setTimeout(r, 200)); // broker away: try again
          }
        }
      };
      try {
        await a.publish(makeTasks(jobId, total));
        const loops = [loop(a, "a"), loop(b, "b")];
        const deadline = Date.now() + 120_000;
        while ((await a.stats(jobId)).completed < total / 4) {
          await new Promise((r) => setTimeout(r, 50));
        }
        try {
          await ctl("stop_app");
          await new Promise((r) => setTimeout(r, 1500));
        } finally {
          await ctl("start_app");
        }
        let stats = await until(
          async () => {
            const s = await a.stats(jobId).catch(() => undefined);
            return s && s.completed >= total ? s : undefined;
          },
          deadline - Date.now(),
          "the job to finish after the restart",
        );
        stop = true;
        await Promise.all(loops);
        stats = await a.stats(jobId);
        const results = await a.results(jobId);
        assert.equal(results.length, total, "a chunk was lost");
        assert.equal(new Set(results.map((r) => r.chunkId)).size, total);
        assert.equal(stats.completed, total);
        assert.equal(stats.ready + stats.inFlight + stats.delayed + stats.deadLettered, 0);
        console.log(
          `rabbitmq: restart mid-job: ${stats.completed} completed, ${stats.duplicates} duplicates discarded, ${stats.zombies} zombies`,
        );
      } finally {
        stop = true;
        await a.reset(jobId).catch(() => {});
        await b.close();
      }
    }, [jobId]);
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
      const rabbit = broker as Broker & { connection: { current?: { generation: number } } };
      await broker.publish(makeTasks(jobId, 1));
      const generation = rabbit.connection.current?.generation;
      const names = jobNames(prefix, jobId);
      const conn = await amqp.connect(AMQP_URL);
      try {
        const ch = await conn.createConfirmChannel();
        for (const [i, task] of makeTasks(jobId, good + 1).entries()) {
          if (i === 0) continue;
          ch.publish(names.taskExchange, names.tasks, Buffer.from(`{"garbage": ${i}`));
          ch.publish(
            names.taskExchange,
            names.tasks,
            encodeTask(task, { attempt: 1, claims: 0, history: [] }),
          );
        }
        await ch.waitForConfirms();
      } finally {
        await conn.close();
      }
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
      assert.equal(stats.duplicates, 0, "a channel error requeued acked deliveries");
      assert.equal(
        rabbit.connection.current?.generation,
        generation,
        "the channel was closed (an ack of an already acked delivery is a 406 channel error)",
      );
      await broker.reset(jobId);
    }, [jobId]);
  },
);

rabbitTest(
  "acks sent just before close() are not lost to the connection close (no redelivery)",
  async () => {
    const prefix = newPrefix();
    const jobId = "closeflush";
    for (let round = 0; round < 5; round++) {
      const first = await openRabbitBroker({ url: AMQP_URL, namePrefix: prefix });
      await first.publish(
        makeTasks(jobId, 300).map((t) => ({
          ...t,
          chunkId: `${round}-${t.chunkId}`,
        })),
      );
      const got = [];
      while (got.length < 300) got.push(...await first.pull({ jobId, max: 300, waitMs: 200 }));
      await first.ack(got.map((d) => ({ delivery: d, result: sweepResult(d, "w") })));
      await first.close();
    }
    await withBroker(prefix, {}, async (broker) => {
      const again = await broker.pull({ jobId, max: 100, waitMs: 500 });
      assert.equal(again.length, 0, `${again.length} acked deliveries came back after close()`);
      const stats = await broker.stats(jobId);
      assert.equal(stats.completed, 1500, JSON.stringify(stats));
      await broker.reset(jobId);
    }, [jobId]);
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
      const queues = await new Deno.Command("rabbitmqctl", {
        args: ["-q", "list_queues", "name", "type"],
        stdout: "piped",
        stderr: "null",
      }).output();
      const line = new TextDecoder().decode(queues.stdout).split("\n")
        .find((l) => l.startsWith(`${jobNames("ttg", jobId).tasks}\t`));
      assert.match(line ?? "", /\tquorum$/, "the task queue is not a quorum queue");
    } finally {
      await ttg(["reset", ...common], { AMQP_URL });
    }
  },
  rabbitmqctl,
);

Deno.test("rabbitmq: amqps:// verifies the server with the given CA; guest is refused off localhost", () => {
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

rabbitTest(
  "ttg status and ttg results read a job the predecessor's workers produced (ttg.tasks, own vhost)",
  async () => {
    // A private vhost: the predecessor's names (job id ttg) are used as they are.
    const vhost = newPrefix();
    const ctl = (...args: string[]) =>
      new Deno.Command("rabbitmqctl", { args: ["-q", ...args], stdout: "null", stderr: "piped" })
        .output();
    assert.ok((await ctl("add_vhost", vhost)).success, "rabbitmqctl add_vhost");
    try {
      const user = new URL(AMQP_URL).username || "guest";
      await ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*");
      const url = `${AMQP_URL.replace(/\/+$/, "")}/${vhost}`;
      assert.deepEqual(await legacyRun(["submit", url, "ttg", "1000", "100"]), { submitted: 10 });
      assert.equal((await legacyRun(["worker", url, "ttg", "legacy-0", "1"])).done, 10);
      await assertReadsLegacyJob("rabbitmq", { AMQP_URL: url });
    } finally {
      await ctl("delete_vhost", vhost);
    }
  },
  rabbitmqctl,
);
