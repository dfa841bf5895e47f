/**
 * What the RabbitMQ broker does with chunks that come back redelivered (their holder's
 * connection closed): a chunk with a counted result or a dead letter already is dropped (acked,
 * nothing else); any other is planned with `planExpiry`, under the job's control (a cancelled job's
 * chunk is cancelled), and applied as confirmed copies, then acked. A copy that fails puts its
 * message back (requeued) for another try.
 *
 * @module
 */
import type { ConsumeMessage } from "amqplib";
import { malformedLetter, planExpiry, REASONS, underControl } from "../policy.ts";
import type { JobControl } from "../registry.ts";
import type { Session } from "./connection.ts";
import { CopyBatch } from "./copies.ts";
import { addCounters, isEmptyEvent } from "./counters.ts";
import type { Received } from "./deliveries.ts";
import type { IntakeOptions } from "./intake.ts";
import type { LetterIndex } from "./reader.ts";

/** What a recovery step knows, read before it. */
export interface RecoveryKnown {
  readonly results: { has(chunkId: string): boolean };
  readonly letters: LetterIndex;
  readonly control: JobControl;
}

/** Recovers redelivered messages of one session, in one step (the caller holds the job's gate). */
export async function recoverBatch(
  o: IntakeOptions,
  session: Session,
  batch: readonly Received[],
  known: RecoveryKnown,
): Promise<void> {
  const { results, letters, control } = known;
  const copies = new CopyBatch(session, o.names, o.admin, letters);
  const acked: ConsumeMessage[] = [];
  const cause = { holder: "unknown", reason: REASONS.connectionClosed };
  await Promise.all(batch.map(async (r) => {
    const id = r.task.chunkId;
    if (results.has(id) || letters.has(id)) return void acked.push(r.message);
    const planned = planExpiry({ task: r.task, ...r.state }, cause, o.policy, Date.now());
    const plan = underControl(planned, control);
    try {
      await copies.expiry(r, plan);
      acked.push(r.message);
    } catch {
      o.deliveries.requeue(session, r.message);
    }
  }));
  if (!isEmptyEvent(copies.event)) await addCounters(session, o.names, copies.event);
  o.deliveries.ack(session, acked);
}

export interface Unreadable {
  readonly session: Session;
  readonly message: ConsumeMessage;
  readonly reason: string;
}

/**
 * Moves unreadable messages to the dead letters with policy.ts `malformedLetter`, then acks them,
 * session by session; returns those whose copy failed (still unacked, to try again).
 */
export async function deadLetterUnreadable(
  o: IntakeOptions,
  batch: readonly Unreadable[],
): Promise<Unreadable[]> {
  const kept: Unreadable[] = [];
  for (const session of new Set(batch.map((u) => u.session))) {
    const copies = new CopyBatch(session, o.names, o.admin);
    const acked: ConsumeMessage[] = [];
    for (const u of batch.filter((u) => u.session === session)) {
      const letter = malformedLetter(u.reason, o.consumerId, Date.now());
      try {
        await copies.malformed(u.message, letter);
        acked.push(u.message);
      } catch {
        kept.push(u);
      }
    }
    if (acked.length > 0) await addCounters(session, o.names, copies.event);
    o.deliveries.ack(session, acked);
  }
  return kept;
}
