/**
 * The pull of the Redis broker: a claim script (due retries, priority bands with aging,
 * XREADGROUP … COUNT) that returns the entries as one JSON string; when nothing is ready, a
 * blocking XREADGROUP on a dedicated connection until work arrives, a retry falls due, the wait
 * ends or the signal aborts. Entries that are not chunks are dead-lettered (kind "malformed") and
 * never returned.
 *
 * @module
 */
import type { BrokerOptions, Delivery } from "./contract.ts";
import type { BlockingReaders, ReadEntry } from "./redis_blocking.ts";
import { decodeTask } from "./redis_codec.ts";
import { isNoGroup } from "./redis_connection.ts";
import { arrayOf, type RedisAccess } from "./redis_reads.ts";

/** What a pull needs of the broker. */
export interface PullContext {
  /** The main connection and the scripts. */
  readonly access: RedisAccess;
  /** Connections for blocking reads. */
  readonly readers: BlockingReaders;
  /** The broker's options (consumer id, aging, attempts). */
  readonly options: BrokerOptions;
  /** True once the broker is closed: an empty pull ends. */
  isClosed(): boolean;
}

/** One pull of one job. */
export interface PullRequest {
  /** Key base of the job (redis_codec.ts `jobKeyBase`). */
  readonly base: string;
  /** The job whose chunks are pulled. */
  readonly jobId: string;
  /** Most deliveries to return. */
  readonly max: number;
  /** `performance.now()` time after which an empty pull returns. */
  readonly deadline: number;
  /** Ends the wait early. */
  readonly signal?: AbortSignal;
}

type Stream = [band: string, key: string];
type ClaimReply = [
  nextDueMs: number,
  streams: Stream[],
  claimed: [band: string, id: string, fields: string[]][],
];

/** Claims up to `max` deliveries, waiting until the deadline for the first. */
export async function pullDeliveries(ctx: PullContext, request: PullRequest): Promise<Delivery[]> {
  const { base, max, deadline, signal } = request;
  const { access, options } = ctx;
  while (!signal?.aborted && !ctx.isClosed()) {
    const [nextDueMs, streams, claimed] = JSON.parse(
      await access.script("ttgClaim", [
        base,
        options.consumerId,
        max,
        options.priorityAgingMs,
      ]) as string,
    ) as ClaimReply;
    if (arrayOf(claimed).length > 0) {
      const read = claimed.map(([band, id, fields]) => ({ band, id, fields }));
      const deliveries = await accept(ctx, request, read);
      if (deliveries.length > 0) return deliveries;
      continue; // only malformed entries: they are dead-lettered, look again
    }
    const left = Math.ceil(deadline - performance.now());
    if (left <= 0 || signal?.aborted || ctx.isClosed()) break;
    const blockMs = nextDueMs >= 0 ? Math.max(1, Math.min(left, nextDueMs)) : left;
    let read: ReadEntry[];
    try {
      read = await ctx.readers.read(arrayOf(streams), max, blockMs, signal);
    } catch (error) {
      if (ctx.isClosed()) break;
      if (isNoGroup(error)) continue; // the claim script recreates missing groups
      throw error;
    }
    if (read.length > max) {
      const extra = read.splice(max).map((r) => `${r.band}:${r.id}`);
      await access.script("ttgGiveback", [base, ...extra]);
    }
    const deliveries = await accept(ctx, request, read);
    if (deliveries.length > 0) return deliveries;
  }
  return [];
}

/** Turns claimed entries into deliveries; dead-letters the malformed ones in one script call. */
async function accept(
  ctx: PullContext,
  request: PullRequest,
  read: readonly ReadEntry[],
): Promise<Delivery[]> {
  const { base, jobId } = request;
  const deliveries: Delivery[] = [];
  const malformed: (string | number)[] = [];
  const at = new Date().toISOString();
  const workerId = ctx.options.consumerId;
  for (const { band, id, fields } of read) {
    const receipt = `${band}:${id}`;
    const decoded = decodeTask(jobId, id, fields);
    if (decoded.ok) {
      deliveries.push({
        task: decoded.task,
        attempt: decoded.attempts + 1,
        maxAttempts: ctx.options.retry.maxAttempts,
        epoch: decoded.epoch,
        receipt,
        history: decoded.history,
      });
      continue;
    }
    const { reason, raw, epoch } = decoded;
    const history = JSON.stringify([{ attempt: 1, kind: "malformed", reason, workerId, at }]);
    const extra = JSON.stringify({ kind: "malformed", reason, at, raw });
    malformed.push(receipt, epoch, "dead", 1, history, extra);
  }
  if (malformed.length > 0) {
    await ctx.access.script("ttgNack", [base, jobId, workerId, ...malformed]);
  }
  return deliveries;
}
