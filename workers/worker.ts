/**
 * The worker, shared by every broker, put together from small parts: the pull loop (below)
 * claims chunks into the {@linkcode InFlight} set while there is room; each chunk waits for a
 * handler slot and runs in the executor with its timeout; its outcome becomes an ack or a nack
 * in the {@linkcode CommitBatcher}; a heartbeat renews leases and a reclaimer takes over lapsed
 * ones (background services); {@linkcode WorkerCounters} keep what the broker answered. The
 * worker exits after an idle timeout once the job is drained; on stop, no more pulls, running
 * chunks get a grace period, then are released (never half-published).
 *
 * @module
 */
import type { NackKind } from "../brokers/broker.ts";
import { retryDelayMs } from "../brokers/policy.ts";
import { errorMessage } from "../errors.ts";
import { type Clock, systemClock } from "./clock.ts";
import { type Commit, CommitBatcher } from "./commit_batcher.ts";
import { WorkerCounters, type WorkerCounts } from "./counters.ts";
import { type ExecutionOutcome, storableOutcome } from "./executor.ts";
import { FleetReporter } from "./fleet_report.ts";
import { type Entry, InFlight } from "./in_flight.ts";
import { PeriodicService } from "./periodic.ts";
import { ProgressLog } from "./progress_log.ts";
import { PLAIN_PROGRESS_MS } from "./progress.ts";
import { type JobSource, singleJob } from "./job_catalog.ts";
import type { WorkerOptions, WorkerReport } from "./worker_options.ts";
import { pullLoop } from "./pull_loop.ts";
import { Slots } from "./slots.ts";

export type { WorkerCounts } from "./counters.ts";
export type {
  FleetOptions,
  OneJobOptions,
  WorkerBaseOptions,
  WorkerOptions,
  WorkerReport,
} from "./worker_options.ts";

/** How long a stopping worker waits for released chunks' nacks after the grace period. */
const RELEASE_WAIT_MS = 5000;

/** Runs one job's chunks from one broker until idle or stopped. */
export class TtgWorker {
  readonly #o: WorkerOptions;
  readonly #clock: Clock;
  readonly #inFlight = new InFlight();
  readonly #counters: WorkerCounters;
  readonly #slots: Slots;
  readonly #commits: CommitBatcher;
  readonly #progress: ProgressLog;
  readonly #fleet: FleetReporter | undefined;
  readonly #jobs: JobSource;
  #draining = false;
  #avgMs: number | undefined;

  /**
   * Creates a worker. Throws a `RangeError` unless `concurrency`, `batch`, `heartbeatMs` and
   * `chunkTimeoutMs` are positive.
   */
  constructor(options: WorkerOptions) {
    for (const key of ["concurrency", "batch", "heartbeatMs", "chunkTimeoutMs"] as const) {
      if (!(options[key] > 0)) throw new RangeError(`Invalid ${key} "${options[key]}"`);
    }
    this.#o = options;
    this.#jobs = options.jobs ??
      singleJob(options.jobId, { job: options.job, executor: options.executor });
    this.#clock = options.clock ?? systemClock;
    this.#counters = new WorkerCounters(options.events);
    this.#slots = new Slots(options.concurrency);
    const { progressLogMs, workerProgressMs } = options;
    this.#progress = new ProgressLog(options.log, this.#clock, progressLogMs, workerProgressMs);
    this.#fleet = options.identity
      ? new FleetReporter(options.broker, {
        identity: options.identity,
        jobs: this.#jobs,
        heartbeatMs: options.heartbeatMs,
        log: options.log,
      })
      : undefined;
    this.#commits = new CommitBatcher({
      broker: options.broker,
      batch: options.batch,
      clock: this.#clock,
      log: options.log,
      nothingPending: () => this.#inFlight.uncommitted === 0,
      onAcked: (commits, outcomes) => commits.forEach((c, i) => this.#acked(c, outcomes[i]!)),
      onNacked: (commits, outcomes) => commits.forEach((c, i) => this.#nacked(c, outcomes[i]!)),
      onSettled: (commits) => this.#inFlight.settle(commits.map((c) => c.entry)),
    });
  }

