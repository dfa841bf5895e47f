/**
 * How the RabbitMQ broker hands chunks out: from one job, or across several (a fleet worker), as
 * far as RabbitMQ can order them, under each job's control and `maxInFlight`.
 *
 * - **Control**: a paused job hands out nothing and its consumer stops (its prefetched messages
 *   go back for later); a cancelled job hands out nothing, and what it had prefetched, or
 *   receives, is cancelled (control.ts says why a word read a moment ago is safe).
 * - **maxInFlight**: the job's task queue has a single active consumer whose prefetch window is
 *   the cap (topology.ts, intake.ts), so RabbitMQ itself keeps at most `cap` of the job unacked,
 *   over every consumer; the other consumers of the job wait their turn (RabbitMQ hands the queue
 *   to the next one once the active one cancels, which it does when it holds nothing).
 * - **Across jobs** RabbitMQ cannot tell each queue's head without taking it, so the order is that
 *   of what each job's consumer has prefetched: the chunk of highest priority among them, oldest
 *   first, ties shared in turn between jobs. A job's queue delivers in priority order only what it
 *   has not delivered yet, and a job whose consumer was idle is waited for briefly when its queue
 *   holds messages, so an idle high-priority job is not passed over. Priorities never age.
 *
 * @module
 */
import type { Delivery } from "../broker.ts";
import type { PullAcrossRequest, PullRequest } from "../driver.ts";
import type { JobControl } from "../registry.ts";
import type { RabbitConnection, Session } from "./connection.ts";
import { CONTROL_CACHE_MS } from "./control.ts";
import type { Deliveries, Received } from "./deliveries.ts";
import type { JobIntake } from "./intake.ts";

/** How long a pull across jobs waits for the first messages of a consumer it just started. */
const SETTLE_MS = 100;
/** After a wake, a pull across jobs waits this long for the rest of a burst of deliveries. */
const GATHER_MS = 5;
/** How often a job at its `maxInFlight` is looked at again (room comes from acks, not arrivals). */
const CAP_POLL_MS = 50;

/** What pulls need of the broker. */
export interface PullContext {
  readonly connection: RabbitConnection;
  readonly deliveries: Deliveries;
  intake(jobId: string): JobIntake;
  /** Declares the job's topology on `session` and joins its census. */
  join(session: Session, jobId: string): Promise<void>;
  control(jobId: string): Promise<JobControl>;
  /** Refreshes the control words of several jobs at once (one read of the store). */
  refreshControls(jobIds: readonly string[]): Promise<void>;
  /** The job's `maxInFlight`, if its record has one. */
  cap(jobId: string): Promise<number | undefined>;
  /** Messages ready in the job's task queue now. */
  ready(jobId: string): Promise<number>;
}

/** A job open for claims in this round. */
interface Open {
  readonly jobId: string;
  readonly intake: JobIntake;
  room: number;
  readonly started: boolean;
}

/** Pulls from one job or across jobs. */
export class Pulls {
  readonly #ctx: PullContext;
  #turn = 0;

  constructor(context: PullContext) {
    this.#ctx = context;
  }

  /** A pull from one job. */
  async one({ jobId, max, waitMs, signal }: PullRequest): Promise<Delivery[]> {
    const intake = this.#ctx.intake(jobId);
    const deadline = Date.now() + waitMs;
    intake.pullStarted();
    try {
      for (;;) {
        if (signal.aborted) return [];
        const session = await this.#session(deadline);
        const open = await this.#open(session, jobId, max, false);
        if (open && open.room > 0) {
          const taken = intake.take(session, open.room);
          if (taken.length > 0) return this.#handOut(taken);
        }
        const left = deadline - Date.now();
        if (left <= 0) return [];
        await intake.wait(Math.min(left, pollMs(open)), signal);
      }
    } finally {
      intake.pullEnded();
    }
  }

