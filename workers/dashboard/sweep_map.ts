/**
 * The sweep map: a job's parameter range `[0, totalParams)` cut into at most a few thousand
 * cells, each coloured by the worst state of the chunks it holds: dead-lettered > running >
 * retrying > waiting > cancelled > done. It is built from what the contract gives: the counted
 * results (chunk id → range), the dead letters (their tasks' ranges), the chunk ids the fleet
 * reports running and those it gave back for a retry not due yet, and the job's control
 * (parameters nobody accounts for are waiting, or cancelled once the job is).
 *
 * @module
 */
import type { JobControl, JobRecord } from "../../brokers/broker.ts";

/** A cell's state, worst last. */
export const CELL_STATES = ["done", "cancelled", "waiting", "retrying", "running", "dead"] as const;
/** One of {@linkcode CELL_STATES}. */
export type CellState = typeof CELL_STATES[number];
/** The one-letter code of each state in {@linkcode SweepMap.cells}. */
export const CELL_CODES: Readonly<Record<CellState, string>> = {
  done: "d",
  cancelled: "c",
  waiting: "w",
  retrying: "y",
  running: "r",
  dead: "x",
};

/** What each code of {@linkcode CELL_CODES} stands for, as the API and the page name it. */
export const CELL_LEGEND: Readonly<Record<string, string>> = {
  d: "done",
  c: "cancelled",
  w: "waiting",
  y: "retrying",
  r: "running",
  x: "dead-lettered",
};

/** Most cells a map has, unless asked otherwise. */
export const MAX_CELLS = 2000;

/** A parameter range `[start, end)`. */
export interface ParamRange {
  readonly start: number;
  readonly end: number;
}

/** What a map is drawn from. */
export interface SweepMapInput {
  readonly record: Pick<JobRecord, "totalParams" | "chunkSize">;
  readonly control: JobControl;
  /** Chunk ids with a counted result. */
  readonly completed: Iterable<string>;
  /** Ranges of the dead-lettered chunks. */
  readonly dead: Iterable<ParamRange>;
  /** Chunk ids the fleet reports running. */
  readonly running: Iterable<string>;
  /** Chunk ids the fleet gave back for a retry that is not due yet. @default none */
  readonly retrying?: Iterable<string>;
  /** @default {@linkcode MAX_CELLS} */
  readonly maxCells?: number;
}

/** The map: cell `i` holds parameters `[i * paramsPerCell, min(total, (i + 1) * paramsPerCell))`. */
export interface SweepMap {
  readonly totalParams: number;
  readonly paramsPerCell: number;
  /** One letter per cell ({@linkcode CELL_CODES}). */
  readonly cells: string;
  /** Cells in each state. */
  readonly counts: Readonly<Record<CellState, number>>;
}

const CHUNK_ID = /^(\d+)((?:\.[01])*)$/;

/**
 * The parameters of chunk `chunkId` of a job: chunk `n` holds `[n * chunkSize, (n + 1) *
 * chunkSize)` (the last one fewer), and each `.0`/`.1` of a bisected chunk's half takes the
 * first or second part of its parent's range, split at `start + floor(size / 2)`. Undefined for
 * an id that is not of that form or lies outside the sweep.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chunkRange } from "./sweep_map.ts";
 * const record = { totalParams: 1000, chunkSize: 100 };
 * assert.deepEqual(chunkRange(record, "00003"), { start: 300, end: 400 });
 * assert.deepEqual(chunkRange(record, "00003.1.0"), { start: 350, end: 375 });
 * ```
 */
export function chunkRange(
  record: Pick<JobRecord, "totalParams" | "chunkSize">,
  chunkId: string,
): ParamRange | undefined {
  const match = CHUNK_ID.exec(chunkId);
  if (!match) return undefined;
  let start = Number(match[1]) * record.chunkSize;
  let end = Math.min(record.totalParams, start + record.chunkSize);
  if (!(start < end)) return undefined;
  for (const half of match[2]!.split(".").slice(1)) {
    const middle = start + Math.floor((end - start) / 2);
    if (half === "0") end = middle;
    else start = middle;
    if (!(start < end)) return undefined;
  }
  return { start, end };
}