  /** Live counters (for progress and tests). */
  get counts(): WorkerCounts {
    return this.#counters.snapshot();
  }

  /** Chunks held now (queued, running or committing). */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Handlers running now. */
  get busy(): number {
    return this.#slots.used;
  }

  /** Serves the jobs until the idle timeout (drained) or until `signal` aborts; then shuts down. */
  async run(signal: AbortSignal): Promise<WorkerReport> {
    const t0 = this.#clock.now();
    const o = this.#o;
    const jobs = this.#jobs;
    const discovery = o.jobs
      ? new PeriodicService({
        name: "discovery",
        intervalMs: o.discoverMs ?? o.broker.capabilities.discoverMs,
        clock: this.#clock,
        tick: () => jobs.refresh(),
        onError: (e) =>
          o.log.warn("Looking up the jobs to serve failed", { error: errorMessage(e) }),
      })
      : undefined;
    const heartbeat = new PeriodicService({
      name: "heartbeat",
      intervalMs: o.heartbeatMs,
      clock: this.#clock,
      tick: () => this.#heartbeat(),
      onError: (e) => o.log.warn("Heartbeat failed", { error: errorMessage(e) }),
    });
    const progress = new PeriodicService({
      name: "progress",
      intervalMs: o.workerProgressMs ?? PLAIN_PROGRESS_MS,
      clock: this.#clock,
      tick: () => this.#progress.due(this.#inFlight.entries(), this.#counters.snapshot()),
      onError: (e) => o.log.warn("Logging progress failed", { error: errorMessage(e) }),
    });
    // Where leases are the connection, the broker takes back a dead consumer's chunks itself.
    const reclaimer = o.broker.capabilities.leases === "extend"
      ? new PeriodicService({
        name: "reclaimer",
        intervalMs: o.reclaimIntervalMs ?? Math.max(10, Math.floor(o.heartbeatMs / 2)),
        clock: this.#clock,
        tick: async () => {
          for (const jobId of jobs.ids()) {
            const n = await o.broker.reclaim({ jobId });
            if (n === 0) continue;
            this.#counters.reclaimed(n);
            o.log.info("Reclaimed chunks whose lease expired", { count: n, job_id: jobId });
          }
        },
        onError: (e) => o.log.warn("Reclaim failed", { error: errorMessage(e) }),
      })
      : undefined;
    await jobs.refresh().catch((e) =>
      o.log.warn("Looking up the jobs to serve failed", { error: errorMessage(e) })
    );
    await this.#report("starting");
    discovery?.start();
    heartbeat.start();
    progress.start();
    reclaimer?.start();
    o.log.info("RUNNING", { batch: o.batch, concurrency: o.concurrency });
    signal.addEventListener("abort", () => {
      this.#draining = true;
      o.log.info("DRAINING", { in_flight: this.#inFlight.size, grace_ms: o.graceMs });
      void this.#report("draining");
    }, { once: true });
    let exitReason: WorkerReport["exitReason"] = "stopped";
    try {
      exitReason = await pullLoop({
        broker: o.broker,
        jobIds: () => jobs.ids(),
        log: o.log,
        clock: this.#clock,
        batch: o.batch,
        pollMs: o.pollMs ?? 1000,
        idleTimeoutMs: o.idleTimeoutMs,
        inFlight: this.#inFlight,
        window: () => this.#window(),
        start: (delivery) => void this.#execute(this.#inFlight.add(delivery)),
      }, signal);
    } finally {
      await discovery?.stop();
      await reclaimer?.stop();
      await this.#shutdown(); // PROGRESS lines go on while held chunks finish their grace
      await progress.stop();
      await heartbeat.stop();
      await this.#report("stopped");
      await jobs.close();
    }
    return {
      workerId: o.workerId,
      ...this.#counters.snapshot(),
      exitReason,
      durationMs: this.#clock.now() - t0,
    };
  }

  /** How many deliveries to hold at once: large batches for fast chunks, a small window for slow ones. */
  #window(): number {
    const { concurrency, batch } = this.#o;
    const avg = this.#avgMs;
    const perSlot = avg === undefined ? 1 : Math.max(1, Math.floor(50 / Math.max(avg, 0.01)));
    return Math.max(concurrency, Math.min(batch, concurrency * (1 + perSlot)));
  }

  async #execute(entry: Entry): Promise<void> {
    const { task } = entry.delivery;
    await this.#slots.acquire(task.priority);
    let outcome: ExecutionOutcome;
    const handler = entry.controller.signal.aborted
      ? undefined
      : await this.#jobs.acquire(task.jobId).catch(() => undefined);
    try {
      if (!handler) {
        outcome = {
          ok: false,
          kind: "aborted",
          reason: entry.controller.signal.aborted
            ? "Released before it started"
            : "Released: this worker cannot load the job's handler",
          durationMs: 0,
        };
      } else {
        entry.state = "running";
        entry.startedAt = this.#clock.now();
        outcome = await handler.executor.execute({
          task,
          attempt: entry.delivery.attempt,
          workerId: this.#o.workerId,
          timeoutMs: handler.job.timeoutMs ?? this.#o.chunkTimeoutMs,
          signal: entry.controller.signal,
          onProgress: (done) => this.#progress.report(entry, done),
        }).catch((error): ExecutionOutcome => ({
          ok: false,
          kind: "failed",
          reason: errorMessage(error),
          durationMs: 0,
        }));
      }
    } finally {
      if (handler) this.#jobs.release(task.jobId);
      this.#slots.release();
    }
    if (outcome.durationMs > 0) this.#counters.ran(outcome.durationMs / 1000);
    if (outcome.ok || outcome.kind === "failed") {
      this.#avgMs = this.#avgMs === undefined
        ? outcome.durationMs
        : this.#avgMs * 0.9 + outcome.durationMs * 0.1;
    }
    this.#finish(entry, storableOutcome(outcome));
  }

