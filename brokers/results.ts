/**
 * Reading a job's counted results page by page through the contract, so a reader holds one page
 * at a time (`ttg run`'s report, `ttg results`, an export), or all of them for a small job.
 *
 * @module
 */
import type { Broker, StoredResult } from "./broker.ts";

/**
 * Every counted result of a job, a page at a time, in the broker's own order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openBroker } from "./open.ts";
 * import { eachResult } from "./results.ts";
 * await using broker = await openBroker({ backend: "sqlite", sqlitePath: ":memory:" });
 * let n = 0;
 * for await (const _ of eachResult(broker, "none")) n++;
 * assert.equal(n, 0);
 * ```
 */
export async function* eachResult(
  broker: Broker,
  jobId: string,
  pageSize = 1000,
): AsyncGenerator<StoredResult> {
  let cursor: string | undefined;
  for (;;) {
    const page = await broker.results(jobId, { limit: pageSize, ...(cursor ? { cursor } : {}) });
    yield* page.results;
    if (page.cursor === null) return;
    cursor = page.cursor;
  }
}

/** Every counted result of a job at once (for small jobs and tests). */
export async function allResults(broker: Broker, jobId: string): Promise<StoredResult[]> {
  const out: StoredResult[] = [];
  for await (const result of eachResult(broker, jobId)) out.push(result);
  return out;
}
