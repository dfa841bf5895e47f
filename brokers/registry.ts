/**
 * What a broker keeps besides chunks, built once over each driver's small key-value store
 * ({@linkcode DriverKv}): the index of its jobs with their control state (running, paused,
 * cancelled), and the fleet registry, where every worker refreshes its record on its heartbeat.
 * A driver only makes its store's writes durable and its reads consistent; what the records mean
 * (which job state, when a worker is lost) is decided here.
 *
 * @module
 */
import type { JobRecord } from "./task.ts";

/** What operators set on a job: whether its chunks are handed out. */
export type JobControl = "running" | "paused" | "cancelled";

/** A job's state as users see it: its control, or, once nothing is left to do, how it ended. */
export type JobState = "running" | "paused" | "cancelled" | "completed" | "failed";

/** What an operator can do to a job. */
export type ControlAction = "pause" | "resume" | "cancel";

/** What a control action did. */
export interface ControlOutcome {
  /** The control state before. */
  readonly before: JobControl;
  /** The control state after. */
  readonly after: JobControl;
  /** Queued chunks (ready or waiting for a retry) cancelled by this action. */
  readonly cancelled: number;
}

/** One job of a broker, as listed. */
export interface JobSummary {
  /** The job's id. */
  readonly jobId: string;
  /** The job's record (as `createJob` stored it). */
  readonly record: JobRecord;
  /** Its control state. */
  readonly control: JobControl;
}

/** What a worker is doing, as it tells the registry. */
export type WorkerActivity = "starting" | "busy" | "idle" | "draining" | "stopped";

/** A chunk a worker gave back for a retry, until the retry is due. */
export interface RetryingChunk {
  /** The job of the chunk. */
  readonly jobId: string;
  /** The chunk given back. */
  readonly chunkId: string;
  /** ISO 8601 time the retry is due. */
  readonly until: string;
}

/** A worker's record, as it reports it on its heartbeat. */
export interface WorkerReportInput {
  /** The worker's id (unique in its fleet). */
  readonly workerId: string;
  /** Host name of its machine. */
  readonly host: string;
  /** Kubernetes pod (from the downward API), "" elsewhere. */
  readonly pod: string;
  /** Kubernetes node (from the downward API), "" elsewhere. */
  readonly node: string;
  /** Its process id. */
  readonly pid: number;
  /** TTG's version. */
  readonly version: string;
  /** The job it serves, or the glob on job ids a fleet worker serves (`*` for every job). */
  readonly jobId: string;
  /** A fleet worker's jobs served now (at most {@linkcode HOLDING_SHOWN}). */
  readonly jobs?: readonly string[];
  /** Jobs a fleet worker leaves out because it cannot load their handler, with why. */
  readonly unloadable?: Readonly<Record<string, string>>;
  /** ISO 8601 time it started. */
  readonly startedAt: string;
  /** What it is doing. */
  readonly state: WorkerActivity;
  /** Chunks and parameters whose results it stored. */
  readonly chunks: number;
  /** Parameters of those chunks. */
  readonly params: number;
  /** Chunks it holds now. */
  readonly inFlight: number;
  /** Ids of the chunks its handlers are running now (at most {@linkcode HOLDING_SHOWN}). */
  readonly running: readonly string[];
  /** The job of each of `running` (a fleet worker runs chunks of several jobs at once). */
  readonly runningJobs?: readonly string[];
  /**
   * Chunks it gave back for a retry that is not due yet, each with its job and when the retry is
   * due (ISO 8601; at most {@linkcode HOLDING_SHOWN}).
   */
  readonly retrying?: readonly RetryingChunk[];
  /** Handler failures so far (thrown errors and failed processes; timeouts are counted apart). */
  readonly failures: number;
  /** Handler timeouts so far. */
  readonly timeouts: number;
  /** How often it reports: it is lost once its record is several of these old. */
  readonly heartbeatMs: number;
}

/** A worker as the registry shows it. */
export interface WorkerRecord extends Omit<WorkerReportInput, "state"> {
  /** Its reported state, or `lost`: not stopped, and not seen for several heartbeats. */
  readonly state: WorkerActivity | "lost";
  /** ISO 8601 time of its last report. */
  readonly lastSeen: string;
}

