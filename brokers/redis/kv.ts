/**
 * The Redis broker's key-value store ({@linkcode DriverKv}), on which registry.ts builds the job
 * index, job controls and the fleet registry: one script per call (scripts/control.ts), with
 * times from the Redis clock, so every consumer agrees on what expired.
 *
 * @module
 */
import type { DriverKv, KvSpace } from "../registry.ts";
import { kvKey } from "./codec.ts";
import type { ScriptName } from "./scripts/mod.ts";

/** Runs a broker script. */
export type ScriptRunner = (name: ScriptName, args: (string | number)[]) => Promise<unknown>;

/** The store of the keys under `prefix`, through `script`. */
export function redisKv(script: ScriptRunner, prefix: string): DriverKv {
  const hash = (space: KvSpace) => kvKey(prefix, space);
  return {
    async put(space, key, value, options = {}) {
      const ttl = options.ttlMs === undefined ? "" : Math.max(1, Math.ceil(options.ttlMs));
      const [when, expected] = options.ifAbsent
        ? ["absent", ""]
        : options.ifValue !== undefined
        ? ["value", options.ifValue]
        : ["always", ""];
      return await script("ttgKvPut", [hash(space), key, value, ttl, when, expected]) === 1;
    },
    async get(space, key) {
      const value = await script("ttgKvGet", [hash(space), key]);
      return value === null ? null : String(value);
    },
    async list(space) {
      const flat = await script("ttgKvList", [hash(space)]) as string[];
      const out: [string, string][] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
      return out;
    },
    async delete(space, key) {
      await script("ttgKvDelete", [hash(space), key]);
    },
  };
}