  /** A pull across jobs, in the order described in the module doc. */
  async across({ jobIds, max, waitMs, signal }: PullAcrossRequest): Promise<Delivery[]> {
    const intakes = jobIds.map((id) => this.#ctx.intake(id));
    const deadline = Date.now() + waitMs;
    for (const intake of intakes) intake.pullStarted();
    try {
      for (;;) {
        if (signal.aborted) return [];
        const session = await this.#session(deadline);
        await this.#ctx.refreshControls(jobIds);
        const open: Open[] = [];
        for (const jobId of jobIds) {
          const job = await this.#open(session, jobId, max, true);
          if (job) open.push(job);
        }
        await this.#settle(session, open.filter((j) => j.started && j.room > 0), signal);
        const taken = this.#pick(session, open, max);
        if (taken.length > 0) return this.#handOut(taken);
        const left = deadline - Date.now();
        if (left <= 0) return [];
        const waitFor = Math.min(left, ...open.map(pollMs), CONTROL_CACHE_MS);
        // The first job to wake ends the others' waits (and their timers).
        const round = new AbortController();
        const either = AbortSignal.any([signal, round.signal]);
        await Promise.race(intakes.map((i) => i.wait(waitFor, either)));
        round.abort();
        if (!signal.aborted) await sleep(Math.min(GATHER_MS, Math.max(0, deadline - Date.now())));
      }
    } finally {
      for (const intake of intakes) intake.pullEnded();
    }
  }

  #session(deadline: number): Promise<Session> {
    return this.#ctx.connection.session(Math.max(100, deadline - Date.now()));
  }

  #handOut(taken: Received[]): Delivery[] {
    return taken.map((r) => this.#ctx.deliveries.handOut(r.task.jobId, r));
  }

  /**
   * Readies one job for this round: null when its control hands nothing out (a paused job's
   * consumer stops; a cancelled job's prefetched messages are cancelled), else its room under
   * its cap.
   */
  async #open(session: Session, jobId: string, max: number, across: boolean): Promise<Open | null> {
    const ctx = this.#ctx;
    await ctx.join(session, jobId);
    const intake = ctx.intake(jobId);
    const control = await ctx.control(jobId);
    if (control === "paused") {
      await intake.stop();
      return null;
    }
    const cap = control === "cancelled" ? undefined : await ctx.cap(jobId);
    const held = ctx.deliveries.count(jobId, session);
    const started = await intake.consume(session, {
      max,
      ...(across ? { held } : {}),
      ...(cap === undefined ? {} : { cap }),
    });
    if (control === "cancelled") {
      await intake.cancelBuffered();
      return null;
    }
    const room = cap === undefined ? max : Math.max(0, Math.min(max, cap - held));
    return { jobId, intake, room, started };
  }

  /**
   * Waits up to `SETTLE_MS` for the first messages of consumers started this round whose queues
   * hold messages, so their jobs are compared with the others by what they hold.
   */
  async #settle(session: Session, started: readonly Open[], signal: AbortSignal): Promise<void> {
    const waiting: Open[] = [];
    for (const job of started) {
      if (job.intake.headPriority(session) !== undefined) continue;
      if (await this.#ctx.ready(job.jobId) > 0) waiting.push(job);
    }
    const until = Date.now() + SETTLE_MS;
    for (const job of waiting) {
      while (job.intake.headPriority(session) === undefined && Date.now() < until) {
        if (signal.aborted) return;
        await job.intake.wait(until - Date.now(), signal);
      }
    }
  }

  /** Up to `max` prefetched messages, best priority first, ties shared in turn. */
  #pick(session: Session, open: Open[], max: number): Received[] {
    const out: Received[] = [];
    while (out.length < max) {
      let best: Open | undefined;
      let bestPriority = -Infinity;
      for (let k = 0; k < open.length; k++) {
        const job = open[(this.#turn + k) % open.length]!;
        if (job.room <= 0) continue;
        const priority = job.intake.headPriority(session);
        if (priority !== undefined && priority > bestPriority) {
          best = job;
          bestPriority = priority;
        }
      }
      const taken = best?.intake.takeBest(session);
      if (!best || !taken) break;
      best.room -= 1;
      out.push(taken);
      this.#turn = (open.indexOf(best) + 1) % Math.max(1, open.length);
    }
    return out;
  }
}

/** How long to wait before looking at a job again that has no room or is not open. */
function pollMs(open: Open | null): number {
  if (!open) return CONTROL_CACHE_MS;
  return open.room > 0 ? Infinity : CAP_POLL_MS;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
