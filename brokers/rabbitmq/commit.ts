/**
 * Committing results: each result is published to the job's results queue (several to a message
 * for namespaced jobs), confirmed, and only then is its delivery acked, on the channel that
 * received it. A delivery whose session died is a zombie and publishes nothing: its result would
 * be published on the holding channel before the ack, so it exists only if the delivery was
 * still held.
 *
 * Results are never consumed; the first result of a chunk in queue order is its counted one
 * (reader.ts). `ack()` answers `duplicate` when this instance knows of an earlier result (its own,
 * or one its live feed brought); two consumers storing two copies of one chunk at the same
 * instant may both hear `stored`, yet only one is counted.
 *
 * @module
 */
import type { ConsumeMessage } from "amqplib";
import type { AckOutcome, AckRequest, StoredResult } from "../broker.ts";
import { encodeResults, ID_HEADER, resultBody } from "./codec.ts";
import type { AdminChannels, Session } from "./connection.ts";
import { CopyBatch, putBack } from "./copies.ts";
import type { Deliveries, Held } from "./deliveries.ts";
import type { ResultIndex } from "./reader.ts";
import type { JobNames } from "./topology.ts";
import type { ZombieCounts } from "./zombies.ts";

/** Results per message for namespaced jobs (the predecessor's queue gets one per message). */
const RESULTS_PER_MESSAGE = 500;

/** What a commit works with. */
export interface CommitContext {
  readonly names: JobNames;
  readonly deliveries: Deliveries;
  readonly admin: AdminChannels;
  /** The job's results as this instance knows them. */
  readonly known: ResultIndex;
  /** The live session, if any. */
  readonly session: Session | undefined;
  /** Where zombie acks are counted. */
  readonly zombies: ZombieCounts;
}

interface Entry {
  readonly index: number;
  readonly held: Held;
  readonly result: StoredResult;
}

/** Stores results and acks their deliveries; one outcome per request. */
export async function commit(
  ctx: CommitContext,
  requests: readonly AckRequest[],
): Promise<AckOutcome[]> {
  const { names, deliveries, session } = ctx;
  const outcomes: AckOutcome[] = requests.map(() => "zombie");
  const entries: Entry[] = [];
  const seen = new Set<string>();
  requests.forEach(({ delivery, result }, index) => {
    const held = deliveries.live(delivery, session);
    if (!held) return;
    const chunkId = held.task.chunkId;
    outcomes[index] = ctx.known.has(chunkId) || seen.has(chunkId) ? "duplicate" : "stored";
    seen.add(chunkId);
    entries.push({ index, held, result: { ...result, chunkId } });
  });
  if (session && entries.length > 0) {
    const size = names.legacy ? 1 : RESULTS_PER_MESSAGE;
    const acked: ConsumeMessage[] = [];
    const failed: Entry[] = [];
    const parts: Entry[][] = [];
    for (let i = 0; i < entries.length; i += size) parts.push(entries.slice(i, i + size));
    await Promise.all(parts.map(async (part) => {
      const key = crypto.randomUUID();
      const content = encodeResults(
        part.map((e) => resultBody(names.jobId, e.result.chunkId, e.result)),
      );
      const outcome = await session.publish(names.resultsExchange, names.results, content, {
        messageId: part[0]!.result.chunkId,
        headers: { [ID_HEADER]: key },
      }).catch(() => "failed");
      if (outcome === "ack") {
        ctx.known.add(key, part.map((e) => e.result));
        for (const e of part) acked.push(e.held.message);
      } else failed.push(...part);
    }));
    deliveries.ack(session, acked);
    if (failed.length > 0) {
      // Not stored: back in the queue as they were, so the chunk is done again (no attempt spent).
      for (const e of failed) outcomes[e.index] = "zombie";
      const batch = new CopyBatch(session, names, ctx.admin);
      await putBack(
        batch,
        deliveries,
        session,
        failed.map(({ held }) => ({ ...held, state: { ...held.state, claims: held.epoch } })),
      );
    }
    deliveries.settle(entries.map((e) => e.held.receipt));
  }
  const zombies = outcomes.filter((o) => o === "zombie").length;
  await ctx.zombies.add(names, zombies);
  return outcomes;
}
