/**
 * The `fleet` block of a deployment, resolved and checked, and what fleet mode rules out
 * elsewhere. A fleet is one standing Deployment of `ttg worker --all-jobs` (or `--jobs GLOB`)
 * with idle timeout 0: a worker that exits when idle would be restarted by the Deployment, and
 * a Job's settings (controller, backoff limit) have no Job to apply to. Outside fleet mode the
 * block is a problem, so a `--jobs` or `--submit` meant for a fleet is never silently ignored.
 *
 * @module
 */
import type { FieldReader, KnownFields } from "./field_reader.ts";
import { servesJob } from "./job_glob.ts";
import type { Mode } from "./props.ts";

/** The known fields of the block (merged into the config's). */
export const FLEET_FIELDS: KnownFields = { fleet: ["jobs", "jobsDir", "submit"] };

/**
 * Where the image holds job modules, unless configured. The image itself ships none: a derived
 * image copies them there (`COPY my_jobs/ /jobs/my_jobs/`), at the path relative to which they
 * are submitted.
 */
export const DEFAULT_JOBS_DIR = "/jobs";

/** The glob `ttg worker --jobs` accepts (workers/settings.ts): job-id characters and `*?[]`. */
const JOBS_GLOB = /^[A-Za-z0-9._*?[\]-]{1,63}$/;

/** The block, resolved. */
export interface FleetConfig {
  /** The glob on job ids the fleet serves; undefined: every job (`--all-jobs`). */
  readonly jobs: string | undefined;
  /** The image's directory of job modules (`--jobs-dir`). */
  readonly jobsDir: string;
  /** Whether a submit Job for the `job` block is generated beside the fleet. */
  readonly submit: boolean;
}

/** What the block is checked against. */
export interface FleetContext {
  readonly mode: Mode;
  /** The `workers` block's reader: fleet mode rules out some of its fields. */
  readonly workers: FieldReader;
  /** The resolved idle timeout (0 is the only one a fleet accepts). */
  readonly idleTimeoutSeconds: number;
  /** The `job` block's reader and id: a job submitted to the fleet must be one it serves. */
  readonly job: FieldReader;
  readonly jobId: string;
}

/**
 * Reads `fleet` from the top-level reader and checks the `workers` fields fleet mode rules out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveConfig } from "./config.ts";
 * const { config } = resolveConfig({ mode: "fleet", fleet: { jobs: "nightly-*" } });
 * assert.equal(config.fleet.jobs, "nightly-*");
 * assert.equal(config.fleet.jobsDir, "/jobs");
 * const { problems } = resolveConfig({ mode: "queue", fleet: { submit: true } });
 * assert.equal(problems[0]?.field, "fleet.submit");
 * ```
 */
export function resolveFleet(top: FieldReader, context: FleetContext): FleetConfig {
  const f = top.child("fleet");
  const fleet: FleetConfig = {
    jobs: f.optionalString(
      "jobs",
      JOBS_GLOB,
      'a glob on job ids (letters, digits, ".", "_", "-", "*", "?" or [...], at most 63)',
    ),
    jobsDir: f.string(
      "jobsDir",
      DEFAULT_JOBS_DIR,
      /^\/[A-Za-z0-9._/-]*$/,
      "an absolute directory in the image",
    ),
    submit: f.boolean("submit", false),
  };
  if (context.mode !== "fleet") {
    for (const key of FLEET_FIELDS.fleet!) {
      if (f.has(key)) {
        f.problem(
          key,
          `expected unset with mode "${context.mode}" (it configures mode "fleet"), got ${
            f.shown(key)
          }`,
        );
      }
    }
    return fleet;
  }
  const w = context.workers;
  if (w.has("controller")) {
    w.problem(
      "controller",
      `expected unset with mode "fleet" (the fleet is a Deployment), got ${w.shown("controller")}`,
    );
  }
  if (w.has("backoffLimit")) {
    w.problem(
      "backoffLimit",
      `expected unset with mode "fleet" (a Deployment restarts its pods; backoffLimit is a Job's), got ${
        w.shown("backoffLimit")
      }`,
    );
  }
  if (context.idleTimeoutSeconds !== 0 && w.has("idleTimeoutSeconds")) {
    w.problem(
      "idleTimeoutSeconds",
      `expected 0 with mode "fleet" (a fleet worker waits for jobs submitted later), got ${context.idleTimeoutSeconds}`,
    );
  }
  if (context.job.has("command")) {
    context.job.problem(
      "command",
      'expected unset with mode "fleet" (a fleet worker never runs a program that a job record names)',
    );
  }
  if (fleet.submit && !servesJob(fleet.jobs, context.jobId)) {
    context.job.problem(
      "id",
      `expected an id that fleet.jobs "${fleet.jobs}" matches (fleet.submit submits it to the fleet), got "${context.jobId}"`,
    );
  }
  return fleet;
}
