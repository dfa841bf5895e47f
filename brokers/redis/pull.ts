/**
 * The pull of the Redis broker: a claim script (due retries, priority bands with aging,
 * XREADGROUP … COUNT) that returns the entries as one JSON string; when nothing is ready, a
 * blocking XREADGROUP on a dedicated connection until work arrives, a retry falls due, the wait
 * ends or the signal aborts. What a blocking read claimed is kept only while the job runs (the
 * giveback script reads its control). A paused or cancelled job's claim script claims nothing and
 * says so; the pull then looks again now and then, without blocking, as it does for a job at its
 * cap on chunks in flight (the claim and giveback scripts count the job's pending entries). Entries that are not chunks
 * are dead-lettered with policy.ts `malformedLetter` and never returned.
 *
 * @module
 */
import type { BrokerOptions, Delivery, JobControl } from "../broker.ts";
import type { BlockingReaders, ReadEntry } from "./blocking.ts";
import { decodeTask } from "./codec.ts";
import { isNoGroup } from "./connection.ts";
import { malformedArgs } from "./plans.ts";
import { arrayOf, type RedisAccess } from "./reads.ts";
import { waitOrAbort } from "../wait.ts";

/** What a pull needs of the broker. */
export interface PullContext {
  /** The main connection and the scripts. */
  readonly access: RedisAccess;
  /** Connections for blocking reads. */
  readonly readers: BlockingReaders;
  /** The broker's options (consumer id, aging, attempts). */
  readonly options: BrokerOptions;
}

/** One pull of one job. */
export interface RedisPull {
  /** Key base of the job (codec.ts `jobKeyBase`). */
  readonly base: string;
  /** The job whose chunks are pulled. */
  readonly jobId: string;
  /** Hash of the controls space (codec.ts `kvKey`). */
  readonly controls: string;
  /** Most deliveries to return. */
  readonly max: number;
  /** `performance.now()` time after which an empty pull returns. */
  readonly deadline: number;
  /** Ends the wait early (the caller's signal, or the broker closing). */
  readonly signal: AbortSignal;
}

type Stream = [band: string, key: string];
type ClaimReply = [
  nextDueMs: number,
  streams: Stream[] | Record<string, never>,
  claimed: [band: string, id: string, fields: string[]][] | Record<string, never>,
  control: JobControl,
  room: number,
];

/** How often a pull of a paused or cancelled job looks again whether it runs. */
const NOT_RUNNING_POLL_MS = 250;
/**
 * How often a pull of a job at its cap looks again for room: a blocking read could claim past
 * the cap, so a capped job is polled until one of its chunks ends.
 */
const AT_CAP_POLL_MS = 20;

/** Claims up to `max` deliveries, waiting until the deadline for the first. */
export async function pullDeliveries(ctx: PullContext, request: RedisPull): Promise<Delivery[]> {
  const { base, jobId, controls, max, deadline, signal } = request;
  const { access, options } = ctx;
  while (!signal.aborted) {
    const [nextDueMs, streams, claimed, control, room] = JSON.parse(
      await access.script("ttgClaim", [
        base,
        options.consumerId,
        max,
        options.priorityAgingMs,
        controls,
        jobId,
      ]) as string,
    ) as ClaimReply;
    const entries = arrayOf(claimed);
    if (entries.length > 0) {
      const read = entries.map(([band, id, fields]) => ({ band, id, fields }));
      const deliveries = await accept(ctx, request, read);
      if (deliveries.length > 0) return deliveries;
      continue; // only malformed entries: they are dead-lettered, look again
    }
    const left = Math.ceil(deadline - performance.now());
    if (left <= 0 || signal.aborted) break;
    if (control !== "running") {
      await waitOrAbort(Math.min(left, NOT_RUNNING_POLL_MS), signal);
      continue;
    }
    if (room === 0) {
      await waitOrAbort(Math.min(left, AT_CAP_POLL_MS), signal);
      continue;
    }
    const blockMs = nextDueMs >= 0 ? Math.max(1, Math.min(left, nextDueMs)) : left;
    let read: ReadEntry[];
    try {
      read = await ctx.readers.read(arrayOf(streams), max, blockMs, signal);
    } catch (error) {
      if (signal.aborted) break;
      if (isNoGroup(error)) continue; // the claim script recreates missing groups
      throw error;
    }
    if (read.length === 0) continue;
    const receipts = read.map((r) => `${r.band}:${r.id}`);
    read.splice(
      await access.script("ttgGiveback", [base, controls, jobId, max, ...receipts]) as number,
    );
    const deliveries = await accept(ctx, request, read);
    if (deliveries.length > 0) return deliveries;
  }
  return [];
}

/** Turns claimed entries into deliveries; dead-letters the malformed ones in one script call. */
async function accept(
  ctx: PullContext,
  request: RedisPull,
  read: readonly ReadEntry[],
): Promise<Delivery[]> {
  const { base, jobId } = request;
  const { consumerId, retry } = ctx.options;
  const deliveries: Delivery[] = [];
  const malformed: (string | number)[] = [];
  const now = Date.now();
  for (const { band, id, fields } of read) {
    const receipt = `${band}:${id}`;
    const decoded = decodeTask(jobId, id, fields);
    if (decoded.ok) {
      deliveries.push({
        task: decoded.task,
        attempt: decoded.attempts + 1,
        maxAttempts: retry.maxAttempts,
        crashes: decoded.crashes,
        epoch: decoded.epoch,
        receipt,
        history: decoded.history,
      });
    } else {
      malformed.push(...malformedArgs(receipt, decoded.epoch, decoded, consumerId, now));
    }
  }
  if (malformed.length > 0) {
    await ctx.access.script("ttgNack", [base, jobId, consumerId, request.controls, ...malformed]);
  }
  return deliveries;
}
