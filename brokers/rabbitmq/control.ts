/**
 * The job controls as the RabbitMQ broker's steps read them: the `controls` word of the
 * key-value store (kv.ts), read per pull, nack and extend, and kept for a short while.
 *
 * ## Why a control cached for `CONTROL_CACHE_MS` is safe
 *
 * RabbitMQ has no transaction that could read a control and claim a message at once, so a pull
 * that starts just after a pause or cancel elsewhere may still hand out a chunk for up to
 * `CONTROL_CACHE_MS`. That chunk is then in flight, exactly like one handed out a moment before
 * the control changed, which every broker allows: its holder finishes it (the ack stores its
 * result) or gives it back, and a give-back, a lost lease or a message received after the
 * cancel is cancelled (`underControl`, by chunk id, once). What the cache can never do is lose
 * or double a chunk: the accounting goes by chunk ids, not by what the cache says. And it is
 * shorter than that in practice: the instance that writes a control sees it at once (writes go
 * through the cache), and a control change is announced to the job's consumers (census.ts), who
 * drop their cached word on receipt.
 *
 * @module
 */
import { type JobControl, readControl } from "../registry.ts";
import type { DriverKv, KvSpace } from "../registry.ts";

/** Longest time a control read is reused. */
export const CONTROL_CACHE_MS = 250;

interface Cached {
  readonly control: JobControl;
  readonly at: number;
}

/** The job controls of one broker instance, each read at most every `CONTROL_CACHE_MS`. */
export class JobControls {
  readonly #kv: () => DriverKv;
  readonly #cache = new Map<string, Cached>();
  readonly #reading = new Map<string, Promise<JobControl>>();
  /** Bumped by every forget, so a read under way then is not kept. */
  #generation = 0;

  /** `kv`: the store (late-bound: the store's own writes come back through `noteWrite`). */
  constructor(kv: () => DriverKv) {
    this.#kv = kv;
  }

  /** The job's control, read again once the last read is older than `CONTROL_CACHE_MS`. */
  of(jobId: string): Promise<JobControl> {
    const cached = this.#cache.get(jobId);
    if (cached && Date.now() - cached.at < CONTROL_CACHE_MS) return Promise.resolve(cached.control);
    let reading = this.#reading.get(jobId);
    if (!reading) {
      const at = Date.now();
      const generation = this.#generation;
      reading = this.#kv().get("controls", jobId).then((value) => {
        const control = readControl(value);
        // A write of this instance meanwhile is newer than what the read saw.
        const newer = (this.#cache.get(jobId)?.at ?? 0) > at;
        if (!newer && generation === this.#generation) this.#cache.set(jobId, { control, at });
        return newer ? this.#cache.get(jobId)!.control : control;
      });
      const mine = reading;
      this.#reading.set(jobId, mine);
      mine.catch(() => {}).finally(() => {
        if (this.#reading.get(jobId) === mine) this.#reading.delete(jobId);
      });
    }
    return reading;
  }

  /**
   * Refreshes the words of several jobs whose reads are stale with one `list` of the store
   * (a pull across many jobs would otherwise read each job's entry every `CONTROL_CACHE_MS`); a
   * job missing from the list is running. One or none stale: nothing (`of` reads it).
   */
  async refresh(jobIds: readonly string[]): Promise<void> {
    const now = Date.now();
    const stale = jobIds.filter((id) => {
      const cached = this.#cache.get(id);
      return !this.#reading.has(id) && !(cached && now - cached.at < CONTROL_CACHE_MS);
    });
    if (stale.length < 2) return;
    const generation = this.#generation;
    const words = new Map(await this.#kv().list("controls"));
    if (generation !== this.#generation) return;
    for (const id of stale) {
      // A write of this instance meanwhile is newer than what the list saw.
      if ((this.#cache.get(id)?.at ?? 0) > now) continue;
      this.#cache.set(id, { control: readControl(words.get(id) ?? null), at: now });
    }
  }

  /** A write of the store: a control this instance wrote holds from now on. */
  noteWrite(space: KvSpace, key: string, value: string | null): void {
    if (space !== "controls") return;
    this.#cache.set(key, { control: readControl(value), at: Date.now() });
  }

  /** Forgets the job's word (it changed elsewhere): the next step reads it. */
  forget(jobId: string): void {
    this.#generation += 1;
    this.#cache.delete(jobId);
    this.#reading.delete(jobId);
  }
}
