/**
 * Which jobs a fleet serves, for the generated objects: the glob on job ids that
 * `ttg worker --jobs` reads, translated once in workers/job_glob.ts.
 *
 * @module
 */
import { globRegex } from "../workers/job_glob.ts";

export { globRegex };

/**
 * Whether a fleet serving `glob` (undefined: every job) serves job `jobId`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { servesJob } from "./job_glob.ts";
 * assert.ok(servesJob("nightly-*", "nightly-7") && !servesJob("nightly-*", "adhoc"));
 * ```
 */
export function servesJob(glob: string | undefined, jobId: string): boolean {
  return glob === undefined || new RegExp(`^(?:${globRegex(glob)})$`).test(jobId);
}
