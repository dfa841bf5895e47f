/**
 * The job heads a consumer's pulls across jobs last read, so that a fleet serving a hundred jobs
 * does not read a hundred heads for every pull (on SQLite each head is a dozen index seeks; a
 * worker pulling a few hundred times a second spent most of its time there).
 *
 * A head is read again when:
 * - it was never read, or the job was claimed from, published to, nacked or controlled through
 *   this consumer since (its queue changed), or, if it is capped, acked (it may have room): a
 *   job just found is read at once;
 * - it had chunks ready and is older than {@linkcode FRESH_MS} (others may have claimed them,
 *   and aging moves priorities by one level per aging interval, 30 s by default);
 * - it had none ready, after a wait that doubles from {@linkcode FIRST_EMPTY_MS} to
 *   {@linkcode MAX_EMPTY_MS} with each empty read: a job recorded just before its chunks are
 *   published is seen within milliseconds, a finished one costs a read a second.
 *
 * A stale head can only make a claim take fewer chunks than it could, or later: each claim is
 * the job's own atomic step, which checks its control and its cap.
 *
 * @module
 */
import type { JobHead } from "./share.ts";

/** How long a head with chunks ready is used before it is read again. */
export const FRESH_MS = 250;
/** The first wait before a head with nothing ready is read again. */
export const FIRST_EMPTY_MS = 10;
/** The longest such wait. */
export const MAX_EMPTY_MS = 1000;

interface Entry {
  readonly head: JobHead;
  readonly readAt: number;
  /** The pull's `max` it was read with: `ready` is counted up to it. */
  readonly max: number;
  /** Empty reads in a row. */
  readonly empty: number;
}

/** Reads heads of several jobs, `ready` counted up to `max`. */
export type ReadHeads = (jobIds: readonly string[], max: number) => Promise<JobHead[]>;

/** The heads a consumer last read, and which of them are due again. */
export class HeadCache {
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;

  /** A cache on the clock `now` (tests). */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The heads of `jobIds`, reading (in one call) only the ones that are due. */
  async heads(jobIds: readonly string[], max: number, read: ReadHeads): Promise<JobHead[]> {
    const now = this.#now();
    const due = jobIds.filter((id) => this.#due(this.#entries.get(id), max, now));
    if (due.length > 0) {
      for (const head of await read(due, max)) {
        const before = this.#entries.get(head.jobId);
        const empty = head.priority === null || head.ready === 0;
        this.#entries.set(head.jobId, {
          head,
          readAt: now,
          max,
          empty: empty ? (before?.empty ?? 0) + 1 : 0,
        });
      }
    }
    if (this.#entries.size > jobIds.length * 2) this.#forgetAllBut(jobIds);
    return jobIds.flatMap((id) => this.#entries.get(id)?.head ?? []);
  }

  /** The job's queue changed through this consumer: its head is read on the next pull. */
  changed(jobId: string): void {
    this.#entries.delete(jobId);
  }

  /**
   * Chunks of the job were acked through this consumer: a capped job's head is read on the next
   * pull (it may have room again); another's count in flight only breaks ties, and can wait.
   */
  settled(jobId: string): void {
    if (this.#entries.get(jobId)?.head.maxInFlight !== undefined) this.#entries.delete(jobId);
  }

  #due(entry: Entry | undefined, max: number, now: number): boolean {
    if (!entry) return true;
    const age = now - entry.readAt;
    if (entry.empty === 0) {
      return age >= FRESH_MS || (max > entry.max && entry.head.ready >= entry.max);
    }
    return age >= Math.min(MAX_EMPTY_MS, FIRST_EMPTY_MS * 2 ** (entry.empty - 1));
  }

  #forgetAllBut(jobIds: readonly string[]): void {
    const keep = new Set(jobIds);
    for (const id of this.#entries.keys()) if (!keep.has(id)) this.#entries.delete(id);
  }
}
