/**
 * The worker's parts on a manual clock: batching and retrying commits, the pull loop's backoff
 * and idle timeout, PROGRESS lines, handler slots. No real sleeps: time moves when the test says.
 */
import assert from "node:assert/strict";
import type {
  AckOutcome,
  AckRequest,
  Broker,
  BrokerStats,
  Delivery,
  NackOutcome,
} from "../brokers/broker.ts";
import { EMPTY_STATS } from "../brokers/broker.ts";
import { BrokerError } from "../errors.ts";
import { ManualClock } from "../workers/clock.ts";
import { type Commit, CommitBatcher } from "../workers/commit_batcher.ts";
import { WorkerCounters } from "../workers/counters.ts";
import { InFlight } from "../workers/in_flight.ts";
import { silentLogger } from "../workers/log.ts";
import { ProgressLog } from "../workers/progress_log.ts";
import { pullLoop } from "../workers/pull_loop.ts";
import { Slots } from "../workers/slots.ts";
import { makeTasks } from "./conformance.ts";

function delivery(i: number): Delivery {
  const [task] = makeTasks("job", i + 1).slice(i);
  return {
    task: task!,
    attempt: 1,
    maxAttempts: 4,
    crashes: 0,
    epoch: 1,
    receipt: `${i}`,
    history: [],
  };
}

/** A stand-in for the broker calls a part makes, recording them; `fail` throws for a while. */
class Calls {
  acks: AckRequest[][] = [];
  pulls = 0;
  fail: Error | undefined;
  failures = 0;
  stats: BrokerStats = EMPTY_STATS;
  deliveries: Delivery[][] = [];

  broker(): Broker {
    return {
      ack: (requests: readonly AckRequest[]): Promise<AckOutcome[]> => {
        if (this.fail) {
          this.failures += 1;
          return Promise.reject(this.fail);
        }
        this.acks.push([...requests]);
        return Promise.resolve(requests.map(() => "stored"));
      },
      nack: (): Promise<NackOutcome[]> => Promise.resolve([]),
      pull: (): Promise<Delivery[]> => {
        this.pulls += 1;
        if (this.fail) return Promise.reject(this.fail);
        return Promise.resolve(this.deliveries.shift() ?? []);
      },
      stats: () => Promise.resolve(this.stats),
    } as unknown as Broker;
  }
}

function batcher(calls: Calls, clock: ManualClock, inFlight: InFlight, batch = 3) {
  const answered: string[] = [];
  const commits = new CommitBatcher({
    broker: calls.broker(),
    batch,
    clock,
    log: silentLogger,
    nothingPending: () => inFlight.uncommitted === 0,
    onAcked: (_, outcomes) => answered.push(...outcomes),
    onNacked: () => {},
    onSettled: (done) => inFlight.settle(done.map((c) => c.entry)),
  });
  const ack = (i: number): Commit => {
    const entry = inFlight.add(delivery(i));
    inFlight.finished(entry);
    return {
      kind: "ack",
      entry,
      request: {
        delivery: entry.delivery,
        result: { value: i, params: 10, workerId: "w", durationMs: 0, completedAt: "" },
      },
    };
  };
  return { commits, ack, answered };
}

Deno.test("commits go out in one call when the batch is full, or after lingering 5 ms on the clock", async () => {
  const clock = new ManualClock();
  const calls = new Calls();
  const inFlight = new InFlight();
  inFlight.add(delivery(9)); // a chunk still running: a partial batch may wait for it
  const { commits, ack, answered } = batcher(calls, clock, inFlight);
  commits.add(ack(0));
  commits.add(ack(1));
  await clock.advance(4);
  assert.equal(calls.acks.length, 0, "a partial batch went out before its linger");
  await clock.advance(1);
  assert.deepEqual(calls.acks.map((b) => b.length), [2]);
  for (const i of [2, 3, 4]) commits.add(ack(i));
  await clock.advance(0);
  assert.deepEqual(calls.acks.map((b) => b.length), [2, 3], "a full batch waits for nothing");
  assert.equal(answered.length, 5);
});

