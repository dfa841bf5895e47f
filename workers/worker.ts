/**
 * The worker loop, shared by every broker: pull a batch → run handlers with bounded concurrency
 * and a per-chunk timeout → ack results / nack failures in batches; heartbeat leases and reclaim
 * expired ones in the background; exit after an idle timeout once the job is drained. On stop:
 * no more pulls, in-flight chunks get a grace period, then are released (never half-published).
 *
 * @module
 */
import type {
  AckOutcome,
  AckRequest,
  Broker,
  Delivery,
  NackKind,
  NackOutcome,
  NackRequest,
} from "../brokers/contract.ts";
import { BrokerError, errorMessage } from "../brokers/errors.ts";
import type { Job, Logger } from "../jobs/define_job.ts";
import { bisect } from "./bisect.ts";
import type { ChunkExecutor, ExecutionOutcome } from "./executor.ts";
import { PeriodicService, wait } from "./periodic.ts";

/** Options of {@linkcode TtgWorker}. */
export interface WorkerOptions {
  /** Broker to pull chunks from and commit results to. */
  readonly broker: Broker;
  /** Job to serve. */
  readonly jobId: string;
  /** This worker's id, recorded with its results and failures. */
  readonly workerId: string;
  /** Job definition whose handler runs the chunks. */
  readonly job: Job;
  /** Runs the handlers (inline or in a thread pool). */
  readonly executor: ChunkExecutor;
  /** Logger of the worker. */
  readonly log: Logger;
  /** Handlers running at once. */
  readonly concurrency: number;
  /** Most deliveries pulled, and results acked, in one call. */
  readonly batch: number;
  /** Lease extension interval. */
  readonly heartbeatMs: number;
  /** Interval of reclaiming expired leases. @default heartbeatMs / 2 */
  readonly reclaimIntervalMs?: number;
  /** Exit after this long without work once the job is drained; 0 never exits. */
  readonly idleTimeoutMs: number;
  /** On stop, how long running chunks may take before they are released. */
  readonly graceMs: number;
  /** Per-chunk timeout, unless the job sets its own `timeoutMs`. */
  readonly chunkTimeoutMs: number;
  /** Smallest chunk bisection splits down to. @default 1 */
  readonly minSplit?: number;
  /** Longest wait of one pull. @default 1000 */
  readonly pollMs?: number;
  /** A chunk running longer than this logs its `ctx.progress` once per this interval. @default 5000 */
  readonly progressLogMs?: number;
}

/** What one worker did. */
export interface WorkerReport {
  /** Id of the worker. */
  readonly workerId: string;
  /** Chunks whose result this worker stored (counted). */
  readonly chunks: number;
  /** Parameters of those chunks. */
  readonly params: number;
  /** Results discarded because their chunk already had one. */
  readonly duplicates: number;
  /** Acks, nacks or lease extensions rejected because the lease was taken over. */
  readonly zombies: number;
  /** Failed chunks scheduled for a retry. */
  readonly retried: number;
  /** Chunks this worker dead-lettered. */
  readonly deadLettered: number;
  /** Chunks this worker bisected. */
  readonly split: number;
  /** Chunks given back without burning an attempt (e.g. on shutdown). */
  readonly released: number;
  /** Expired leases this worker's reclaimer took over (made claimable again). */
  readonly reclaimed: number;
  /** `idle`: the job was drained for `idleTimeoutMs`; `stopped`: the stop signal aborted. */
  readonly exitReason: "idle" | "stopped";
  /** Wall-clock time the worker ran, in milliseconds. */
  readonly durationMs: number;
}

/** Counters of a running worker. */
export type WorkerCounts = Omit<WorkerReport, "workerId" | "exitReason" | "durationMs">;

type EntryState = "queued" | "running" | "committing";

interface Entry {
  readonly delivery: Delivery;
  readonly controller: AbortController;
  state: EntryState;
  zombie: boolean;
  /** When its handler started (performance.now()), for progress lines. */
  startedAt?: number;
  /** Latest `ctx.progress` count of its handler. */
  progress?: number;
  /** When its last PROGRESS line was written. */
  progressLoggedAt?: number;
}

