/**
 * Globs on job ids, as `ttg worker --jobs` reads them (workers/job_catalog.ts; deploy/ does not
 * import workers/, so tests/deploy_fleet_test.ts checks the two agree): `*` any run of
 * characters, `?` one, `[...]` one of a set, everything else literal.
 *
 * @module
 */

/**
 * A glob on job ids (`*`, `?`, `[...]`, as `ttg worker --jobs` reads it) as an RE2 regex, which
 * PromQL anchors at both ends.
 *
 * @example
 * ```ts
 * import { globRegex } from "./job_glob.ts";
 * console.assert(globRegex("nightly-*") === "nightly-.*");
 * console.assert(globRegex("v1.?") === "v1\\..");
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
 * Whether a fleet serving `glob` (undefined: every job) serves job `jobId`.
 *
 * @example
 * ```ts
 * import { servesJob } from "./job_glob.ts";
 * console.assert(servesJob("nightly-*", "nightly-7") && !servesJob("nightly-*", "adhoc"));
 * ```
 */
export function servesJob(glob: string | undefined, jobId: string): boolean {
  return glob === undefined || new RegExp(`^(?:${globRegex(glob)})$`).test(jobId);
}
