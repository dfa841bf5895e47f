/**
 * The fleet section (`deno task bench --only fleet`), on one fleet of 3 `ttg worker` processes
 * per broker (`--all-jobs` on a broker of the bench's own, `--jobs` on its own job ids on a
 * shared one): an urgent job's latency over a backlog with priorities on and off
 * (fleet_priority.ts), and 100 jobs at once beside one job of the same size (fleet_jobs.ts). A
 * broker that cannot pull across jobs yet gets rows that say so instead of failing.
 *
 * @module
 */
import { CHUNKS_PER_JOB, jobsRun, MANY_JOBS } from "./fleet_jobs.ts";
import { URGENT_CHUNKS, urgentRun } from "./fleet_priority.ts";
import { type BenchRow, measured, skipped } from "./table.ts";
import {
  type Backend,
  type BenchTarget,
  firstLine,
  multiJobPullGap,
  withTarget,
} from "./targets.ts";
import { startWorkers } from "./ttg_process.ts";

/** Options of {@linkcode benchFleet}. */
export interface FleetOptions {
  /** Low-priority chunks queued before the urgent job. @default 100000 */
  readonly backlog?: number;
  /** Runs of every figure. @default 3 */
  readonly runs?: number;
  readonly backends: readonly Backend[];
}

/** Fleet processes. */
const FLEET = 3;

/** Runs the fleet section. */
export async function benchFleet(options: FleetOptions): Promise<BenchRow[]> {
  const backlog = options.backlog ?? 100_000;
  const runs = options.runs ?? 3;
  const rows: BenchRow[] = [];
  for (const backend of options.backends) {
    const what = figures(backend, backlog);
    try {
      rows.push(
        ...await withTarget(backend, async (target) => {
          const gap = await multiJobPullGap(target);
          if (gap) return Object.values(what).map((w) => skipped(w, gap));
          return await measureFleet(target, backlog, runs, what);
        }),
      );
    } catch (error) {
      rows.push(...Object.values(what).map((w) => skipped(w, firstLine(error))));
    }
  }
  return rows;
}

function figures(backend: Backend, backlog: number) {
  const over = `${URGENT_CHUNKS} urgent chunks over ${backlog.toLocaleString("en-US")} queued`;
  const total = (MANY_JOBS * CHUNKS_PER_JOB).toLocaleString("en-US");
  const row = (figure: string, unit: string) => ({ section: backend, figure, unit });
  return {
    onP50: row(`${over}, priority 10: submit → chunk start, p50`, "ms"),
    onP99: row(`${over}, priority 10: submit → chunk start, p99`, "ms"),
    offP50: row(`${over}, priorities off (both 0): p50`, "ms"),
    offP99: row(`${over}, priorities off (both 0): p99`, "ms"),
    shortP50: row(`the same, urgent chunks of 1 ms (1 parameter), priority 10: p50`, "ms"),
    shortP99: row(`the same, urgent chunks of 1 ms (1 parameter), priority 10: p99`, "ms"),
    first: row(`priority 10: submit → the first urgent chunk's start`, "ms"),
    submit: row(`of which the urgent job's own submit (createJob + publish)`, "ms"),
    many: row(`${MANY_JOBS} jobs × ${CHUNKS_PER_JOB} chunks at once, ${FLEET} workers`, "chunks/s"),
    one: row(`one job of ${total} chunks, same fleet`, "chunks/s"),
  };
}

async function measureFleet(
  target: BenchTarget,
  backlog: number,
  runs: number,
  what: ReturnType<typeof figures>,
): Promise<BenchRow[]> {
  const broker = await target.open();
  const fleet = startWorkers({
    target,
    count: FLEET,
    serve: target.private ? ["--all-jobs"] : ["--jobs", target.jobGlob],
  });
  const samples = () => ({
    p50: [] as number[],
    p99: [] as number[],
    first: [] as number[],
    submit: [] as number[],
  });
  const on = samples();
  const off = samples();
  const shortOn = samples();
  const shortOff = samples();
  const many: number[] = [];
  const one: number[] = [];
  const problems: string[] = [];
  let splits = 0;
  let reclaimed = 0;
  try {
    await fleet.ready(broker);
    for (let run = 0; run < runs; run++) {
      const urgentJobs = [
        [{ priority: 10 }, on],
        [{ priority: 0 }, off],
        [{ priority: 10, chunkSize: 1 }, shortOn],
        [{ priority: 0, chunkSize: 1 }, shortOff],
      ] as const;
      for (const [job, into] of urgentJobs) {
        const latency = await urgentRun(target, broker, backlog, job);
        into.p50.push(latency.p50);
        into.p99.push(latency.p99);
        into.first.push(latency.first);
        into.submit.push(latency.submitMs);
      }
      const m = await jobsRun(target, broker, MANY_JOBS, CHUNKS_PER_JOB);
      const o = await jobsRun(target, broker, 1, MANY_JOBS * CHUNKS_PER_JOB);
      many.push(m.chunksPerSecond);
      one.push(o.chunksPerSecond);
      problems.push(...m.problems, ...o.problems);
      splits += m.splits;
      reclaimed += m.reclaimed;
      console.error(
        `bench: fleet ${target.backend} run ${run + 1}/${runs}: p99 ${on.p99.at(-1)} ms on, ${
          off.p99.at(-1)
        } ms off (1 ms chunks: ${shortOn.p99.at(-1)} on, ${shortOff.p99.at(-1)} off); ${
          Math.round(m.chunksPerSecond)
        } chunks/s over ${MANY_JOBS} jobs, ${Math.round(o.chunksPerSecond)} in one`,
      );
    }
  } finally {
    await fleet.stop();
    await broker.close();
  }
  const params = (MANY_JOBS * CHUNKS_PER_JOB * 10 * runs).toLocaleString("en-US");
  const check = problems.length === 0
    ? `all ${MANY_JOBS} jobs done in every run, each of their ${params} parameters in exactly one counted result, 0 dead-lettered, 0 duplicates; ${splits} chunks bisected, ${reclaimed} leases reclaimed`
    : `CHECK FAILED: ${problems.slice(0, 3).join("; ")}`;
  return [
    measured({ ...what.onP50, note: "beside: priorities off" }, on.p50, off.p50),
    measured({ ...what.onP99, note: "beside: priorities off" }, on.p99, off.p99),
    measured(what.offP50, off.p50),
    measured(what.offP99, off.p99),
    measured({ ...what.shortP50, note: "beside: priorities off" }, shortOn.p50, shortOff.p50),
    measured({ ...what.shortP99, note: "beside: priorities off" }, shortOn.p99, shortOff.p99),
    measured({ ...what.first, note: "beside: priorities off" }, on.first, off.first),
    measured(what.submit, [...on.submit, ...off.submit]),
    measured({ ...what.many, note: `${check}; beside: one job` }, many, one),
    measured(what.one, one),
  ];
}
