/**
 * Globs on job ids, as `ttg worker --jobs` reads them: `*` any run of characters, `?` one,
 * `[...]` one of a set, everything else literal. One translation to a regex, shared by the fleet
 * worker (job_catalog.ts) and the generated KEDA queries (deploy/keda_fleet.ts), so that the two
 * never disagree on which jobs a fleet serves. A leaf module: deploy/ imports it without the
 * worker's runtime.
 *
 * @module
 */

/**
 * A glob on job ids (`*`, `?`, `[...]`, as `ttg worker --jobs` reads it) as an RE2 regex, which
 * PromQL anchors at both ends.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { globRegex } from "./job_glob.ts";
 * assert.equal(globRegex("nightly-*"), "nightly-.*");
 * assert.equal(globRegex("v1.?"), "v1\\..");
 * ```
 */
export function globRegex(glob: string): string {
  let source = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") source += ".*";
    else if (c === "?") source += ".";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 1);
      if (end < 0) source += "\\[";
      else {
        source += `[${glob.slice(i + 1, end).replace(/[\\^]/g, "\\$&")}]`;
        i = end;
      }
    } else source += c.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  return source;
}

/**
 * A matcher of job ids for a glob.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { globMatcher } from "./job_glob.ts";
 * const nightly = globMatcher("nightly-*");
 * assert.ok(nightly("nightly-2026-12-01") && !nightly("adhoc-1"));
 * ```
 */
export function globMatcher(glob: string): (jobId: string) => boolean {
  const re = new RegExp(`^(?:${globRegex(glob)})$`);
  return (jobId) => re.test(jobId);
}
