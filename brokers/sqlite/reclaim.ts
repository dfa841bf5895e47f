/**
 * The SQLite broker's takeover of leases: rows whose lease expired, and the rows of a holder
 * whose process ended (liveness.ts), each as the failure policy plans it (policy.ts
 * `planExpiry`) in one `BEGIN IMMEDIATE` transaction, fenced by the row's epoch.
 *
 * @module
 */
import type { BrokerOptions } from "../broker.ts";
import { type AttemptRecord, planExpiry, REASONS, underControl } from "../policy.ts";
import { readTaskJson } from "../task.ts";
import type { ConsumerLiveness } from "./liveness.ts";
import { CounterBatch, type Tables } from "./tables.ts";

interface ExpiredRow {
  id: number;
  job_id: string;
  chunk_id: string | null;
  payload: string;
  attempt: number;
  crashes: number;
  epoch: number;
  history: string;
  consumer: string | null;
}

/** Takes leases back for one handle; `liveness` is absent where there is no file (`:memory:`). */
export class LeaseReclaimer {
  readonly #t: Tables;
  readonly #options: BrokerOptions;
  readonly #liveness: ConsumerLiveness | undefined;

  constructor(tables: Tables, options: BrokerOptions, liveness: ConsumerLiveness | undefined) {
    this.#t = tables;
    this.#options = options;
    this.#liveness = liveness;
  }

  /**
   * Takes over rows whose lease expired, and the rows of a holder whose process ended, each as
   * the failure policy plans it (back in the queue with one more crash; bisected or
   * dead-lettered once the crash budget is spent; cancelled in a cancelled job). Reads first, so
   * idle calls lock nothing.
   */
  reclaim(jobId: string, max: number, now: number): number {
    const { s } = this.#t;
    const ended = this.#endedHolders(jobId, now);
    if (ended.length === 0 && s.probeExpired.get({ job: jobId, now }) === undefined) return 0;
    const { leaseMs, retry } = this.#options;
    return this.#t.transaction(() => {
      const control = this.#t.control(jobId, now);
      const rows = s.selectExpired.all({ job: jobId, now, max }) as unknown as ExpiredRow[];
      if (ended.length > 0) {
        const taken = new Set(rows.map((r) => r.id));
        const holders = JSON.stringify(ended);
        const held = s.selectHeldBy.all({ job: jobId, holders, cutoff: now + leaseMs });
        for (const row of held as unknown as ExpiredRow[]) if (!taken.has(row.id)) rows.push(row);
      }
      const counters = new CounterBatch();
      for (const row of rows) {
        const task = readTaskJson(row.payload, jobId);
        if (typeof task === "string") continue; // never handed out: claim() dead-letters those
        const state = {
          task,
          attempt: row.attempt,
          crashes: row.crashes,
          history: JSON.parse(row.history) as AttemptRecord[],
        };
        const holder = row.consumer ?? "unknown";
        const reason = ended.includes(holder)
          ? REASONS.processEnded(holder)
          : REASONS.leaseExpired(leaseMs);
        const cause = { holder, reason };
        const plan = underControl(planExpiry(state, cause, retry, now), control);
        counters.add("reclaimed");
        const fenced = { id: row.id, epoch: row.epoch };
        if (plan.action === "requeue") {
          s.expire.run({
            ...fenced,
            now,
            attempt: plan.attempt - 1,
            crashes: plan.crashes,
            history: JSON.stringify(plan.history),
          });
          continue;
        }
        s.deleteTask.run(fenced);
        if (plan.action === "split") {
          this.#t.insertTasks(plan.parts, now, 0);
          counters.add("splits");
        } else if (plan.action === "cancel") {
          counters.add("cancelled");
        } else {
          // The epoch of a takeover, so the holder that lost it hears `zombie`, not `gone`.
          this.#t.deadLetter(jobId, task, null, row.epoch + 1, plan.letter);
        }
      }
      counters.flush(s.addCounters, jobId);
      return rows.length;
    });
  }

  /** The holders of the job's live leases whose processes ended (none without liveness). */
  #endedHolders(jobId: string, now: number): string[] {
    if (!this.#liveness) return [];
    const rows = this.#t.s.leaseHolders.all({ job: jobId, now }) as { consumer: string }[];
    return rows.length === 0 ? [] : this.#liveness.ended(rows.map((r) => r.consumer));
  }
}
