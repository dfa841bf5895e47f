/**
 * Whether the process behind a SQLite consumer is still running, without waiting for its lease.
 * Redis and RabbitMQ see a killed worker's connection close and take its chunks back at once;
 * a SQLite database has no connections, so each consumer holds an exclusive lock on a file of
 * its own beside the database (`<database>.consumers/<hash of its id>`) for as long as its
 * handle is open. The kernel drops that lock when the process ends, however it ends (SIGKILL, a
 * crash, an out-of-memory kill), so a reclaimer that can take the lock knows the holder is gone.
 *
 * Any doubt means "alive": no file (a consumer of an older version, a handle closed cleanly, a
 * file another reclaimer removed) or a lock that cannot be taken leaves the chunk to its lease,
 * exactly as before. Locks are per open file, so two handles of one process never take each
 * other for dead. The lock holds wherever SQLite's own locks hold: processes of one machine, or
 * containers sharing a volume on one kernel; like SQLite itself, it is not for a database on a
 * network file system mounted without locks.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** Files looked at when a handle opens, at most (the rest at later opens). */
const SWEEP_MAX = 200;
/**
 * A consumer's file is removed at another's open only once it is this old: by then any lease its
 * ended consumer held has lapsed, so removing it loses nothing, while a younger file may still
 * tell a reclaimer that its chunks can come back at once.
 */
const SWEEP_AGE_MS = 3_600_000;

/** One handle's lock, and its view of the other consumers' locks. */
export class ConsumerLiveness {
  readonly #dir: string;
  readonly #own: string;
  #held: Deno.FsFile | undefined;

  private constructor(dir: string, consumerId: string) {
    this.#dir = dir;
    this.#own = consumerId;
  }

  /**
   * Takes `consumerId`'s lock beside the database at `path`, or returns undefined when there is
   * no file to put it beside (`:memory:`, a `file:` URI) or the folder cannot be written (then
   * every chunk is left to its lease). Removes the files of consumers that ended long ago.
   */
  static open(path: string, consumerId: string): ConsumerLiveness | undefined {
    if (path === ":memory:" || path.startsWith("file:")) return undefined;
    const liveness = new ConsumerLiveness(`${path}.consumers`, consumerId);
    let file: Deno.FsFile;
    try {
      file = liveness.#create();
    } catch {
      return undefined;
    }
    try {
      // Taken already: another handle with this id is open; this one proves nothing.
      if (file.tryLockSync(true)) liveness.#held = file;
      else file.close();
    } catch {
      file.close();
      return undefined;
    }
    try {
      liveness.#sweep();
    } catch {
      // a file removed meanwhile, an unreadable folder: the next open sweeps again
    }
    return liveness;
  }

  /**
   * The consumers among `holders` whose process has ended (this handle's own id is never one).
   * The file of each is removed, so it is reported once.
   */
  ended(holders: Iterable<string>): string[] {
    const gone: string[] = [];
    for (const holder of holders) {
      if (holder !== this.#own && this.#takeOver(this.#file(holder))) gone.push(holder);
    }
    return gone;
  }

  /** Gives the lock back and removes its file: a handle closed on purpose is left to its leases. */
  close(): void {
    const file = this.#held;
    this.#held = undefined;
    if (!file) return;
    try {
      Deno.removeSync(this.#file(this.#own));
      Deno.removeSync(this.#dir); // only when no other consumer's file is left in it
    } catch {
      // other consumers' files, or removed by hand: nothing to undo
    }
    file.close();
  }

  /** This consumer's file, in a folder made for it (again, if the last handle removed it). */
  #create(): Deno.FsFile {
    for (let tries = 1;; tries++) {
      Deno.mkdirSync(this.#dir, { recursive: true });
      try {
        return Deno.openSync(this.#file(this.#own), { create: true, write: true });
      } catch (error) {
        if (tries >= 3 || !(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
  }

  /** True if the file's lock was free (its holder ended); the file is then removed. */
  #takeOver(path: string): boolean {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { write: true });
    } catch {
      return false; // no file: nothing is known of this holder
    }
    try {
      if (!file.tryLockSync(true)) return false;
      Deno.removeSync(path);
      return true;
    } catch {
      return false;
    } finally {
      file.close();
    }
  }

  /** Removes the files of consumers that ended long ago (killed while they held nothing). */
  #sweep(): void {
    let seen = 0;
    const before = Date.now() - SWEEP_AGE_MS;
    for (const entry of Deno.readDirSync(this.#dir)) {
      if (++seen > SWEEP_MAX) return;
      const path = `${this.#dir}/${entry.name}`;
      if (!entry.isFile || path === this.#file(this.#own)) continue;
      const made = Deno.statSync(path).mtime?.getTime() ?? Date.now();
      if (made < before) this.#takeOver(path);
    }
  }

  #file(consumerId: string): string {
    return `${this.#dir}/${createHash("sha256").update(consumerId).digest("hex").slice(0, 32)}`;
  }
}
