/**
 * What the RabbitMQ broker keeps besides the flow of tasks: the job record, the dead letters
 * (list, replay, purge), the queued chunks of a cancelled job, and the deletion of a job.
 *
 * @module
 */
import type { ConsumeMessage } from "amqplib";
import type { DeadLetter, JobRecord } from "../broker.ts";
import { decodeDeadLetter, decodeTask, encodeTask, FRESH, isMalformedLetter } from "./codec.ts";
import type { RabbitConnection, Session } from "./connection.ts";
import { announce } from "./census.ts";
import { addCounters, readCounters } from "./counters.ts";
import { snapshot } from "./reader.ts";
import { declareJobRecordQueue, delayQueue, deleteJob, type JobNames } from "./topology.ts";
import { errorMessage } from "../../errors.ts";

/** Records a job once: a `reject-publish` queue of length 1 refuses the second record. */
export async function createJob(connection: RabbitConnection, names: JobNames, job: JobRecord) {
  await declareJobRecordQueue(connection.admin, names);
  const session = await connection.session();
  const outcome = await session.publish("", names.job, Buffer.from(JSON.stringify(job)));
  if (outcome === "returned") throw new Error(`the record queue of job "${job.jobId}" vanished`);
  return outcome === "ack";
}

/** The job's record, or null. */
export async function getJob(
  connection: RabbitConnection,
  names: JobNames,
): Promise<JobRecord | null> {
  const found = await snapshot(
    connection,
    names.job,
    (messages) => messages[0] ? JSON.parse(messages[0].content.toString()) as JobRecord : null,
  );
  return found ?? null;
}

/** The job's dead letters, oldest first. */
export async function listDeadLetters(
  connection: RabbitConnection,
  names: JobNames,
  limit: number | undefined,
): Promise<DeadLetter[]> {
  const letters = await snapshot(
    connection,
    names.dlq,
    (messages) =>
      messages.slice(0, limit ?? Infinity).map((m) =>
        decodeDeadLetter(names.jobId, m.content, m.properties)
      ),
  );
  return letters ?? [];
}

function selected(names: JobNames, ids: readonly string[] | undefined, m: ConsumeMessage) {
  return !ids || ids.includes(decodeDeadLetter(names.jobId, m.content, m.properties).id);
}

/**
 * Puts dead letters back in the task queue with fresh attempts and crashes (a confirmed copy,
 * then the ack); unreadable messages are never replayed. The job's consumers are told, so they
 * read its dead letters afresh.
 */
export async function replayDeadLetters(
  session: Session,
  connection: RabbitConnection,
  names: JobNames,
  ids: readonly string[] | undefined,
): Promise<number> {
  const n = await snapshot(connection, names.dlq, async (messages, channel) => {
    let count = 0;
    for (const m of messages) {
      if (isMalformedLetter(m.properties) || !selected(names, ids, m)) continue;
      const decoded = decodeTask(names.jobId, m.content);
      if (!decoded.ok) continue;
      const content = encodeTask(decoded.task, { ...FRESH, claims: decoded.state.claims + 1 });
      const outcome = await session.publish(names.taskExchange, names.tasks, content, {
        priority: decoded.task.priority,
        messageId: decoded.task.chunkId,
      });
      if (outcome !== "ack") continue;
      channel.ack(m);
      count++;
    }
    return count;
  });
  if (n) await announce(connection, names, "letters");
  return n ?? 0;
}

/**
 * Deletes dead letters. The purge's counter event is confirmed before the snapshot lets go of
 * the queue, so a reader that counts the queue once it is free also reads the event.
 */
export async function purgeDeadLetters(
  session: Session,
  connection: RabbitConnection,
  names: JobNames,
  ids: readonly string[] | undefined,
): Promise<number> {
  const n = await snapshot(connection, names.dlq, async (messages, channel) => {
    let chunks = 0;
    let malformed = 0;
    let purged = 0;
    for (const m of messages) {
      if (!selected(names, ids, m)) continue;
      channel.ack(m);
      purged++;
      if (isMalformedLetter(m.properties)) malformed++;
      else if (decodeTask(names.jobId, m.content).ok) chunks++;
    }
    if (chunks + malformed > 0) {
      await addCounters(session, names, { purged: chunks, malformed: -malformed });
    }
    return purged;
  });
  if (n) await announce(connection, names, "letters");
  return n ?? 0;
}

/**
 * Purges the queued chunks of a cancelled job (its control says so already, so no consumer hands
 * one out) and counts them as cancelled. The delay queues go first, the task queue last, so a
 * retry whose delay ends meanwhile lands where the last purge still finds it. A purge is one step
 * of RabbitMQ but has no ids, so its count is a number, confirmed right after: a broker that died
 * in between leaves those chunks uncounted (ready, by the residual of stats.ts), the one gap.
 */
export async function purgeQueued(
  session: Session,
  connection: RabbitConnection,
  names: JobNames,
  delaysMs: Iterable<number>,
): Promise<number> {
  const counters = await readCounters(connection, names);
  const steps = new Set([...delaysMs, ...counters.delays]);
  const queues = [...[...steps].map((ms) => delayQueue(names, ms)), names.retry, names.tasks];
  let n = 0;
  for (const queue of queues) {
    if (!(await connection.admin.probe(queue))) continue;
    try {
      n += (await connection.admin.run((ch) => ch.purgeQueue(queue))).messageCount;
    } catch (error) {
      if (!/404|NOT[-_]FOUND/.test(errorMessage(error))) throw error; // expired meanwhile
    }
  }
  if (n > 0) await addCounters(session, names, { cancelled: n });
  return n;
}

/**
 * Deletes every queue and exchange of the job: the delay queues of `delaysMs` too, and of every
 * backoff step its counters name (a broker with another policy may have used them).
 */
export async function deleteJobQueues(
  connection: RabbitConnection,
  names: JobNames,
  delaysMs: Iterable<number>,
): Promise<void> {
  const counters = await readCounters(connection, names).catch(() => undefined);
  await deleteJob(connection.admin, names, new Set([...delaysMs, ...counters?.delays ?? []]));
}
