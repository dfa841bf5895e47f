/**
 * Every Lua script of the Redis broker, by the command name it is defined under (ioredis
 * `defineCommand`); one module per group: claim.ts (intake), commit.ts (ack, nack, extend),
 * reclaim.ts (takeover, expire), reads.ts (stats, results, dead letters), control.ts (the
 * key-value store, cancelling queued chunks); prelude.ts holds the helpers they share and the key
 * layout.
 *
 * @module
 */
import { CLAIM_SCRIPTS } from "./claim.ts";
import { COMMIT_SCRIPTS } from "./commit.ts";
import { CONTROL_SCRIPTS } from "./control.ts";
import type { ScriptSource } from "./prelude.ts";
import { READ_SCRIPTS } from "./reads.ts";
import { RECLAIM_SCRIPTS } from "./reclaim.ts";

/** Every script of the broker. */
export const SCRIPTS = {
  ...CLAIM_SCRIPTS,
  ...COMMIT_SCRIPTS,
  ...RECLAIM_SCRIPTS,
  ...READ_SCRIPTS,
  ...CONTROL_SCRIPTS,
} as const satisfies Readonly<Record<string, ScriptSource>>;

/** Name of a broker script. */
export type ScriptName = keyof typeof SCRIPTS;
