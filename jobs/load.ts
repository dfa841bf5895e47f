/**
 * Finds a job: a built-in by name, or a user module whose default export is a job.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { TtgError } from "../brokers/errors.ts";
import { isJob, type Job } from "./define_job.ts";
import sweep from "./sweep.ts";

/** A loaded job and where it came from (threads import the same module). */
export interface LoadedJob {
  readonly job: Job;
  /** The module URL, for handler threads; null for built-in jobs loaded by name. */
  readonly moduleUrl: string | null;
}

/** Built-in jobs by name. */
export const BUILTIN_JOBS: ReadonlyMap<string, Job> = new Map([[sweep.name, sweep as Job]]);

/** URL of the built-in sweep module, for handler threads. */
export const SWEEP_MODULE_URL: string = new URL("./sweep.ts", import.meta.url).href;

/**
 * Loads a job from a module path or URL (default export), or returns the built-in `ttg.sweep`
 * when `specifier` is empty. Fails with a `TtgError` code `JOB_LOAD` naming the file.
 */
export async function loadJob(specifier?: string): Promise<LoadedJob> {
  if (!specifier) return { job: sweep as Job, moduleUrl: SWEEP_MODULE_URL };
  const builtin = BUILTIN_JOBS.get(specifier);
  if (builtin) return { job: builtin, moduleUrl: SWEEP_MODULE_URL };
  const url = /^[a-z][a-z0-9+.-]*:/i.test(specifier) && !/^[a-z]:[\\/]/i.test(specifier)
    ? specifier
    : pathToFileURL(isAbsolute(specifier) ? specifier : resolve(specifier)).href;
  if (url.startsWith("file:")) {
    try {
      await Deno.stat(new URL(url));
    } catch {
      throw new TtgError("JOB_LOAD", `Cannot load job "${specifier}": the file does not exist`);
    }
  }
  let module: Record<string, unknown>;
  try {
    module = await import(url);
  } catch (error) {
    const detail = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new TtgError("JOB_LOAD", `Cannot load job "${specifier}": ${detail}`, { cause: error });
  }
  if (!isJob(module.default)) {
    throw new TtgError(
      "JOB_LOAD",
      `Cannot load job "${specifier}": its default export is not a job (use export default defineJob({ name, run }))`,
    );
  }
  return { job: module.default, moduleUrl: url };
}
