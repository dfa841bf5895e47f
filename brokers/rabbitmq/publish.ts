/**
 * Publishing a job's tasks: persistent, mandatory and confirmed, in windows of
 * `PUBLISH_WINDOW` with two windows in flight, and counted first (a confirmed counter event of
 * their chunk ids), so the job's planned chunks are never short of a chunk that can be pulled.
 *
 * @module
 */
import type { ChunkTask } from "../broker.ts";
import { encodeTask, FRESH } from "./codec.ts";
import { type RabbitConnection, type Session, Unreachable } from "./connection.ts";
import { addCounters, idRanges } from "./counters.ts";
import type { JobNames } from "./topology.ts";

/** Tasks published before waiting for their confirms. */
const PUBLISH_WINDOW = 1000;
/** Rounds of publishing what was not confirmed before giving up. */
const ROUNDS = 5;

/** What publishing works with. */
export interface PublishContext {
  readonly connection: RabbitConnection;
  readonly names: JobNames;
  /** Declares the job's topology on `session` (once per session). */
  topology(session: Session): Promise<void>;
  /** Forgets the declared topology (a publish was unroutable: declare it again). */
  forget(): void;
}

/** Publishes tasks of one job; those not confirmed are published again, up to `ROUNDS` times. */
export async function publishTasks(
  ctx: PublishContext,
  tasks: readonly ChunkTask[],
): Promise<void> {
  const { connection, names } = ctx;
  const first = await connection.session();
  await ctx.topology(first);
  await addCounters(first, names, { published: idRanges(tasks.map((t) => t.chunkId)) });
  let pending = [...tasks];
  for (let round = 1; pending.length > 0; round++) {
    if (round > ROUNDS) throw new Unreachable(`${pending.length} tasks were not confirmed`);
    const session = await connection.session();
    await ctx.topology(session);
    const failed: ChunkTask[] = [];
    let previous = Promise.resolve();
    for (let i = 0; i < pending.length; i += PUBLISH_WINDOW) {
      const window = pending.slice(i, i + PUBLISH_WINDOW);
      const confirmed = Promise.all(window.map(async (task) => {
        const outcome = await session.publish(
          names.taskExchange,
          names.tasks,
          encodeTask(task, FRESH),
          { priority: task.priority, messageId: task.chunkId },
        ).catch(() => "failed");
        if (outcome !== "ack") failed.push(task);
      })).then(() => {});
      await previous; // two windows in flight: publishing never waits for a round trip
      previous = confirmed;
    }
    await previous;
    if (failed.length > 0) ctx.forget();
    pending = failed;
  }
}
