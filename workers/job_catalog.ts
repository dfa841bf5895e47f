/**
 * The jobs a worker serves and the handler of each: one fixed job ({@linkcode singleJob}), or,
 * for a fleet worker, every job of the broker whose id matches a glob ({@linkcode FleetCatalog}):
 * it keeps finding jobs submitted after it started, loads each job's module once (a built-in
 * name, or the module path its record names, resolved against `--jobs-dir`), keeps one handler
 * pool per module in use, shared by the jobs of that module, and frees pools idle for a while. A
 * job whose module cannot be loaded is left out of the pulls (logged once, listed in the worker's
 * record), never dead-lettered.
 *
 * @module
 */
import { isAbsolute, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Broker, JobRecord } from "../brokers/broker.ts";
import { errorMessage } from "../errors.ts";
import type { Job, Logger } from "../jobs/define_job.ts";
import { CMD_HANDLER_PREFIX } from "../jobs/command_job.ts";
import { BUILTIN_JOBS } from "../jobs/load.ts";
import type { ChunkExecutor } from "./executor.ts";
import { globMatcher } from "./job_glob.ts";

export { globMatcher };

/** A job's handler in a worker: its definition and where it runs. */
export interface JobHandler {
  /** The job's definition (its timeout, its name). */
  readonly job: Job;
  /** Where its handler runs (threads, the main thread, processes). */
  readonly executor: ChunkExecutor;
}

/** The jobs a worker pulls from and their handlers. */
export interface JobSource {
  /** What the worker's record names: the job id, or the glob a fleet worker serves. */
  readonly label: string;
  /** The jobs to pull from now. */
  ids(): readonly string[];
  /**
   * The handler of a job pulled from (one of `ids()`, its pool reopened if it was freed), marked
   * in use; undefined when the worker does not serve the job (any more).
   */
  acquire(jobId: string): Promise<JobHandler | undefined>;
  /** Marks one use of `acquire` done. */
  release(jobId: string): void;
  /** Jobs left out because their module cannot be loaded, with why. */
  unloadable(): ReadonlyMap<string, string>;
  /** Looks for new jobs and frees idle pools (a fleet's); a no-op for one job. */
  refresh(): Promise<void>;
  /** Closes every handler pool. */
  close(): Promise<void>;
}

/** The source of a worker of one job. */
export function singleJob(jobId: string, handler: JobHandler): JobSource {
  const ids = [jobId];
  return {
    label: jobId,
    ids: () => ids,
    acquire: (id) => Promise.resolve(id === jobId ? handler : undefined),
    release: () => {},
    unloadable: () => new Map(),
    refresh: () => Promise.resolve(),
    close: () => Promise.resolve(), // the caller owns the executor
  };
}

/** Where a job's handler comes from: a built-in, or a module file. */
export type HandlerSpec =
  | { readonly kind: "builtin"; readonly job: Job }
  | { readonly kind: "module"; readonly path: string };

/**
 * Where the handler of `record` comes from for a worker whose job modules live under `jobsDir`:
 * its built-in handler when it names no module, else its module path (a file URL or a path,
 * relative ones resolved against `jobsDir`), which must lie inside `jobsDir`. A string says why
 * the job cannot be served.
 */
export function handlerSpec(record: JobRecord, jobsDir: string): HandlerSpec | string {
  if (!record.module) {
    if (record.handler.startsWith(CMD_HANDLER_PREFIX)) {
      // The program is the submitter's setting, not the record's: a fleet never runs a command
      // that a job record names.
      return "its handler is a --cmd program, which a fleet worker does not take from a job record";
    }
    const job = BUILTIN_JOBS.get(record.handler);
    return job
      ? { kind: "builtin", job }
      : `its record names the handler "${record.handler}" but no module, and it is not built in`;
  }
  let path: string;
  if (/^file:/i.test(record.module)) path = fileURLToPath(record.module);
  else if (/^[a-z][a-z0-9+.-]*:/i.test(record.module)) {
    return `its module "${record.module}" is not a local file`;
  } else path = resolve(jobsDir, record.module);
  const root = resolve(jobsDir);
  const inside = relative(root, path);
  if (inside.startsWith("..") || isAbsolute(inside)) {
    return `its module "${record.module}" is outside the jobs directory "${root}"`;
  }
  return { kind: "module", path };
}