const RANK: Readonly<Record<CellState, number>> = {
  done: 0,
  cancelled: 1,
  waiting: 2,
  retrying: 3,
  running: 4,
  dead: 5,
};

/**
 * Builds the map. A cell takes the worst state of the ranges that touch it; a cell with
 * parameters no result, dead letter or running chunk covers is at least waiting (cancelled
 * once the job is cancelled).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildSweepMap } from "./sweep_map.ts";
 * const map = buildSweepMap({
 *   record: { totalParams: 40, chunkSize: 10 },
 *   control: "running",
 *   completed: ["00000", "00001"],
 *   dead: [{ start: 25, end: 26 }],
 *   running: ["00003"],
 *   maxCells: 4,
 * });
 * assert.equal(map.cells, "ddxr");
 * ```
 */
export function buildSweepMap(input: SweepMapInput): SweepMap {
  const total = input.record.totalParams;
  const maxCells = Math.max(1, Math.floor(input.maxCells ?? MAX_CELLS));
  const per = Math.ceil(total / Math.min(maxCells, total));
  const cellCount = Math.ceil(total / per);
  const worst = new Uint8Array(cellCount);
  const covered = new Float64Array(cellCount);
  const ranges: ParamRange[] = [];
  const mark = (range: ParamRange | undefined, state: CellState) => {
    if (!range) return;
    const start = Math.max(0, range.start);
    const end = Math.min(total, range.end);
    if (!(start < end)) return;
    ranges.push({ start, end });
    const rank = RANK[state];
    for (let c = Math.floor(start / per); c <= Math.floor((end - 1) / per); c++) {
      if (worst[c]! < rank) worst[c] = rank;
    }
  };
  for (const id of input.completed) mark(chunkRange(input.record, id), "done");
  for (const range of input.dead) mark(range, "dead");
  // A cancelled job's retry never comes: those chunks are cancelled (the uncovered rule below).
  if (input.control !== "cancelled") {
    for (const id of input.retrying ?? []) mark(chunkRange(input.record, id), "retrying");
  }
  for (const id of input.running) mark(chunkRange(input.record, id), "running");
  // Parameters in no range are queued (or cancelled): measure what the union of ranges covers.
  ranges.sort((a, b) => a.start - b.start);
  let open: { start: number; end: number } | undefined;
  const cover = (range: ParamRange) => {
    for (let c = Math.floor(range.start / per); c <= Math.floor((range.end - 1) / per); c++) {
      covered[c]! += Math.min(range.end, (c + 1) * per) - Math.max(range.start, c * per);
    }
  };
  for (const range of ranges) {
    if (open && range.start <= open.end) open.end = Math.max(open.end, range.end);
    else {
      if (open) cover(open);
      open = { ...range };
    }
  }
  if (open) cover(open);
  const uncovered = RANK[input.control === "cancelled" ? "cancelled" : "waiting"];
  const counts: Record<CellState, number> = {
    done: 0,
    cancelled: 0,
    waiting: 0,
    retrying: 0,
    running: 0,
    dead: 0,
  };
  let cells = "";
  for (let c = 0; c < cellCount; c++) {
    const size = Math.min(total, (c + 1) * per) - c * per;
    if (covered[c]! < size && worst[c]! < uncovered) worst[c] = uncovered;
    const state = CELL_STATES[worst[c]!]!;
    counts[state]++;
    cells += CELL_CODES[state];
  }
  return { totalParams: total, paramsPerCell: per, cells, counts };
}

/**
 * How long a job's map is kept before it is built again: a few seconds, more for a job with many
 * chunks (each build reads every result), at most half a minute.
 */
export function mapRefreshMs(chunks: number): number {
  return Math.min(30_000, 2_000 + Math.floor(chunks / 100));
}
