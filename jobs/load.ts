/**
 * Finds a job: a built-in by name, or a user module whose default export is a job.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { TtgError } from "../errors.ts";
import { CMD_HANDLER_PREFIX, CMD_REDUCE_JOBS } from "./command_job.ts";
import { isJob, type Job } from "./define_job.ts";
import { permissionsProblem } from "./permissions.ts";
import sweep from "./sweep.ts";

/** A loaded job and where it came from (threads import the same module). */
export interface LoadedJob {
  readonly job: Job;
  /** The module URL, for handler threads; null for built-in jobs loaded by name. */
  readonly moduleUrl: string | null;
}

/**
 * Built-in jobs by name: the sweep, and the reducers of `--cmd` jobs (`ttg.cmd.sum`, …), so a
 * report reduces a job by the handler its record names.
 */
export const BUILTIN_JOBS: ReadonlyMap<string, Job> = new Map([
  [sweep.name, sweep as Job],
  ...CMD_REDUCE_JOBS,
]);

/** URL of the built-in sweep module, for handler threads. */
export const SWEEP_MODULE_URL: string = new URL("./sweep.ts", import.meta.url).href;

/**
 * Loads a job from a module path or URL (default export), or returns the built-in `ttg.sweep`
 * when `specifier` is empty. Fails with a `TtgError` code `JOB_LOAD` naming the file.
 */
export async function loadJob(specifier?: string): Promise<LoadedJob> {
  if (!specifier) return { job: sweep as Job, moduleUrl: SWEEP_MODULE_URL };
  if (specifier === sweep.name) return { job: sweep as Job, moduleUrl: SWEEP_MODULE_URL };
  if (specifier.startsWith(CMD_HANDLER_PREFIX)) {
    throw new TtgError(
      "JOB_LOAD",
      `Cannot load job "${specifier}": it is the handler of --cmd jobs (give the command with --cmd)`,
    );
  }
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
    throw new TtgError("JOB_LOAD", `Cannot load job "${specifier}": ${importFailure(error, url)}`, {
      cause: error,
    });
  }
  if (!isJob(module.default)) {
    throw new TtgError(
      "JOB_LOAD",
      `Cannot load job "${specifier}": its default export is not a job (use export default defineJob({ name, run }))`,
    );
  }
  const problem = permissionsProblem((module.default as Job).permissions);
  if (problem) {
    throw new TtgError("JOB_LOAD", `Cannot load job "${specifier}": its permissions: ${problem}`);
  }
  return { job: module.default, moduleUrl: url };
}

/**
 * One line for a module that failed to load, with where: `SyntaxError: Expression expected at
 * /path/job.ts:4:21` (Deno puts the location of a syntax error on a later line of its message;
 * for an error thrown while the module ran, the first stack frame in the module gives it).
 */
function importFailure(error: unknown, url: string): string {
  if (!(error instanceof Error)) return String(error);
  const [first = "", ...rest] = error.message.split("\n");
  const fromMessage = rest.map((line) => line.trim().match(/^at (\S+:\d+:\d+)$/)?.[1]);
  const fromStack = (error.stack ?? "").split("\n").map((line) =>
    line.match(/\(?((?:file|https?):\/\/[^\s()]+:\d+:\d+)\)?$/)?.[1]
  ).filter((at) => at?.startsWith(url));
  const at = fromMessage.find(Boolean) ?? fromStack[0];
  return at ? `${first} at ${displayLocation(at)}` : first;
}

/** `file:///a/b.ts:4:21` → `/a/b.ts:4:21`; other URLs as they are. */
function displayLocation(location: string): string {
  const [, where = location, line, column] = location.match(/^(.*):(\d+):(\d+)$/) ?? [];
  if (!where.startsWith("file:")) return location;
  return `${fileURLToPath(where)}:${line}:${column}`;
}
