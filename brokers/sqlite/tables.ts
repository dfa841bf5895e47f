/**
 * The plumbing every SQLite step shares: the prepared statements, the `BEGIN IMMEDIATE`
 * transaction, counter increments written once per transaction, and how a chunk enters the
 * queue or the dead letters.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { LetterFields } from "../policy.ts";
import type { ChunkTask } from "../task.ts";
import { prepareStatements, SIZED_SQL, type Statements } from "./schema.ts";

/** Counters of the `counters` table. */
export type CounterName =
  | "duplicates"
  | "zombies"
  | "retried"
  | "reclaimed"
  | "splits"
  | "cancelled"
  | "params";

/** Counter increments of one transaction, written once at its end. */
export class CounterBatch {
  readonly #counts: Record<CounterName, number> = {
    duplicates: 0,
    zombies: 0,
    retried: 0,
    reclaimed: 0,
    splits: 0,
    cancelled: 0,
    params: 0,
  };
  add(name: CounterName, count = 1): void {
    this.#counts[name] += count;
  }
  flush(statement: StatementSync, job: string): void {
    if (Object.values(this.#counts).some((n) => n > 0)) statement.run({ job, ...this.#counts });
  }
}

/** An open database with its statements. */
export class Tables {
  readonly db: DatabaseSync;
  readonly s: Statements;
  readonly #sized = new Map<string, StatementSync>();

  /** Prepares the statements on `db`, an open database with the schema. */
  constructor(db: DatabaseSync) {
    this.db = db;
    this.s = prepareStatements(db);
  }

  /** The statement `name` of {@linkcode SIZED_SQL} for pulls of up to `max` rows. */
  sized(name: keyof typeof SIZED_SQL, max: number): StatementSync {
    let k = 8;
    while (k < max) k *= 2;
    const key = `${name}:${k}`;
    let statement = this.#sized.get(key);
    if (!statement) {
      statement = this.db.prepare(SIZED_SQL[name](k));
      this.#sized.set(key, statement);
    }
    return statement;
  }

  /** Runs `fn` in one `BEGIN IMMEDIATE` transaction. */
  transaction<T>(fn: () => T): T {
    return this.#within(this.s.begin, fn);
  }

  /** Runs reads in one deferred transaction: one snapshot, no write lock. */
  snapshot<T>(fn: () => T): T {
    return this.#within(this.s.beginRead, fn);
  }

  #within<T>(begin: StatementSync, fn: () => T): T {
    begin.run();
    try {
      const result = fn();
      this.s.commit.run();
      return result;
    } catch (error) {
      if (this.db.isTransaction) this.s.rollback.run();
      throw error;
    }
  }

  /** Enqueues tasks in one statement; `epoch` is what their next claim grows from. */
  insertTasks(tasks: readonly ChunkTask[], now: number, epoch: number): void {
    this.s.insertTasks.run({ tasks: JSON.stringify(tasks), now, epoch });
  }

  /** Writes a dead letter: the chunk's, or (`task` null) an unreadable message's `raw` text. */
  deadLetter(
    jobId: string,
    task: ChunkTask | null,
    raw: string | null,
    epoch: number,
    letter: LetterFields,
  ): void {
    this.s.insertDeadLetter.run({
      job: jobId,
      chunk: task?.chunkId ?? null,
      payload: task ? JSON.stringify(task) : null,
      raw,
      kind: letter.kind,
      reason: letter.reason,
      attempts: letter.attempts,
      epoch,
      history: JSON.stringify(letter.history),
      at: letter.at,
    });
  }

  /** The job's control word, read inside the current transaction. */
  control(jobId: string, now: number): "running" | "paused" | "cancelled" {
    const row = this.s.control.get({ job: jobId, now }) as { control: string };
    return row.control as "running" | "paused" | "cancelled";
  }
}