/** Makes a handler from where it comes from (the worker's executor choice); jobs share it. */
export type HandlerFactory = (spec: HandlerSpec) => Promise<JobHandler>;

/** Options of {@linkcode FleetCatalog}. */
export interface FleetCatalogOptions {
  /** The broker whose jobs are served. */
  readonly broker: Broker;
  /** Glob on job ids. */
  readonly pattern: string;
  /** Where relative module paths of job records are resolved (and modules must lie). */
  readonly jobsDir: string;
  /** Makes a handler (and its pool) from where it comes from. */
  readonly createHandler: HandlerFactory;
  /** Logs jobs that cannot be loaded (once each) and pools that fail to close. */
  readonly log: Logger;
  /** A pool unused this long is closed. @default 60000 */
  readonly idlePoolMs?: number;
  /** An unloadable job is tried again after this long (its module may be deployed). @default 30000 */
  readonly retryLoadMs?: number;
  /** Time source (tests). @default Date.now */
  readonly now?: () => number;
}

/** How often a fleet worker applies retention. */
const RETENTION_INTERVAL_MS = 60_000;
/**
 * How often the jobs are listed even if the index's version did not change: pools idle since,
 * and jobs whose module failed to load, are looked at again.
 */
const LIST_INTERVAL_MS = 1000;

/** A handler pool, shared by every served job whose handler comes from the same place. */
interface Pool {
  readonly spec: HandlerSpec;
  handler?: JobHandler;
  loading?: Promise<void>;
  lastUsed: number;
}

/** A served job: its pool, and its chunks running now (it stays while any runs, even gone). */
interface ServedJob {
  readonly key: string;
  uses: number;
}

/** The key of a pool: jobs with the same built-in or the same module file share one. */
function poolKey(spec: HandlerSpec): string {
  return spec.kind === "builtin" ? `builtin:${spec.job.name}` : `module:${spec.path}`;
}

/**
 * Every running job of a broker whose id matches a glob, and their handler pools. Jobs whose
 * handler comes from the same place share a pool (a sweep submitted a hundred times starts its
 * threads once, and a new job of a loaded module starts at once).
 */
export class FleetCatalog implements JobSource {
  readonly label: string;
  readonly #o: FleetCatalogOptions;
  readonly #matches: (jobId: string) => boolean;
  readonly #served = new Map<string, ServedJob>();
  readonly #pools = new Map<string, Pool>();
  readonly #failed = new Map<string, { reason: string; at: number }>();
  #ids: string[] = [];
  #retainedAt = -Infinity;
  #listed?: { readonly version: string; readonly at: number };
  readonly #now: () => number;

  /** Serves the jobs of `options.broker` matching `options.pattern`. */
  constructor(options: FleetCatalogOptions) {
    this.#o = options;
    this.label = options.pattern;
    this.#matches = globMatcher(options.pattern);
    this.#now = options.now ?? Date.now;
  }

  ids(): readonly string[] {
    return this.#ids;
  }

