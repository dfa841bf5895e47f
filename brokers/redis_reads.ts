/**
 * The Redis broker's reads and dead-letter operations on one job (stats, results, list, replay,
 * purge), as functions of a connection and the job's key base; redis.ts wraps them with its
 * closed check and error translation.
 *
 * @module
 */
import type { Redis } from "ioredis";
import type { BrokerStats, DeadLetter, StoredResult } from "./contract.ts";
import { decodeDeadLetter, decodeResult } from "./redis_codec.ts";
import type { ScriptName } from "./redis_scripts_upkeep.ts";

/** What the reads need of the broker: its connection and its scripts. */
export interface RedisAccess {
  /** The main connection. */
  readonly redis: Redis;
  /** Runs a broker script (EVALSHA, loading it when Redis lost it). */
  script(name: ScriptName, args: (string | number)[]): Promise<unknown>;
}

/** Legacy results absorbed per script call. */
const ABSORB_LIMIT = 10_000;
/** Results-stream entries read per page by results(). */
const RESULTS_PAGE = 5000;
/** Dead letters replayed per script call. */
const REPLAY_BATCH = 500;

/** A JSON array from a script (Lua's cjson encodes an empty table as `{}`). */
export function arrayOf<T>(value: T[] | Record<string, never>): T[] {
  return Array.isArray(value) ? value : [];
}

/**
 * Counts of a job in one script call (more only while legacy results remain to be counted);
 * consumers are those seen within `windowMs`.
 */
export async function readStats(
  access: RedisAccess,
  base: string,
  windowMs: number,
): Promise<BrokerStats> {
  for (;;) {
    const v = await access.script("ttgStats", [base, windowMs, ABSORB_LIMIT]) as number[];
    if (v[10] === 1) continue; // legacy results left to count: count them first
    return {
      ready: v[0]!,
      inFlight: v[1]!,
      delayed: v[2]!,
      deadLettered: v[3]!,
      completed: v[4]!,
      duplicates: v[5]!,
      zombies: v[6]!,
      retried: v[7]!,
      reclaimed: v[8]!,
      consumers: v[9]!,
    };
  }
}

/** The counted result of every completed chunk, ours and legacy workers', in stream order. */
export async function readResults(access: RedisAccess, base: string): Promise<StoredResult[]> {
  while (await access.script("ttgAbsorb", [base, ABSORB_LIMIT]) === 1) {
    // counting legacy results, a page at a time
  }
  const out: StoredResult[] = [];
  for (let start = "";;) {
    const page = JSON.parse(
      await access.script("ttgResults", [base, start, RESULTS_PAGE]) as string,
    ) as [string, string[][]];
    for (const fields of arrayOf(page[1])) out.push(decodeResult(fields));
    if (page[0] === "") return out;
    start = page[0];
  }
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

/** Deletes dead letters (all, or `ids`); returns how many. */
export async function purgeDeadLetters(
  access: RedisAccess,
  base: string,
  ids?: readonly string[],
): Promise<number> {
  const key = `${base}:dlq`;
  if (ids) return ids.length ? await access.redis.xdel(key, ...ids) : 0;
  const reply = await access.redis.multi().xlen(key).del(key).exec();
  return Number(reply?.[0]?.[1] ?? 0);
}
