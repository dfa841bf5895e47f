/**
 * The job's counters: confirmed JSON events in its durable `stats` queue, summed when read, so
 * they survive restarts and need no single writer. An event that matters to the accounting
 * identity (chunks published, splits, malformed letters, purges) is confirmed inside the step that
 * causes it, before that step's acks.
 *
 * Published chunks and split chunks are sets of chunk ids, not counts, so publishing a chunk twice
 * or splitting it again after a crash counts it once. Ids are kept compact: runs of zero-padded
 * numbers (`00000`–`49999`) as ranges.
 *
 * @module
 */
import type { Session } from "./connection.ts";
import type { RabbitConnection } from "./connection.ts";
import { snapshot } from "./reader.ts";
import type { JobNames } from "./topology.ts";

/** Chunk ids as `[digits, first, last]` runs of zero-padded numbers plus other ids. */
export interface IdRanges {
  readonly runs: readonly (readonly [number, number, number])[];
  readonly other: readonly string[];
}

/** One event: increments, and sets of chunk ids. */
export interface CounterEvent {
  /** Set on an event that may be sent again (zombies.ts): an id is counted once. */
  id?: string;
  zombies?: number;
  retried?: number;
  reclaimed?: number;
  /** Unreadable messages dead-lettered (negative when purged). */
  malformed?: number;
  /** Chunk dead letters purged. */
  purged?: number;
  /** Backoff steps used (their delay queues hold `delayed` chunks). */
  delays?: number[];
  /** Chunks published. */
  published?: IdRanges;
  /** Chunks bisected (their parents' ids). */
  splits?: string[];
  /** Queued chunks of a cancelled job purged from its queues (a count: a purge has no ids). */
  cancelled?: number;
  /** Chunks of a cancelled job that a consumer received or was given back (their ids). */
  cancelledChunks?: string[];
}

/** The sum of a job's events. */
export interface CounterTotals {
  zombies: number;
  retried: number;
  reclaimed: number;
  malformed: number;
  purged: number;
  delays: Set<number>;
  /** Distinct chunks published, or undefined when nothing was published through TTG. */
  published: number | undefined;
  splits: number;
  /** Chunks cancelled: purged, plus distinct chunks cancelled by a consumer. */
  cancelled: number;
}

/**
 * Compacts chunk ids into runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { idRanges } from "./counters.ts";
 * assert.deepEqual(idRanges(["00000", "00001", "00002", "x"]), { runs: [[5, 0, 2]], other: ["x"] });
 * ```
 */
export function idRanges(ids: Iterable<string>): IdRanges {
  const byWidth = new Map<number, number[]>();
  const other: string[] = [];
  for (const id of ids) {
    if (/^\d{1,15}$/.test(id)) {
      const list = byWidth.get(id.length) ?? [];
      list.push(Number(id));
      byWidth.set(id.length, list);
    } else other.push(id);
  }
  const runs: [number, number, number][] = [];
  for (const [width, numbers] of byWidth) {
    numbers.sort((a, b) => a - b);
    for (const n of numbers) {
      const last = runs[runs.length - 1];
      if (last && last[0] === width && n <= last[2] + 1) last[2] = Math.max(last[2], n);
      else runs.push([width, n, n]);
    }
  }
  return { runs, other };
}

/** How many distinct ids several {@linkcode IdRanges} hold together. */
export function countIds(sets: readonly IdRanges[]): number {
  const byWidth = new Map<number, [number, number][]>();
  const other = new Set<string>();
  for (const set of sets) {
    for (const [width, first, last] of set.runs) {
      const list = byWidth.get(width) ?? [];
      list.push([first, last]);
      byWidth.set(width, list);
    }
    for (const id of set.other) other.add(id);
  }
  let n = other.size;
  for (const spans of byWidth.values()) {
    spans.sort((a, b) => a[0] - b[0]);
    let end = -1;
    for (const [first, last] of spans) {
      if (last <= end) continue;
      n += last - Math.max(first, end + 1) + 1;
      end = last;
    }
  }
  return n;
}

/** Publishes one event, confirmed; throws when RabbitMQ did not take it. */
export async function addCounters(
  session: Session,
  names: JobNames,
  event: CounterEvent,
): Promise<void> {
  const outcome = await session.publish("", names.stats, Buffer.from(JSON.stringify(event)));
  if (outcome !== "ack") throw new Error(`the counters of job "${names.jobId}" were ${outcome}`);
}

/** True when an event holds nothing. */
export function isEmptyEvent(event: CounterEvent): boolean {
  return Object.entries(event).every(([k, v]) =>
    k === "id" || v === undefined || v === 0 || (Array.isArray(v) && v.length === 0)
  );
}

/** Sums the job's events (a snapshot of the `stats` queue); zeros when it has none. */
export async function readCounters(
  connection: RabbitConnection,
  names: JobNames,
): Promise<CounterTotals> {
  const totals: CounterTotals = {
    zombies: 0,
    retried: 0,
    reclaimed: 0,
    malformed: 0,
    purged: 0,
    delays: new Set(),
    published: undefined,
    splits: 0,
    cancelled: 0,
  };
  const published: IdRanges[] = [];
  const splits = new Set<string>();
  const cancelled = new Set<string>();
  let purged = 0;
  const seen = new Set<string>();
  await snapshot(connection, names.stats, (messages) => {
    for (const m of messages) {
      let e: CounterEvent;
      try {
        e = JSON.parse(m.content.toString()) as CounterEvent;
      } catch {
        continue; // not a counter event
      }
      if (typeof e.id === "string") {
        if (seen.has(e.id)) continue; // sent again after a lost confirm
        seen.add(e.id);
      }
      totals.zombies += Number(e.zombies ?? 0);
      totals.retried += Number(e.retried ?? 0);
      totals.reclaimed += Number(e.reclaimed ?? 0);
      totals.malformed += Number(e.malformed ?? 0);
      totals.purged += Number(e.purged ?? 0);
      for (const d of e.delays ?? []) if (Number.isInteger(d)) totals.delays.add(d);
      if (e.published) published.push(e.published);
      for (const id of e.splits ?? []) splits.add(id);
      purged += Number(e.cancelled ?? 0);
      for (const id of e.cancelledChunks ?? []) cancelled.add(id);
    }
  });
  totals.published = published.length > 0 ? countIds(published) : undefined;
  totals.splits = splits.size;
  totals.cancelled = purged + cancelled.size;
  return totals;
}