/** The fleet as the broker sees it. */
export interface FleetRegistry {
  /** Writes or refreshes a worker's record (the registry stamps `lastSeen`). */
  report(record: WorkerReportInput): Promise<void>;
  /**
   * Every worker the registry remembers, lost ones included; with `jobId`, the ones that serve
   * the job or cannot load its handler ({@linkcode workerSeesJob}).
   */
  list(options?: { readonly jobId?: string }): Promise<WorkerRecord[]>;
}

/**
 * The spaces of a driver's key-value store: the job index, job controls, the fleet registry,
 * broker-wide settings, and when each job was first seen finished (retention.ts).
 */
export type KvSpace = "jobs" | "controls" | "workers" | "settings" | "finished";

/** Options of {@linkcode DriverKv.put}: a time to live, and at most one condition. */
export interface KvPutOptions {
  readonly ttlMs?: number;
  readonly ifAbsent?: boolean;
  readonly ifValue?: string;
}

/**
 * A driver's small key-value store: a value per (space, key), JSON or a plain word, optionally
 * expiring. `controls` values are plain words (`running`, `paused`, `cancelled`), so a driver
 * can read a job's control inside its own atomic steps.
 */
export interface DriverKv {
  /**
   * Writes a value. With `ifAbsent`, only when there is none; with `ifValue`, only when the live
   * value is exactly that one (a compare-and-set). Resolves false when the condition kept it out.
   */
  put(space: KvSpace, key: string, value: string, options?: KvPutOptions): Promise<boolean>;
  get(space: KvSpace, key: string): Promise<string | null>;
  /** Every live entry of the space. */
  list(space: KvSpace): Promise<[key: string, value: string][]>;
  delete(space: KvSpace, key: string): Promise<void>;
}

/** Most running chunk ids a worker's record lists. */
export const HOLDING_SHOWN = 64;
/** A worker is lost once its record is this many heartbeats old (and at least a second). */
export const LOST_AFTER_HEARTBEATS = 5;
/** Worker records expire this long after their last report. */
export const WORKER_RECORD_TTL_MS = 15 * 60_000;

const CONTROLS: ReadonlySet<string> = new Set(["running", "paused", "cancelled"]);

/** A stored control word read back (anything else reads as `running`). */
export function readControl(value: string | null): JobControl {
  return value !== null && CONTROLS.has(value) ? value as JobControl : "running";
}

/**
 * The state users see: a paused or cancelled control wins; a running job with nothing left to do
 * is `completed`, or `failed` when some of its chunks were dead-lettered.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { jobState } from "./registry.ts";
 * assert.equal(jobState("running", { ready: 0, inFlight: 0, delayed: 0, completed: 5, deadLettered: 1 }), "failed");
 * assert.equal(jobState("paused", { ready: 3, inFlight: 0, delayed: 0, completed: 5, deadLettered: 0 }), "paused");
 * ```
 */
export function jobState(
  control: JobControl,
  counts: {
    readonly ready: number;
    readonly inFlight: number;
    readonly delayed: number;
    readonly completed: number;
    readonly deadLettered: number;
  },
): JobState {
  if (control !== "running") return control;
  if (counts.ready + counts.inFlight + counts.delayed > 0) return "running";
  if (counts.completed + counts.deadLettered === 0) return "running"; // nothing published yet
  return counts.deadLettered > 0 ? "failed" : "completed";
}

/** The next control state after `action`, or why it does not apply. */
export function nextControl(before: JobControl, action: ControlAction): JobControl {
  if (before === "cancelled") return "cancelled"; // final
  if (action === "cancel") return "cancelled";
  return action === "pause" ? "paused" : "running";
}

/** Compare-and-set rounds a control change tries before it gives up (each lost to another). */
const CONTROL_ROUNDS = 50;

/**
 * Changes a job's stored control word by `action` as a compare-and-set, so that controls sent at
 * once never undo one another: a pause that read "running" cannot overwrite a cancel written
 * since (cancelling stays final). Returns the word it replaced and the word now stored.
 */
