/**
 * The settings of what a job is and how it is served: its arguments (`--args`), time to live
 * (`--ttl`), the jobs a fleet worker serves (`--all-jobs`, `--jobs`), and a handler program
 * (`--cmd`, `--cmd-env`).
 *
 * @module
 */
import { ConfigError } from "../errors.ts";
import { parseDuration } from "./duration.ts";
import type { Resolver } from "./settings_source.ts";

/** Argument names the sweep flags set (`--work-ms`, `--fault-rate`), so `--args` cannot. */
const SWEEP_ARGS: Readonly<Record<string, string>> = {
  work_ms: "--work-ms",
  fault_rate: "--fault-rate",
};

/** `--args` / TTG_ARGS: a JSON object, or a ConfigError naming the setting (one line). */
export function jobArgs(r: Resolver): Readonly<Record<string, unknown>> {
  const src = r.source("--args", ["TTG_ARGS"]);
  if (!src) return {};
  const shown = src.raw.replace(/\s+/g, " ").trim();
  const fail = (why: string) =>
    new ConfigError(
      src.name,
      `Invalid ${src.name} "${
        shown.length > 80 ? `${shown.slice(0, 79)}…` : shown
      }": expected a JSON object such as {"bad": true}, ${why}`,
    );
  let value: unknown;
  try {
    value = JSON.parse(src.raw);
  } catch (error) {
    throw fail(`got invalid JSON (${(error as Error).message})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw fail(`got ${Array.isArray(value) ? "an array" : value === null ? "null" : typeof value}`);
  }
  const taken = Object.keys(value).find((key) => key in SWEEP_ARGS);
  if (taken) throw fail(`without "${taken}" (set it with ${SWEEP_ARGS[taken]})`);
  return value as Record<string, unknown>;
}

/** `--ttl` / TTG_JOB_TTL: a duration (`7d`, `12h`, `3600`), in seconds; 0 when unset. */
export function ttlSetting(r: Resolver): number {
  const src = r.source("--ttl", ["TTG_JOB_TTL"]);
  if (!src) return 0;
  const seconds = parseDuration(src.raw);
  if (seconds === undefined || seconds < 1) {
    throw ConfigError.invalid(
      src.name,
      src.raw,
      "a duration such as 7d, 12h, 30m or 3600 (seconds)",
    );
  }
  return seconds;
}

/** `--jobs PATTERN`, or `*` for `--all-jobs`; "" for a one-job worker. */
export function jobsPattern(r: Resolver): string {
  const all = r.boolean("--all-jobs", ["TTG_ALL_JOBS"], false);
  const src = r.source("--jobs", ["TTG_JOBS"]);
  if (all && src) {
    throw new ConfigError(
      src.name,
      `Invalid ${src.name} "${src.raw}": --all-jobs already serves every job`,
    );
  }
  if (!src) return all ? "*" : "";
  if (!/^[A-Za-z0-9._*?[\]-]{1,63}$/.test(src.raw)) {
    throw ConfigError.invalid(
      src.name,
      src.raw,
      'a glob on job ids (letters, digits, ".", "_", "-", "*", "?" or [...])',
    );
  }
  return src.raw;
}

/**
 * `--cmd`: a JSON array of strings is the argv itself (no shell); anything else is a command
 * line for `/bin/sh -c`.
 */
export function commandSetting(r: Resolver): string[] {
  const src = r.source("--cmd", ["TTG_CMD"]);
  if (!src || src.raw.trim() === "") return [];
  if (!src.raw.trim().startsWith("[")) return ["/bin/sh", "-c", src.raw];
  let argv: unknown;
  try {
    argv = JSON.parse(src.raw);
  } catch {
    argv = undefined;
  }
  if (
    !Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === "string") ||
    argv[0] === ""
  ) {
    throw ConfigError.invalid(
      src.name,
      src.raw,
      'a command line, or a JSON array of strings such as ["python3", "sim.py"]',
    );
  }
  return argv;
}

export function commandEnvSetting(r: Resolver): string[] {
  const src = r.source("--cmd-env", ["TTG_CMD_ENV"]);
  if (!src) return [];
  const names = src.raw.split(",").map((n) => n.trim()).filter((n) => n !== "");
  if (!names.every((n) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(n))) {
    throw ConfigError.invalid(src.name, src.raw, "environment variable names separated by commas");
  }
  return names;
}