type Commit =
  | { readonly kind: "ack"; readonly entry: Entry; readonly request: AckRequest }
  | { readonly kind: "nack"; readonly entry: Entry; readonly request: NackRequest };

/** Runs one job's chunks from one broker until idle or stopped. */
export class TtgWorker {
  readonly #o: WorkerOptions;
  readonly #entries = new Set<Entry>();
  /** Entries still queued or running (not yet committing): kept as a count, read per chunk. */
  #uncommitted = 0;
  #commits: Commit[] = [];
  #flushing: Promise<void> | undefined;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  #running = 0;
  #slotWaiters: (() => void)[] = [];
  #changed: (() => void) | undefined;
  #avgMs: number | undefined;
  #counts: { -readonly [K in keyof WorkerCounts]: number } = {
    chunks: 0,
    params: 0,
    duplicates: 0,
    zombies: 0,
    retried: 0,
    deadLettered: 0,
    split: 0,
    released: 0,
    reclaimed: 0,
  };
  #stopping = false;

  /**
   * Creates a worker. Throws a `RangeError` unless `concurrency`, `batch`, `heartbeatMs` and
   * `chunkTimeoutMs` are positive.
   */
  constructor(options: WorkerOptions) {
    for (const key of ["concurrency", "batch", "heartbeatMs", "chunkTimeoutMs"] as const) {
      if (!(options[key] > 0)) throw new RangeError(`Invalid ${key} "${options[key]}"`);
    }
    this.#o = options;
  }

  /** Live counters (for progress and tests). */
  get counts(): Readonly<WorkerCounts> {
    return { ...this.#counts };
  }

  /** Serves the job until the idle timeout (drained) or until `signal` aborts; then shuts down. */
  async run(signal: AbortSignal): Promise<WorkerReport> {
    const t0 = performance.now();
    const o = this.#o;
    const heartbeat = new PeriodicService({
      name: "heartbeat",
      intervalMs: o.heartbeatMs,
      tick: () => this.#heartbeat(),
      onError: (e) => o.log.warn("Heartbeat failed", { error: errorMessage(e) }),
    });
    const reclaimer = new PeriodicService({
      name: "reclaimer",
      intervalMs: o.reclaimIntervalMs ?? Math.max(10, Math.floor(o.heartbeatMs / 2)),
      tick: async () => {
        const n = await o.broker.reclaim({ jobId: o.jobId });
        if (n > 0) {
          this.#counts.reclaimed += n;
          o.log.info("Reclaimed chunks whose lease expired", { count: n });
        }
      },
      onError: (e) => o.log.warn("Reclaim failed", { error: errorMessage(e) }),
    });
    heartbeat.start();
    reclaimer.start();
    let exitReason: WorkerReport["exitReason"] = "stopped";
    try {
      exitReason = await this.#pullLoop(signal);
    } finally {
      await reclaimer.stop();
      await this.#shutdown();
      await heartbeat.stop();
    }
    return {
      workerId: o.workerId,
      ...this.#counts,
      exitReason,
      durationMs: performance.now() - t0,
    };
  }

  /** How many deliveries to hold at once: large batches for fast chunks, a small window for slow ones. */
  #window(): number {
    const { concurrency, batch } = this.#o;
    const avg = this.#avgMs;
    const perSlot = avg === undefined ? 1 : Math.max(1, Math.floor(50 / Math.max(avg, 0.01)));
    return Math.max(concurrency, Math.min(batch, concurrency * (1 + perSlot)));
  }

  async #pullLoop(signal: AbortSignal): Promise<WorkerReport["exitReason"]> {
    const o = this.#o;
    let lastWork = Date.now();
    let failures = 0;
    while (!signal.aborted) {
      const room = this.#window() - this.#entries.size;
      if (room <= 0) {
        await this.#nextChange(signal);
        continue;
      }
      let deliveries: Delivery[];
      try {
        deliveries = await o.broker.pull({
          jobId: o.jobId,
          max: Math.min(room, o.batch),
          waitMs: this.#entries.size > 0 ? 20 : (o.pollMs ?? 1000),
          signal,
        });
        failures = 0;
      } catch (error) {
        if (error instanceof BrokerError && error.code === "CLOSED") throw error;
        failures += 1;
        o.log.warn("Pull failed; retrying", { error: errorMessage(error), attempt: failures });
        await wait(Math.min(5000, 100 * 2 ** failures), signal);
        continue;
      }
      if (deliveries.length > 0) {
        lastWork = Date.now();
        for (const delivery of deliveries) this.#start(delivery);
        continue;
      }
      if (this.#entries.size > 0) lastWork = Date.now();
      if (o.idleTimeoutMs > 0 && Date.now() - lastWork >= o.idleTimeoutMs) {
        const stats = await o.broker.stats(o.jobId).catch(() => undefined);
        if (stats && stats.ready + stats.delayed + stats.inFlight === 0) return "idle";
        lastWork = Date.now() - o.idleTimeoutMs / 2; // not drained: look again soon
      }
    }
    return "stopped";
  }

  #nextChange(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener("abort", done);
        this.#changed = undefined;
        resolve();
      };
      this.#changed = done;
      signal.addEventListener("abort", done, { once: true });
    });
  }

  #notify(): void {
    this.#changed?.();
  }

  #start(delivery: Delivery): void {
    const entry: Entry = {
      delivery,
      controller: new AbortController(),
      state: "queued",
      zombie: false,
    };
    this.#entries.add(entry);
    this.#uncommitted += 1;
    void this.#execute(entry);
  }

  async #acquireSlot(): Promise<void> {
    if (this.#running < this.#o.concurrency) {
      this.#running += 1;
      return;
    }
    await new Promise<void>((resolve) => this.#slotWaiters.push(resolve));
  }

  #releaseSlot(): void {
    const next = this.#slotWaiters.shift();
    if (next) next();
    else this.#running -= 1;
  }

  async #execute(entry: Entry): Promise<void> {
    await this.#acquireSlot();
    let outcome: ExecutionOutcome;
    try {
      if (entry.controller.signal.aborted) {
        outcome = {
          ok: false,
          kind: "aborted",
          reason: "Released before it started",
          durationMs: 0,
        };
      } else {
        entry.state = "running";
        entry.startedAt = performance.now();
        outcome = await this.#o.executor.execute({
          task: entry.delivery.task,
          attempt: entry.delivery.attempt,
          workerId: this.#o.workerId,
          timeoutMs: this.#o.job.timeoutMs ?? this.#o.chunkTimeoutMs,
          signal: entry.controller.signal,
          onProgress: (done) => this.#progress(entry, done),
        }).catch((error): ExecutionOutcome => ({
          ok: false,
          kind: "failed",
          reason: errorMessage(error),
          durationMs: 0,
        }));
      }
    } finally {
      this.#releaseSlot();
    }
    if (outcome.ok || outcome.kind === "failed") {
      this.#avgMs = this.#avgMs === undefined
        ? outcome.durationMs
        : this.#avgMs * 0.9 + outcome.durationMs * 0.1;
    }
    this.#finish(entry, outcome);
  }

  #finish(entry: Entry, executed: ExecutionOutcome): void {
    const { delivery } = entry;
    const outcome = storableOutcome(executed);
    this.#uncommitted -= 1;
    if (entry.zombie) {
      // Our lease went to another claim: drop the work, publish nothing.
      this.#entries.delete(entry);
      this.#notify();
      return;
    }
    entry.state = "committing";
    if (outcome.ok) {
      const task = delivery.task;
      this.#queueCommit({
        kind: "ack",
        entry,
        request: {
          delivery,
          result: {
            value: outcome.value,
            params: task.end - task.start,
            workerId: this.#o.workerId,
            durationMs: Math.round(outcome.durationMs * 1000) / 1000,
            completedAt: new Date().toISOString(),
          },
        },
      });
      return;
    }
    const kind: NackKind = outcome.kind === "aborted" ? "released" : outcome.kind;
    const final = delivery.attempt >= delivery.maxAttempts;
    const split = (kind === "failed" || kind === "timeout") && final && !this.#o.job.indivisible
      ? bisect(delivery.task, this.#o.minSplit ?? 1)
      : undefined;
    if (kind !== "released") {
      this.#o.log.warn("Chunk failed", {
        chunk: delivery.task.chunkId,
        attempt: delivery.attempt,
        kind,
        reason: outcome.reason,
        ...(split ? { bisect: split.map((t) => `${t.start}-${t.end}`).join(",") } : {}),
      });
    }
    this.#queueCommit({
      kind: "nack",
      entry,
      request: {
        delivery,
        kind,
        reason: outcome.reason,
        workerId: this.#o.workerId,
        ...(split ? { split } : {}),
      },
    });
  }

  /** A handler's `ctx.progress(done)`: keeps the latest count of a running chunk. */
  #progress(entry: Entry, done: number): void {
    if (
      entry.state !== "running" || entry.zombie || entry.controller.signal.aborted ||
      typeof done !== "number" || !Number.isFinite(done)
    ) return;
    entry.progress = done;
    this.#logProgress(entry, performance.now());
  }

  /**
   * A chunk running longer than the progress interval that reported progress logs a PROGRESS line
   * with its latest count once per interval (checked on every report and every heartbeat tick);
   * short chunks log nothing.
   */
  #logProgress(entry: Entry, now: number): void {
    if (entry.progress === undefined || entry.state !== "running" || entry.zombie) return;
    const interval = this.#o.progressLogMs ?? 5000;
    if (now - (entry.startedAt ?? now) < interval) return;
    if (now - (entry.progressLoggedAt ?? -Infinity) < interval) return;
    entry.progressLoggedAt = now;
    const task = entry.delivery.task;
    const params = task.end - task.start;
    const done = Math.min(params, Math.max(0, entry.progress));
    this.#o.log.info("PROGRESS", {
      chunk: task.chunkId,
      done,
      of: params,
      percent: params > 0 ? Math.round((done / params) * 100) : 100,
    });
  }

  #queueCommit(commit: Commit): void {
    this.#commits.push(commit);
    // Runs once per chunk, so a count: scanning the entries (committing ones first) was
    // quadratic in the batch and showed in profiles.
    if (this.#commits.length >= this.#o.batch || this.#uncommitted === 0) void this.#flush();
    else if (!this.#flushTimer) this.#flushTimer = setTimeout(() => void this.#flush(), 5);
  }

  /** Sends queued acks and nacks, one broker call each per batch; one flush at a time. */
  #flush(): Promise<void> {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#flushing) {
      return this.#flushing.then(() => (this.#commits.length ? this.#flush() : undefined));
    }
    if (this.#commits.length === 0) return Promise.resolve();
    const commits = this.#commits;
    this.#commits = [];
    this.#flushing = this.#send(commits).finally(() => {
      this.#flushing = undefined;
      if (this.#commits.length) void this.#flush();
    });
    return this.#flushing;
  }

  /** Sends acks and nacks side by side; each is retried on its own, so none is sent twice. */
  async #send(commits: Commit[]): Promise<void> {
    const acks = commits.filter((c): c is Extract<Commit, { kind: "ack" }> => c.kind === "ack");
    const nacks = commits.filter((c): c is Extract<Commit, { kind: "nack" }> => c.kind === "nack");
    // Each half lets go of its chunks once committed: a heartbeat must not extend them after.
    const settle = (done: Commit[]) => {
      for (const c of done) this.#entries.delete(c.entry);
      this.#notify();
    };
    await Promise.all([
      acks.length > 0 &&
      this.#commit(
        () => this.#o.broker.ack(acks.map((c) => c.request)),
        (outcomes) => acks.forEach((c, i) => this.#countAck(c, outcomes[i]!)),
        acks.length,
      ).then(() => settle(acks)),
      nacks.length > 0 &&
      this.#commit(
        () => this.#o.broker.nack(nacks.map((c) => c.request)),
        (outcomes) => outcomes.forEach((outcome) => this.#countNack(outcome)),
        nacks.length,
      ).then(() => settle(nacks)),
    ]);
  }

  /** One broker call, retried while the broker fails (not forever once stopping). */
  async #commit<T>(
    call: () => Promise<T[]>,
    count: (outcomes: T[]) => void,
    chunks: number,
  ): Promise<void> {
    for (let attempt = 1;; attempt++) {
      try {
        count(await call());
        return;
      } catch (error) {
        // Only a broker's own failure can pass by retrying; anything else would repeat forever.
        if (
          !(error instanceof BrokerError) || error.code === "CLOSED" ||
          (this.#stopping && attempt >= 5)
        ) {
          this.#o.log.error(
            "Could not commit results; their leases will expire and others will redo them",
            { error: errorMessage(error), chunks },
          );
          return;
        }
        this.#o.log.warn("Commit failed; retrying", { error: errorMessage(error), attempt });
        await wait(Math.min(5000, 100 * 2 ** attempt));
      }
    }
  }

  #countAck(commit: Extract<Commit, { kind: "ack" }>, outcome: AckOutcome): void {
    if (outcome === "stored") {
      this.#counts.chunks += 1;
      this.#counts.params += commit.request.result.params;
    } else if (outcome === "duplicate") this.#counts.duplicates += 1;
    else {
      this.#counts.zombies += 1;
      this.#o.log.warn("Result rejected: the lease was taken over (zombie completion)", {
        chunk: commit.request.delivery.task.chunkId,
      });
    }
  }

  #countNack(outcome: NackOutcome): void {
    const key = ({
      retrying: "retried",
      released: "released",
      dead_lettered: "deadLettered",
      split: "split",
      zombie: "zombies",
    } as const)[outcome];
    this.#counts[key] += 1;
  }

  /**
   * Extends the leases of every chunk held, committing ones too (a commit retried while the
   * broker is unwell must not lose its lease); a lost lease aborts and drops a running chunk.
   */
  async #heartbeat(): Promise<void> {
    const now = performance.now();
    for (const entry of this.#entries) this.#logProgress(entry, now);
    const live = [...this.#entries].filter((e) => !e.zombie);
    if (live.length === 0) return;
    const outcomes = await this.#o.broker.extend(live.map((e) => e.delivery));
    live.forEach((entry, i) => {
      if (outcomes[i] !== "zombie" || entry.state === "committing") return;
      entry.zombie = true;
      this.#counts.zombies += 1;
      this.#o.log.warn("Lease lost to another worker; dropping the chunk", {
        chunk: entry.delivery.task.chunkId,
      });
      entry.controller.abort();
    });
  }

  /** Releases queued chunks now, gives running ones the grace period, then releases the rest. */
  async #shutdown(): Promise<void> {
    this.#stopping = true;
    for (const entry of this.#entries) if (entry.state === "queued") entry.controller.abort();
    const deadline = Date.now() + this.#o.graceMs;
    while (this.#entries.size > 0 && Date.now() < deadline) {
      const timeout = new AbortController();
      const timer = setTimeout(() => timeout.abort(), Math.max(1, deadline - Date.now()));
      await this.#nextChange(timeout.signal);
      clearTimeout(timer);
    }
    if (this.#entries.size > 0) {
      this.#o.log.info("Grace period over; releasing unfinished chunks", {
        chunks: this.#entries.size,
      });
      for (const entry of this.#entries) entry.controller.abort();
      const hardDeadline = Date.now() + 5000;
      while (this.#entries.size > 0 && Date.now() < hardDeadline) await wait(10);
    }
    await this.#flush();
  }
}

/**
 * A result must survive JSON (every broker stores results as JSON); one that cannot
 * (a BigInt, a cycle) becomes an unrecoverable failure, so it is dead-lettered with its reason
 * instead of wedging the commit loop.
 */
function storableOutcome(outcome: ExecutionOutcome): ExecutionOutcome {
  if (!outcome.ok) return outcome;
  try {
    JSON.stringify(outcome.value);
    return outcome;
  } catch (error) {
    return {
      ok: false,
      kind: "unrecoverable",
      reason: `The handler's result cannot be stored as JSON: ${errorMessage(error)}`,
      durationMs: outcome.durationMs,
    };
  }
}