Deno.test("a commit whose broker is unavailable is retried with backoff on the clock, never sent twice", async () => {
  const clock = new ManualClock();
  const calls = new Calls();
  const inFlight = new InFlight();
  const { commits, ack, answered } = batcher(calls, clock, inFlight);
  calls.fail = new BrokerError("UNAVAILABLE", "Cannot ack: connection refused");
  const commit = ack(0);
  commits.add(commit); // nothing else pending: sent at once
  await clock.advance(0);
  assert.equal(calls.failures, 1);
  assert.equal(commit.entry.commitSent, false, "a failed commit's lease must be renewed again");
  await clock.advance(150); // first backoff: about 100-120 ms
  assert.equal(calls.failures, 2);
  calls.fail = undefined;
  await clock.advance(1000);
  assert.deepEqual(answered, ["stored"]);
  assert.equal(calls.acks.length, 1);
  assert.equal(inFlight.size, 0, "the committed chunk was not let go");
});

Deno.test("a stopping worker gives up a failing commit after five attempts; CLOSED gives up at once", async () => {
  const clock = new ManualClock();
  const calls = new Calls();
  const inFlight = new InFlight();
  const { commits, ack } = batcher(calls, clock, inFlight);
  commits.stopping();
  calls.fail = new BrokerError("UNAVAILABLE", "down");
  commits.add(ack(0));
  const flushed = commits.flush();
  await clock.advance(60_000);
  await flushed;
  assert.equal(calls.failures, 5);
  assert.equal(inFlight.size, 0);
  calls.failures = 0;
  calls.fail = new BrokerError("CLOSED", "closed");
  commits.add(ack(1));
  await clock.advance(0);
  await commits.flush();
  assert.equal(calls.failures, 1);
});

Deno.test("the pull loop backs off while pulls fail and ends idle once the broker says the job is drained", async () => {
  const clock = new ManualClock();
  const calls = new Calls();
  const inFlight = new InFlight();
  calls.fail = new BrokerError("UNAVAILABLE", "down");
  const started: Delivery[] = [];
  const ended = pullLoop({
    broker: calls.broker(),
    jobIds: () => ["job"],
    log: silentLogger,
    clock,
    batch: 10,
    pollMs: 1000,
    idleTimeoutMs: 5000,
    inFlight,
    window: () => 10,
    start: (d) => started.push(d),
  }, new AbortController().signal);
  await clock.advance(0);
  assert.equal(calls.pulls, 1);
  await clock.advance(90);
  assert.equal(calls.pulls, 1, "retried before its backoff");
  await clock.advance(40);
  assert.equal(calls.pulls, 2);
  calls.fail = undefined;
  calls.deliveries.push([delivery(0)]);
  calls.stats = { ...EMPTY_STATS, ready: 1 }; // not drained yet
  await clock.advance(1000);
  assert.equal(started.length, 1);
  calls.stats = EMPTY_STATS;
  await clock.advance(10_000);
  assert.equal(await ended, "idle");
});

Deno.test("PROGRESS: a worker line once per interval while it counts chunks, none while it counts none", async () => {
  const clock = new ManualClock();
  const lines: Record<string, unknown>[] = [];
  const log = {
    ...silentLogger,
    info: (_: string, f?: Record<string, unknown>) => lines.push(f ?? {}),
  };
  const progress = new ProgressLog(log, clock, 5000);
  const counters = new WorkerCounters();
  counters.ack("stored", 10);
  progress.worker(counters.snapshot(), 1);
  assert.equal(lines.length, 0, "a line before the interval");
  await clock.advance(5000);
  progress.worker(counters.snapshot(), 1);
  assert.deepEqual(lines, [{
    chunks: 1,
    params: 10,
    in_flight: 1,
    chunks_per_second: 0.2,
    failures: 0,
    timeouts: 0,
  }]);
  await clock.advance(5000);
  progress.worker(counters.snapshot(), 0);
  assert.equal(lines.length, 1, "a line although nothing was counted");
});

Deno.test("handler slots: at most size at once, the rest in order", async () => {
  const slots = new Slots(2);
  const order: number[] = [];
  await slots.acquire();
  await slots.acquire();
  const third = slots.acquire().then(() => order.push(3));
  const fourth = slots.acquire().then(() => order.push(4));
  slots.release();
  await third;
  assert.deepEqual(order, [3]);
  slots.release();
  await fourth;
  assert.deepEqual(order, [3, 4]);
  assert.throws(() => new Slots(0), RangeError);
});