  /** Open handler pools (tests and the worker's record). */
  get pools(): number {
    return [...this.#pools.values()].filter((p) => p.handler).length;
  }

  async acquire(jobId: string): Promise<JobHandler | undefined> {
    const job = this.#served.get(jobId);
    const pool = job && this.#pools.get(job.key);
    if (!job || !pool) return undefined;
    job.uses += 1;
    if (!pool.handler) {
      pool.loading ??= this.#load(job.key, pool);
      await pool.loading;
    }
    pool.lastUsed = this.#now();
    if (pool.handler) return pool.handler;
    job.uses -= 1;
    return undefined;
  }

  release(jobId: string): void {
    const job = this.#served.get(jobId);
    if (!job) return;
    job.uses = Math.max(0, job.uses - 1);
    const pool = this.#pools.get(job.key);
    if (pool) pool.lastUsed = this.#now();
  }

  unloadable(): ReadonlyMap<string, string> {
    return new Map([...this.#failed].map(([id, f]) => [id, f.reason]));
  }

  /**
   * Reads the job index's version; when it changed (or a second passed), applies retention (at
   * most once a minute, so finished jobs' data expires while the fleet runs), lists the broker's
   * jobs, loads the new ones' pools, forgets removed jobs and frees idle pools.
   */
  async refresh(): Promise<void> {
    const now = this.#now();
    const version = await this.#o.broker.jobsVersion();
    const listed = this.#listed;
    if (listed?.version === version && now - listed.at < LIST_INTERVAL_MS) return;
    await this.#list(now);
    this.#listed = { version, at: now };
  }

  async #list(now: number): Promise<void> {
    if (now - this.#retainedAt >= RETENTION_INTERVAL_MS) {
      this.#retainedAt = now;
      const { expired } = await this.#o.broker.retention.apply(now);
      for (const jobId of expired) {
        this.#o.log.info("Job expired: its data was deleted", { job_id: jobId });
      }
    }
    const listed = (await this.#o.broker.listJobs()).filter((j) =>
      this.#matches(j.jobId) && j.control === "running"
    );
    const present = new Set(listed.map((j) => j.jobId));
    for (const { jobId, record } of listed) {
      if (this.#served.has(jobId)) continue;
      const failed = this.#failed.get(jobId);
      if (failed && now - failed.at < (this.#o.retryLoadMs ?? 30_000)) continue;
      const spec = handlerSpec(record, this.#o.jobsDir);
      if (typeof spec === "string") {
        this.#fail([jobId], spec);
        continue;
      }
      const key = poolKey(spec);
      this.#served.set(jobId, { key, uses: 0 });
      const pool: Pool = this.#pools.get(key) ?? { spec, lastUsed: now };
      this.#pools.set(key, pool);
      if (!pool.handler) pool.loading ??= this.#load(key, pool);
    }
    await Promise.all([...this.#pools.values()].map((p) => p.loading));
    for (const [jobId, job] of this.#served) {
      if (!present.has(jobId) && job.uses === 0) this.#served.delete(jobId);
    }
    const inUse = new Set<string>();
    const running = new Set<string>();
    for (const job of this.#served.values()) {
      inUse.add(job.key);
      if (job.uses > 0) running.add(job.key);
    }
    for (const [key, pool] of this.#pools) {
      if (running.has(key)) continue;
      const unused = !inUse.has(key);
      if (pool.handler && (unused || now - pool.lastUsed > (this.#o.idlePoolMs ?? 60_000))) {
        await this.#closePool(key, pool);
      }
      if (unused) this.#pools.delete(key);
    }
    // Idle pools are closed, not forgotten: a job keeps being pulled, its pool reopened on use.
    this.#ids = listed.map((j) => j.jobId).filter((id) => this.#served.has(id));
  }

  async close(): Promise<void> {
    for (const [key, pool] of this.#pools) {
      await pool.loading;
      if (pool.handler) await this.#closePool(key, pool);
    }
    this.#pools.clear();
    this.#served.clear();
    this.#ids = [];
  }

  async #load(key: string, pool: Pool): Promise<void> {
    try {
      pool.handler = await this.#o.createHandler(pool.spec);
      for (const jobId of this.#jobsOf(key)) {
        if (this.#failed.delete(jobId)) this.#o.log.info("Job's handler loaded", { job_id: jobId });
      }
    } catch (error) {
      const users = this.#jobsOf(key);
      this.#fail(users, errorMessage(error));
      for (const jobId of users) this.#served.delete(jobId);
      this.#pools.delete(key);
    } finally {
      pool.loading = undefined;
    }
  }

  /** The served jobs of the pool `key`. */
  #jobsOf(key: string): string[] {
    return [...this.#served].filter(([, job]) => job.key === key).map(([id]) => id);
  }

  /** Leaves jobs out of the pulls for a while, logging each the first time. */
  #fail(jobIds: readonly string[], reason: string): void {
    for (const jobId of jobIds) {
      if (!this.#failed.has(jobId)) {
        this.#o.log.warn("Cannot load the job's handler; not serving it", {
          job_id: jobId,
          reason,
        });
      }
      this.#failed.set(jobId, { reason, at: this.#now() });
    }
  }

  async #closePool(key: string, pool: Pool): Promise<void> {
    const handler = pool.handler!;
    pool.handler = undefined;
    await handler.executor.close().catch((error) =>
      this.#o.log.warn("Closing a handler pool failed", {
        pool: key,
        error: errorMessage(error),
      })
    );
  }
}
