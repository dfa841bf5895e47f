/**
 * What one RabbitMQ broker instance knows of each job's shape: whether its topology was declared
 * on the current session, and its record (whose `maxInFlight` decides how its task queue is
 * declared: with a single active consumer, topology.ts).
 *
 * @module
 */
import type { JobRecord } from "../task.ts";
import type { RabbitConnection, Session } from "./connection.ts";
import * as store from "./store.ts";
import { declareJob, type JobNames, type QueueType } from "./topology.ts";

/** A job found without a record is not read again for this long (pulls ask on every call). */
const ABSENT_KEPT_MS = 1000;

/** How task queues are declared. */
export interface DeclareOptions {
  readonly queueType: QueueType;
  readonly deliveryLimit: number;
}

/** Declarations once per session and job, and the records read. */
export class DeclaredJobs {
  readonly #connection: RabbitConnection;
  readonly #names: (jobId: string) => JobNames;
  readonly #options: DeclareOptions;
  readonly #topologies = new Map<string, { session: Session; ready: Promise<void> }>();
  /** Records read or written (a record never changes once written). */
  readonly #records = new Map<string, JobRecord>();
  /** When a job was last found without a record (a predecessor's job has none). */
  readonly #absent = new Map<string, number>();

  constructor(
    connection: RabbitConnection,
    names: (jobId: string) => JobNames,
    options: DeclareOptions,
  ) {
    this.#connection = connection;
    this.#names = names;
    this.#options = options;
  }

  /** Declares the job's topology on `session` (once per session; again after a failure). */
  topology(session: Session, jobId: string): Promise<void> {
    const known = this.#topologies.get(jobId);
    if (known?.session === session) return known.ready;
    const ready = (async () => {
      // A job with a cap gets a single active consumer; one without, or not recorded yet, not.
      const cap = (await this.record(jobId))?.maxInFlight;
      await declareJob(this.#connection.admin, this.#names(jobId), {
        ...this.#options,
        singleActiveConsumer: cap !== undefined,
      });
    })();
    this.#topologies.set(jobId, { session, ready });
    ready.catch(() => {
      if (this.#topologies.get(jobId)?.ready === ready) this.#topologies.delete(jobId);
    });
    return ready;
  }

  /** The job's record, read until there is one (then kept; none is kept `ABSENT_KEPT_MS`). */
  async record(jobId: string): Promise<JobRecord | null> {
    const known = this.#records.get(jobId);
    if (known) return known;
    if (Date.now() - (this.#absent.get(jobId) ?? -Infinity) < ABSENT_KEPT_MS) return null;
    const record = await store.getJob(this.#connection, this.#names(jobId));
    if (record) this.#records.set(jobId, record);
    else this.#absent.set(jobId, Date.now());
    return record;
  }

  /** A record this instance wrote. */
  recorded(job: JobRecord): void {
    this.#records.set(job.jobId, job);
    this.#absent.delete(job.jobId);
  }

  /** The topology must be declared again (a publish found it missing). */
  redeclare(jobId: string): void {
    this.#topologies.delete(jobId);
  }

  /** The job was reset. */
  forget(jobId: string): void {
    this.#topologies.delete(jobId);
    this.#records.delete(jobId);
    this.#absent.delete(jobId);
  }
}
