/**
 * The Redis broker's reads and dead-letter operations on one job (stats, results, list, replay,
 * purge), as functions of a connection and the job's key base.
 *
 * @module
 */
import type { Redis } from "ioredis";
import type { BrokerStats, DeadLetter, ResultPage } from "../broker.ts";
import { readControl } from "../registry.ts";
import { decodeDeadLetter, decodeResult } from "./codec.ts";
import type { ScriptName } from "./scripts/mod.ts";

/** What the reads need of the broker: its connection and its scripts. */
export interface RedisAccess {
  /** The main connection. */
  readonly redis: Redis;
  /** Runs a broker script (EVALSHA, loading it when Redis lost it). */
  script(name: ScriptName, args: (string | number)[]): Promise<unknown>;
}

/** Legacy results absorbed per script call. */
const ABSORB_LIMIT = 10_000;
/** Dead letters replayed or purged per script call. */
const REPLAY_BATCH = 500;

/** A JSON array from a script (Lua's cjson encodes an empty table as `{}`). */
export function arrayOf<T>(value: T[] | Record<string, never>): T[] {
  return Array.isArray(value) ? value : [];
}

/** Where {@linkcode readStats} reads a job: its key base, id, and the controls hash. */
export interface StatsTarget {
  readonly base: string;
  readonly jobId: string;
  readonly controls: string;
}

/**
 * Counts of a job in one script call (more only while legacy results remain to be counted), so
 * they are true at one instant. Consumers are the job's consumers whose connection is among
 * `live` (CLIENT LIST); without it, those that read within `windowMs`.
 */
export async function readStats(
  access: RedisAccess,
  target: StatsTarget,
  live: readonly string[] | undefined,
  windowMs: number,
): Promise<BrokerStats> {
  const names = live ? JSON.stringify(live) : "";
  const { base, jobId, controls } = target;
  const args = [base, ABSORB_LIMIT, names, windowMs, controls, jobId];
  for (;;) {
    const v = await access.script("ttgStats", args) as unknown[];
    const n = (i: number) => v[i] as number;
    if (n(12) === 1) continue; // legacy results left to count: count them first
    const ages = v[16] as number[];
    const oldestReady: { priority: number; ageMs: number }[] = [];
    for (let i = 0; i + 1 < ages.length; i += 2) {
      oldestReady.push({ priority: ages[i]!, ageMs: ages[i + 1]! });
    }
    return {
      ready: n(0),
      inFlight: n(1),
      delayed: n(2),
      deadLettered: n(3),
      malformed: n(4),
      completed: n(5),
      completedParams: n(13),
      splits: n(6),
      cancelled: n(14),
      control: readControl(String(v[15])),
      duplicates: n(7),
      zombies: n(8),
      retried: n(9),
      reclaimed: n(10),
      consumers: n(11),
      oldestReady,
    };
  }
}

/**
 * A page of the counted results of completed chunks, ours and legacy workers', in stream order
 * after `cursor` (a results-stream id). The first page counts the legacy results first.
 */
export async function readResults(
  access: RedisAccess,
  base: string,
  cursor: string | null,
  limit: number,
): Promise<ResultPage> {
  if (cursor === null) {
    while (await access.script("ttgAbsorb", [base, ABSORB_LIMIT]) === 1) {
      // counting legacy results, a page at a time
    }
  }
  const page = JSON.parse(
    await access.script("ttgResults", [base, cursor ?? "", limit]) as string,
  ) as [string, string[][]];
  return { results: arrayOf(page[1]).map(decodeResult), cursor: page[0] === "" ? null : page[0] };
}

/** Dead letters of a job, oldest first. */
export async function listDeadLetters(
  access: RedisAccess,
  base: string,
  jobId: string,
  limit?: number,
): Promise<DeadLetter[]> {
  const key = `${base}:dlq`;
  const rows = limit === undefined
    ? await access.redis.xrange(key, "-", "+")
    : await access.redis.xrange(key, "-", "+", "COUNT", limit);
  return rows.map(([id, fields]) => decodeDeadLetter(jobId, id, fields));
}

/** Puts dead letters (all, or `ids`) back in their band with fresh attempts; returns how many. */
export async function replayDeadLetters(
  access: RedisAccess,
  base: string,
  ids?: readonly string[],
): Promise<number> {
  const selected = ids ?? (await access.redis.xrange(`${base}:dlq`, "-", "+")).map(([id]) => id);
  let replayed = 0;
  for (let i = 0; i < selected.length; i += REPLAY_BATCH) {
    const batch = selected.slice(i, i + REPLAY_BATCH);
    replayed += await access.script("ttgReplay", [base, ...batch]) as number;
  }
  return replayed;
}

/** Deletes dead letters (all, or `ids`), keeping the count of malformed ones; returns how many. */
export async function purgeDeadLetters(
  access: RedisAccess,
  base: string,
  ids?: readonly string[],
): Promise<number> {
  if (!ids) return await access.script("ttgPurge", [base]) as number;
  let purged = 0;
  for (let i = 0; i < ids.length; i += REPLAY_BATCH) {
    purged += await access.script("ttgPurge", [base, ...ids.slice(i, i + REPLAY_BATCH)]) as number;
  }
  return purged;
}
