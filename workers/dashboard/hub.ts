/**
 * What every tab of a dashboard shares: one snapshot of the broker's jobs (workers/watch/
 * snapshot.ts) read at most once per interval, however many tabs ask (a read in progress is
 * joined, a failed read is remembered for the interval too, so a broker that is down is not
 * asked N times), the trends of those snapshots (workers/watch/history.ts), and per job the dead
 * letters and the sweep map, each read at most once per its own interval.
 *
 * @module
 */
import { eachResult } from "../../brokers/results.ts";
import type { Broker, DeadLetter } from "../../brokers/broker.ts";
import { runningOf } from "../../brokers/registry.ts";
import { errorMessage } from "../../errors.ts";
import { History } from "../watch/history.ts";
import { chunksOf, type JobView, readSnapshot, type Snapshot } from "../watch/snapshot.ts";
import { buildSweepMap, mapRefreshMs, MAX_CELLS, type SweepMap } from "./sweep_map.ts";

/** Options of {@linkcode DashboardHub}. */
export interface HubOptions {
  /** Least time between two snapshots (and two dead-letter reads of a job). @default 1000 */
  readonly intervalMs?: number;
  /** Most cells of a sweep map. @default {@linkcode MAX_CELLS} */
  readonly maxCells?: number;
  /** The clock. @default Date.now */
  readonly now?: () => number;
}

/** A sweep map as served: when it was built, and how long it is kept. */
export interface ServedMap extends SweepMap {
  readonly at: number;
  readonly refreshMs: number;
}

/** Dead letters of a job as served: the first ones, oldest first. */
export interface ServedDeadLetters {
  readonly at: number;
  readonly letters: readonly DeadLetter[];
}

/** The broker could not be read; the message says why. */
export class BrokerUnreachable extends Error {
  /** Wraps the read's error. */
  constructor(cause: unknown) {
    super(`Broker unreachable: ${errorMessage(cause)}`, { cause });
    this.name = "BrokerUnreachable";
  }
}

interface Cached<T> {
  readonly at: number;
  readonly value?: T;
  readonly error?: BrokerUnreachable;
}

/** The ids of the chunks of a job with a counted result (the one read of its results). */
async function completedChunkIds(broker: Broker, jobId: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const result of eachResult(broker, jobId)) ids.push(result.chunkId);
  return ids;
}

/** Most dead letters a job page lists. */
export const DEAD_LETTERS_SHOWN = 200;

/** The shared reads of one dashboard. */
export class DashboardHub {
  readonly broker: Broker;
  readonly history = new History();
  readonly #intervalMs: number;
  readonly #maxCells: number;
  readonly #now: () => number;
  #snapshot: Cached<Snapshot> | undefined;
  #reading: Promise<Snapshot> | undefined;
  readonly #letters = new Map<string, Cached<ServedDeadLetters>>();
  readonly #maps = new Map<string, { map: ServedMap; key: string }>();
  readonly #building = new Map<string, Promise<ServedMap>>();
  readonly #readingLetters = new Map<string, Promise<ServedDeadLetters>>();

