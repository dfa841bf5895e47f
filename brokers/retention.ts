/**
 * Retention of finished jobs, decided once for every broker: a job's data expires a time to live
 * after the job finished (completed, failed, or cancelled with nothing in flight). The time to
 * live is the job record's own (`ttg submit --ttl`), else the broker-wide default
 * (`ttg retention --default`); without either, a job is kept until `ttg reset`. A job is first
 * seen finished by whoever applies retention (fleet workers, the exporter, `ttg jobs`), which
 * records when; it is reset once that time plus its time to live has passed. A job that runs
 * again (dead letters replayed) loses the mark and is timed afresh when it finishes again.
 *
 * @module
 */
import type { BrokerStats } from "./broker.ts";
import { type DriverKv, jobState, type JobSummary } from "./registry.ts";

/** The broker-wide settings' key of the default time to live, in seconds. */
export const DEFAULT_TTL_KEY = "job_ttl_seconds";

/** What retention needs of a broker. */
export interface RetentionTarget {
  readonly kv: DriverKv;
  listJobs(): Promise<JobSummary[]>;
  stats(jobId: string): Promise<BrokerStats>;
  reset(jobId: string): Promise<void>;
}

/** What one pass of retention did. */
export interface RetentionOutcome {
  /** Jobs whose data was deleted, their time to live past. */
  readonly expired: readonly string[];
  /** Jobs seen finished for the first time (their time to live starts now). */
  readonly marked: readonly string[];
}

/** The broker-wide default time to live in seconds, or null when there is none. */
export async function defaultTtlSeconds(kv: DriverKv): Promise<number | null> {
  const raw = await kv.get("settings", DEFAULT_TTL_KEY);
  const value = raw === null ? NaN : Number(raw);
  return Number.isFinite(value) && value > 0 ? value : null;
}

/** Sets (or, with null, removes) the broker-wide default time to live. */
export async function setDefaultTtlSeconds(kv: DriverKv, seconds: number | null): Promise<void> {
  if (seconds === null) await kv.delete("settings", DEFAULT_TTL_KEY);
  else await kv.put("settings", DEFAULT_TTL_KEY, String(seconds));
}

/**
 * One pass of retention at `now`: marks newly finished jobs, deletes the ones whose time to live
 * has passed since they finished, and forgets the mark of a job that runs again.
 */
export async function applyRetention(
  target: RetentionTarget,
  now: number = Date.now(),
): Promise<RetentionOutcome> {
  const fallback = await defaultTtlSeconds(target.kv);
  const marks = new Map(await target.kv.list("finished"));
  const expired: string[] = [];
  const marked: string[] = [];
  for (const job of await target.listJobs()) {
    const ttl = job.record.ttlSeconds ?? fallback;
    const mark = marks.get(job.jobId);
    if (ttl === null && mark === undefined) continue;
    const stats = await target.stats(job.jobId);
    const state = jobState(job.control, stats);
    const finished = (state === "completed" || state === "failed" ||
      (state === "cancelled" && stats.inFlight === 0)) && stats.ready + stats.delayed === 0;
    if (!finished) {
      if (mark !== undefined) await target.kv.delete("finished", job.jobId);
      continue;
    }
    if (ttl === null) continue;
    if (mark === undefined) {
      await target.kv.put("finished", job.jobId, new Date(now).toISOString());
      marked.push(job.jobId);
    } else if (now - Date.parse(mark) >= ttl * 1000) {
      await target.reset(job.jobId);
      expired.push(job.jobId);
    }
  }
  return { expired, marked };
}

/** When a finished job expires, from its mark and time to live (null: never). */
export function expiresAt(mark: string | null, ttlSeconds: number | null): Date | null {
  if (mark === null || ttlSeconds === null) return null;
  return new Date(Date.parse(mark) + ttlSeconds * 1000);
}
