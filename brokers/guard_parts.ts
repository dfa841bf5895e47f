/**
 * The guarded sub-stores of a broker: its dead letters, its fleet registry and its retention,
 * each call checked and run like every other broker call (guard.ts's `run`: closed, errors
 * translated once).
 *
 * @module
 */
import type { DeadLetterSelector, DeadLetterStore, Retention } from "./broker.ts";
import type { BrokerDriver } from "./driver.ts";
import { assertCount } from "./options.ts";
import { type DriverKv, type FleetRegistry, fleetRegistry, listJobs } from "./registry.ts";
import { applyRetention, defaultTtlSeconds, setDefaultTtlSeconds } from "./retention.ts";
import { assertJobId } from "./task.ts";

/** Runs one broker operation as the guard does. */
export type Run = <T>(action: string, fn: () => T | Promise<T>) => Promise<T>;

/** A job id, or a glob on job ids (what a fleet worker's record names). */
function isJobGlob(value: unknown): boolean {
  return typeof value === "string" && /^[A-Za-z0-9._*?[\]-]{1,63}$/.test(value);
}

/** The fleet registry over the driver's store, its records checked. */
export function guardedFleet(kv: DriverKv, run: Run): FleetRegistry {
  const registry = fleetRegistry(kv);
  return {
    report: (record) =>
      run(`report worker "${record?.workerId}"`, () => {
        if (!isJobGlob(record.jobId)) {
          throw new TypeError(
            `Invalid jobId "${record.jobId}": expected a job id or a glob on job ids`,
          );
        }
        return registry.report(record);
      }),
    list: (options = {}) =>
      run("list workers", () => {
        if (options.jobId !== undefined) assertJobId(options.jobId);
        return registry.list(options);
      }),
  };
}

/** Retention over the driver's store; `reset` deletes an expired job as `Broker.reset` does. */
export function guardedRetention(
  driver: BrokerDriver,
  run: Run,
  reset: (jobId: string) => Promise<void>,
): Retention {
  const kv = driver.kv;
  return {
    defaultTtl: () => run("read the default time to live", () => defaultTtlSeconds(kv)),
    setDefaultTtl: (seconds) =>
      run("set the default time to live", () => {
        if (seconds !== null) assertCount("seconds", seconds, 1);
        return setDefaultTtlSeconds(kv, seconds);
      }),
    finished: () => run("read finished jobs", async () => new Map(await kv.list("finished"))),
    apply: (now) =>
      run("apply retention", () =>
        applyRetention({
          kv,
          listJobs: () => listJobs(kv),
          stats: (jobId) => driver.stats(jobId),
          reset,
        }, now)),
  };
}

/** The dead letters of the driver, their selectors checked against its id form. */
export function guardedDeadLetters(driver: BrokerDriver, run: Run): DeadLetterStore {
  const check = (selector: DeadLetterSelector) => {
    assertJobId(selector?.jobId);
    if (selector.ids !== undefined && !Array.isArray(selector.ids)) {
      throw new TypeError(`Invalid ids "${String(selector.ids)}": expected an array of ids`);
    }
    const { form, example } = driver.deadLetterIds;
    for (const id of selector.ids ?? []) {
      if (typeof id !== "string" || !form.test(id)) {
        throw new TypeError(
          `Invalid dead-letter id "${id}": expected an id listed by ttg dlq list, like ${example}`,
        );
      }
    }
  };
  return {
    list: (jobId, options = {}) =>
      run(`list dead letters of job "${jobId}"`, () => {
        assertJobId(jobId);
        if (options.limit !== undefined) assertCount("limit", options.limit, 0);
        return driver.listDeadLetters(jobId, options.limit);
      }),
    replay: (selector) =>
      run(`replay dead letters of job "${selector?.jobId}"`, () => {
        check(selector);
        return driver.replayDeadLetters(selector.jobId, selector.ids);
      }),
    purge: (selector) =>
      run(`purge dead letters of job "${selector?.jobId}"`, () => {
        check(selector);
        return driver.purgeDeadLetters(selector.jobId, selector.ids);
      }),
  };
}