  #finish(entry: Entry, outcome: ExecutionOutcome): void {
    this.#inFlight.finished(entry);
    if (entry.dropped) {
      // Our lease went to another claim (or the chunk was settled elsewhere): publish nothing.
      this.#inFlight.settle([entry]);
      return;
    }
    const { delivery } = entry;
    if (outcome.ok) {
      this.#commits.add({
        kind: "ack",
        entry,
        request: {
          delivery,
          result: {
            value: outcome.value,
            params: entry.params,
            workerId: this.#o.workerId,
            durationMs: Math.round(outcome.durationMs * 1000) / 1000,
            completedAt: new Date().toISOString(),
          },
        },
      });
      return;
    }
    const kind: NackKind = outcome.kind === "aborted" ? "released" : outcome.kind;
    this.#counters.failure(kind);
    if (kind !== "released") {
      // The predecessor's lifecycle names; a timeout is its own event, never a failure.
      this.#o.log.warn(kind === "timeout" ? "TIMEOUT" : "FAILED", {
        job_id: delivery.task.jobId,
        chunk_id: delivery.task.chunkId,
        attempt: delivery.attempt,
        kind,
        reason: outcome.reason,
      });
    }
    this.#commits.add({
      kind: "nack",
      entry,
      request: { delivery, kind, reason: outcome.reason, workerId: this.#o.workerId },
    });
  }

  #acked(commit: Commit, outcome: "stored" | "duplicate" | "zombie"): void {
    this.#counters.ack(outcome, commit.entry.params);
    if (outcome === "zombie") {
      this.#o.log.warn("Result rejected: the lease was taken over (zombie completion)", {
        job_id: commit.entry.delivery.task.jobId,
        chunk_id: commit.entry.delivery.task.chunkId,
      });
    }
  }

  #nacked(commit: Commit, outcome: Parameters<WorkerCounters["nack"]>[0]): void {
    this.#counters.nack(outcome);
    const { task, attempt } = commit.entry.delivery;
    if (outcome === "retrying") {
      // A wall-clock time: the dashboard reads it from the record in another process.
      const due = Date.now() + retryDelayMs(this.#o.broker.options.retry, attempt);
      this.#fleet?.retrying(task.jobId, task.chunkId, due);
    } else if (outcome === "split") {
      this.#o.log.warn("Chunk bisected after its last attempt", {
        job_id: task.jobId,
        chunk_id: task.chunkId,
        attempt,
        range: `${task.start}-${task.end}`,
      });
    } else if (outcome === "dead_lettered" && commit.kind === "nack") {
      this.#o.log.warn("Chunk dead-lettered", {
        job_id: task.jobId,
        chunk_id: task.chunkId,
        attempt,
      });
    }
  }

  /**
   * Renews the lease of every held chunk whose commit is not with the broker (a commit that
   * failed and waits for its retry is renewed again); a lost lease aborts and drops a running
   * chunk.
   */
  async #heartbeat(): Promise<void> {
    this.#o.health?.beat();
    void this.#report(this.#draining ? "draining" : this.#inFlight.size > 0 ? "busy" : "idle");
    const renewable = this.#inFlight.renewable();
    if (renewable.length === 0) return;
    const outcomes = await this.#o.broker.extend(renewable.map((e) => e.delivery));
    renewable.forEach((entry, i) => {
      const outcome = outcomes[i]!;
      this.#counters.extend(outcome);
      if (outcome === "extended" || entry.state === "committing") return;
      if (outcome === "cancelled") {
        // Stopped, never half-published: its release comes back from the broker as cancelled.
        entry.controller.abort();
        return;
      }
      entry.dropped = true;
      entry.controller.abort();
      if (outcome === "zombie") {
        this.#o.log.warn("Lease lost to another worker; dropping the chunk", {
          job_id: entry.delivery.task.jobId,
          chunk_id: entry.delivery.task.chunkId,
        });
      }
    });
  }

  /** Writes this worker's record in the fleet registry (when it has an identity). */
  #report(state: "starting" | "busy" | "idle" | "draining" | "stopped"): Promise<void> {
    if (!this.#fleet) return Promise.resolve();
    const running: { jobId: string; chunkId: string }[] = [];
    for (const entry of this.#inFlight.entries()) {
      if (entry.state === "running") running.push(entry.delivery.task);
    }
    return this.#fleet.report(state, this.#counters.snapshot(), this.#inFlight.size, running);
  }

  /** Releases queued chunks now, gives running ones the grace period, then releases the rest. */
  async #shutdown(): Promise<void> {
    this.#o.health?.stopping();
    this.#commits.stopping();
    for (const entry of this.#inFlight.entries()) {
      if (entry.state === "queued") entry.controller.abort();
    }
    await this.#drain(this.#o.graceMs);
    if (this.#inFlight.size > 0) {
      this.#o.log.info("Grace period over; releasing unfinished chunks", {
        chunks: this.#inFlight.size,
      });
      for (const entry of this.#inFlight.entries()) entry.controller.abort();
      await this.#drain(RELEASE_WAIT_MS);
    }
    await this.#commits.flush();
  }

  /** Waits up to `ms` for every held chunk to be settled. */
  async #drain(ms: number): Promise<void> {
    const deadline = this.#clock.now() + ms;
    while (this.#inFlight.size > 0) {
      const left = deadline - this.#clock.now();
      if (left <= 0) return;
      const timeout = new AbortController();
      const cancel = this.#clock.timer(() => timeout.abort(), left);
      await this.#inFlight.changed(timeout.signal);
      cancel();
    }
  }
}
