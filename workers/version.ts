/**
 * TTG's version, from deno.json (bundled and compiled programs carry it inlined).
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };

/** The version of this TTG. */
export const VERSION: string = denoJson.version;