  constructor(broker: Broker, options: HubOptions = {}) {
    this.broker = broker;
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#maxCells = options.maxCells ?? MAX_CELLS;
    this.#now = options.now ?? Date.now;
    if (!(this.#intervalMs > 0)) throw new RangeError(`Invalid intervalMs "${this.#intervalMs}"`);
  }

  /** Least time between two snapshots. */
  get intervalMs(): number {
    return this.#intervalMs;
  }

  /**
   * The latest snapshot of every job: the cached one while it is younger than the interval, else
   * a new read (joined by every caller until it ends). Throws {@linkcode BrokerUnreachable}.
   */
  snapshot(): Promise<Snapshot> {
    const cached = this.#snapshot;
    if (cached && this.#now() - cached.at < this.#intervalMs) {
      return cached.error ? Promise.reject(cached.error) : Promise.resolve(cached.value!);
    }
    if (this.#reading) return this.#reading;
    const at = this.#now();
    this.#reading = readSnapshot(this.broker, { all: true }).then(
      (snapshot) => {
        this.history.add(snapshot);
        this.#snapshot = { at, value: snapshot };
        return snapshot;
      },
      (error) => {
        const unreachable = new BrokerUnreachable(error);
        this.#snapshot = { at, error: unreachable };
        throw unreachable;
      },
    ).finally(() => this.#reading = undefined);
    return this.#reading;
  }

  /** Why the last snapshot failed, or undefined when it was read. */
  lastError(): string | undefined {
    return this.#snapshot?.error?.message;
  }

  /** The job's view in the latest snapshot, or undefined when the broker holds no such job. */
  async job(jobId: string): Promise<JobView | undefined> {
    return (await this.snapshot()).jobs.find((j) => j.jobId === jobId);
  }

  /** The job's first {@linkcode DEAD_LETTERS_SHOWN} dead letters, read at most once per interval. */
  deadLetters(jobId: string): Promise<ServedDeadLetters> {
    const cached = this.#letters.get(jobId);
    if (cached && this.#now() - cached.at < this.#intervalMs) {
      return cached.error ? Promise.reject(cached.error) : Promise.resolve(cached.value!);
    }
    const reading = this.#readingLetters.get(jobId);
    if (reading) return reading;
    const at = this.#now();
    const read = this.broker.deadLetters.list(jobId, { limit: DEAD_LETTERS_SHOWN }).then(
      (letters) => {
        const value = { at, letters };
        this.#letters.set(jobId, { at, value });
        return value;
      },
      (error) => {
        const unreachable = new BrokerUnreachable(error);
        this.#letters.set(jobId, { at, error: unreachable });
        throw unreachable;
      },
    ).finally(() => this.#readingLetters.delete(jobId));
    this.#readingLetters.set(jobId, read);
    return read;
  }

  /**
   * The job's sweep map: rebuilt (every result and dead letter read) once it is older than
   * {@linkcode mapRefreshMs} for the job's size and the job's counters or running chunks changed
   * since; a finished job's map is built once. Undefined for a job without a record (its chunk
   * size is unknown).
   */
  async sweepMap(view: JobView): Promise<ServedMap | undefined> {
    const record = view.record;
    if (!record) return undefined;
    const s = view.stats;
    // A stopped worker runs nothing, and a lost one's list is as old as its last report.
    const running = view.workers
      .filter((w) => w.state !== "stopped" && w.state !== "lost")
      .flatMap((w) => runningOf(w, view.jobId)).sort();
    // A retry stays due whatever became of the worker that gave the chunk back.
    const now = this.#now();
    const retrying = view.workers
      .flatMap((w) => w.retrying ?? [])
      .filter((r) => r.jobId === view.jobId && Date.parse(r.until) > now)
      .map((r) => r.chunkId).sort();
    const key = JSON.stringify([
      s.completed,
      s.deadLettered,
      s.cancelled,
      s.ready,
      s.delayed,
      s.inFlight,
      s.splits,
      s.control,
      running,
      retrying,
    ]);
    const cached = this.#maps.get(view.jobId);
    const chunks = chunksOf(view) ?? record.totalChunks;
    if (cached && (cached.key === key || this.#now() - cached.map.at < cached.map.refreshMs)) {
      return cached.map;
    }
    const building = this.#building.get(view.jobId);
    if (building) return await building;
    const at = this.#now();
    const build = (async () => {
      let completed, letters;
      try {
        [completed, letters] = await Promise.all([
          completedChunkIds(this.broker, view.jobId),
          this.broker.deadLetters.list(view.jobId),
        ]);
      } catch (error) {
        throw new BrokerUnreachable(error);
      }
      const map: ServedMap = {
        ...buildSweepMap({
          record,
          control: s.control,
          completed,
          dead: letters.flatMap((d) => d.task ? [d.task] : []),
          running,
          retrying,
          maxCells: this.#maxCells,
        }),
        at,
        refreshMs: mapRefreshMs(chunks),
      };
      this.#maps.set(view.jobId, { map, key });
      return map;
    })().finally(() => this.#building.delete(view.jobId));
    this.#building.set(view.jobId, build);
    return await build;
  }

  /** Forgets the job's dead letters and map after an action changed them. */
  invalidate(jobId: string): void {
    this.#letters.delete(jobId);
    this.#maps.delete(jobId);
  }
}
