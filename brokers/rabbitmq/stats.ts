/**
 * `stats()` of the RabbitMQ broker: counts true at the instant they are read, although RabbitMQ
 * has no atomic snapshot across queues.
 *
 * ## Why the counts add up at every instant
 *
 * A chunk of the job is in one of: the task queue (ready), a consumer (in flight: handed out,
 * prefetched or being recovered), a delay queue (delayed), the results queue (completed) or the
 * dead-letter queue. RabbitMQ's counts are read one queue at a time, and chunks move between
 * reads, so a naive sum can count a chunk twice (its result is confirmed, its delivery not acked
 * yet) or not at all (a delivery on its way to a consumer is in no queue's count). Three things
 * make the identity `ready + inFlight + delayed + completed + deadLettered − malformed + cancelled
 * = planned + splits` hold anyway:
 *
 * 1. **Ready is the residual.** `planned + splits` is known exactly: every publish and every split
 *    is a confirmed counter event (counters.ts, sets of chunk ids, so a chunk published twice or
 *    split again after a crash counts once), confirmed inside its step before that step's acks.
 *    `ready` is what remains after the measured parts, so a chunk between two places that are
 *    not measured (the task queue and a consumer's socket) is counted as ready, exactly once.
 *    A job that TTG never published (the predecessor's producer) has no such event: its ready is
 *    the task queue's count.
 * 2. **Consumers stand still while they are counted.** Every step that moves a chunk a consumer
 *    holds elsewhere than to the results (a confirmed copy, then the ack) runs inside the job's
 *    {@linkcode TransitionGate}. The census (census.ts) pauses every consumer's gate, waits for the
 *    steps under way, and only then is each consumer's answer given; the delay, dead-letter and
 *    counter queues are read after every answer and before the release. No consumer moves a
 *    chunk during that window, so a chunk is either in a consumer's answer or already where its
 *    step put it. What RabbitMQ moves by itself meanwhile is harmless: a delay queue's expiry or a
 *    delivery to a consumer that already answered moves a chunk into the task queue or a socket
 *    (counted as ready, by the residual); a dead consumer's deliveries go back to the task queue
 *    (ready, by the residual) and it answers nothing.
 *
 *    Results are read before the census, outside the pause (a results read waits for the live
 *    feed, which may lag behind a busy job, and the consumers must not wait for it), and acks need
 *    no pause at all: results only grow, so a result stored after the read belongs to a chunk the
 *    census still finds held (in flight), or whose ack ended between the read and the census
 *    (ready, by the residual), once either way; a result stored before the read whose ack is
 *    still under way is deduplicated by its chunk id (3.).
 * 3. **In flight is a set of chunk ids**, taken minus the completed ones: a chunk redelivered
 *    after its holder stored the result and died before acking is held while it waits to be
 *    dropped, yet counted once, as completed; two copies of one chunk in two consumers count once.
 *
 * The dead-letter queue is counted only while no snapshot holds it (a snapshot's unacked
 * messages are missing from its count), and a purge publishes its counter event before it lets
 * go of the queue. `consumers` is the job's presence queue's consumer count: live consumers
 * only. A reader that could not finish within the consumers' pause starts over.
 *
 * @module
 */
import type { BrokerStats } from "../broker.ts";
import type { JobControl } from "../registry.ts";
import type { RabbitConnection } from "./connection.ts";
import { Unreachable } from "./connection.ts";
import { readCounters } from "./counters.ts";
import { takeCensus } from "./census.ts";
import { PAUSE_MAX_MS } from "./gate.ts";
import type { Results } from "./reader.ts";
import { delayQueue, type JobNames } from "./topology.ts";

/** The reads must end this long before the consumers' pauses do. */
const PAUSE_MARGIN_MS = 1000;
const ROUNDS = 4;

/** What stats() reads. */
export interface StatsSources {
  readonly connection: RabbitConnection;
  readonly results: Results;
  /** Backoff steps of this broker's own policy (their delay queues are read too). */
  readonly delays: readonly number[];
  /** The job's control word. */
  readonly control: (jobId: string) => Promise<JobControl>;
}

/** Reads the job's counts (see the module doc for why they add up). */
export async function readStats(sources: StatsSources, names: JobNames): Promise<BrokerStats> {
  for (let round = 1;; round++) {
    const stats = await readOnce(sources, names);
    if (stats || round >= ROUNDS) {
      if (stats) return stats;
      throw new Unreachable(`the job's consumers did not stand still for ${ROUNDS} reads`);
    }
  }
}

async function readOnce(sources: StatsSources, names: JobNames): Promise<BrokerStats | null> {
  const { connection, results } = sources;
  const admin = connection.admin;
  // Results first, outside the pause: a result stored after this read belongs to a chunk that
  // the census finds still held, or that is counted as ready; one stored before is read here.
  const index = await results.fresh(names.jobId);
  const control = await sources.control(names.jobId);
  const presence = await admin.probe(names.presence);
  const tasks = await admin.probe(names.tasks);
  const census = await takeCensus(connection, names, presence?.consumerCount ?? 0);
  try {
    const [dead, counters] = await Promise.all([
      probeUnheld(sources, names.dlq),
      readCounters(connection, names),
    ]);
    let delayed = (await admin.probe(names.retry))?.messageCount ?? 0;
    for (const ms of new Set([...sources.delays, ...counters.delays])) {
      delayed += (await admin.probe(delayQueue(names, ms)))?.messageCount ?? 0;
    }
    if (Date.now() - census.sentAt > PAUSE_MAX_MS - PAUSE_MARGIN_MS) return null;
    let inFlight = 0;
    for (const chunkId of census.held) if (!index.has(chunkId)) inFlight += 1;
    const completed = index.completed;
    const deadLettered = dead?.messageCount ?? 0;
    const malformed = Math.max(0, counters.malformed);
    const chunks = counters.published === undefined
      ? undefined
      : counters.published + counters.splits - counters.purged;
    const ready = chunks === undefined
      ? tasks?.messageCount ?? 0
      : chunks - inFlight - delayed - completed - (deadLettered - malformed) - counters.cancelled;
    return {
      ready,
      inFlight,
      delayed,
      deadLettered,
      malformed,
      completed,
      completedParams: index.completedParams,
      cancelled: counters.cancelled,
      control,
      splits: counters.splits,
      duplicates: index.duplicates,
      zombies: counters.zombies,
      retried: counters.retried,
      reclaimed: counters.reclaimed,
      consumers: presence?.consumerCount ?? 0,
    };
  } finally {
    await census.release();
  }
}

/** A queue's counts once no snapshot holds its messages (they are missing from the count then). */
async function probeUnheld(sources: StatsSources, queue: string) {
  const deadline = Date.now() + PAUSE_MAX_MS - PAUSE_MARGIN_MS;
  for (;;) {
    const ok = await sources.connection.admin.probe(queue);
    if (!ok || ok.consumerCount === 0 || Date.now() > deadline) return ok;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