export async function swapControl(
  kv: DriverKv,
  jobId: string,
  action: ControlAction,
): Promise<{ before: JobControl; after: JobControl }> {
  for (let round = 0; round < CONTROL_ROUNDS; round++) {
    const stored = await kv.get("controls", jobId);
    const before = readControl(stored);
    const after = nextControl(before, action);
    if (after === before) return { before, after };
    const condition = stored === null ? { ifAbsent: true } : { ifValue: stored };
    if (await kv.put("controls", jobId, after, condition)) return { before, after };
  }
  throw new Error(
    `the control of job "${jobId}" kept changing under ${CONTROL_ROUNDS} attempts to ${action} it`,
  );
}

/**
 * The ids of the chunks of `jobId` that a worker's record says it is running: all of `running`
 * for a record that does not name their jobs (a worker of one job, or an older TTG).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runningOf } from "./registry.ts";
 * const record = { running: ["00001", "00001"], runningJobs: ["a", "b"] };
 * assert.deepEqual(runningOf(record, "b"), ["00001"]);
 * assert.deepEqual(runningOf({ running: ["00004"] }, "a"), ["00004"]);
 * ```
 */
export function runningOf(
  record: Pick<WorkerReportInput, "running" | "runningJobs">,
  jobId: string,
): string[] {
  const running = record.running ?? [];
  const jobs = record.runningJobs;
  if (!jobs || jobs.length !== running.length) return [...running];
  return running.filter((_, i) => jobs[i] === jobId);
}

/** The fleet registry over a driver's store. */
export function fleetRegistry(kv: DriverKv, now: () => number = Date.now): FleetRegistry {
  return {
    async report(record) {
      const stored = { ...record, lastSeen: new Date(now()).toISOString() };
      await kv.put("workers", record.workerId, JSON.stringify(stored), {
        ttlMs: WORKER_RECORD_TTL_MS,
      });
    },
    async list(options = {}) {
      const out: WorkerRecord[] = [];
      for (const [, value] of await kv.list("workers")) {
        let record: WorkerRecord;
        try {
          record = JSON.parse(value) as WorkerRecord;
        } catch {
          continue; // not a record of ours
        }
        if (options.jobId !== undefined && !workerSeesJob(record, options.jobId)) continue;
        const age = now() - Date.parse(record.lastSeen);
        const lost = record.state !== "stopped" &&
          age > Math.max(1000, LOST_AFTER_HEARTBEATS * record.heartbeatMs);
        out.push(lost ? { ...record, state: "lost" } : record);
      }
      return out.sort((a, b) => a.workerId.localeCompare(b.workerId));
    },
  };
}

/**
 * Whether a worker's record concerns `jobId`: it serves the job (its own worker, or a fleet
 * worker listing it), or it is a fleet worker that cannot load the job's handler.
 */
export function workerSeesJob(
  record: Pick<WorkerReportInput, "jobId" | "jobs" | "unloadable">,
  jobId: string,
): boolean {
  return record.jobId === jobId || (record.jobs?.includes(jobId) ?? false) ||
    (record.unloadable !== undefined && Object.hasOwn(record.unloadable, jobId));
}

/** The settings key of the job index's version token. */
const JOBS_VERSION_KEY = "jobs-version";

/** The job index's version token ("" before any change). */
export async function jobsVersion(kv: DriverKv): Promise<string> {
  return await kv.get("settings", JOBS_VERSION_KEY) ?? "";
}

/** Gives the job index a new version token: call after the change is stored. */
export async function markJobsChanged(kv: DriverKv): Promise<void> {
  await kv.put("settings", JOBS_VERSION_KEY, crypto.randomUUID());
}

/** Every job of the index, with its control state. */
export async function listJobs(kv: DriverKv): Promise<JobSummary[]> {
  const [jobs, controls] = await Promise.all([kv.list("jobs"), kv.list("controls")]);
  const control = new Map(controls);
  const out: JobSummary[] = [];
  for (const [jobId, value] of jobs) {
    try {
      const record = JSON.parse(value) as JobRecord;
      out.push({ jobId, record, control: readControl(control.get(jobId) ?? null) });
    } catch {
      // not a record of ours
    }
  }
  return out.sort((a, b) => a.record.createdAt.localeCompare(b.record.createdAt));
}
