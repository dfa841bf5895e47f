/**
 * How `ttg monitor` shows a snapshot: a screen for a terminal (per job a progress bar of chunks
 * and parameters, the counters, throughput now and on average, ETA and a queue-depth trend; then
 * the fleet), one plain line per job for a log, and one JSON object for scripts.
 *
 * @module
 */
import { formatDuration } from "../progress.ts";
import { type History, sparkline } from "./history.ts";
import { chunksOf, doneOf, type JobView, type Snapshot } from "./snapshot.ts";

function bar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
}

function percent(done: number, total: number | undefined): string {
  return total ? `${Math.floor((done / total) * 100)}%` : "?%";
}

function ago(ms: number): string {
  return ms < 1000 ? "now" : `${formatDuration(ms / 1000)} ago`;
}

function fit(text: string, width: number): string {
  return [...text].length <= width
    ? text
    : `${[...text].slice(0, Math.max(0, width - 1)).join("")}…`;
}

/** The terminal screen: one line per element, each at most `width` columns. */
export function renderScreen(
  snapshot: Snapshot,
  history: History,
  options: { readonly width: number; readonly backend: string; readonly note?: string },
): string[] {
  const { width } = options;
  const when = new Date(snapshot.at).toISOString().replace("T", " ").slice(0, 19);
  const lines = [
    `TTG monitor · ${options.backend} · ${snapshot.jobs.length} job(s) · ${when} UTC   (Ctrl-C quits)`,
    ...(options.note ? [options.note] : []),
    "",
  ];
  for (const job of snapshot.jobs) lines.push(...jobLines(job, history, width), "");
  const workers = snapshot.jobs.flatMap((job) => job.workers.map((w) => ({ job, w })));
  lines.push(`Workers (${workers.length})`);
  if (workers.length) {
    lines.push(
      `  ${"ID".padEnd(20)} ${"JOB".padEnd(16)} ${"NODE".padEnd(12)} ${"STATE".padEnd(9)} ` +
        `${"CHUNKS".padStart(8)} ${"RATE".padStart(9)}  LAST SEEN`,
    );
    for (const { job, w } of workers) {
      const rate = `${history.workerRate(job.jobId, w.workerId).toFixed(1)}/s`;
      lines.push(
        `  ${fit(w.workerId, 20).padEnd(20)} ${fit(job.jobId, 16).padEnd(16)} ` +
          `${fit(w.node || w.host, 12).padEnd(12)} ${w.state.padEnd(9)} ${
            String(w.chunks).padStart(8)
          } ` +
          `${rate.padStart(9)}  ${ago(snapshot.at - Date.parse(w.lastSeen))}`,
      );
    }
  }
  return lines.map((line) => fit(line, width));
}

function jobLines(job: JobView, history: History, width: number): string[] {
  const s = job.stats;
  const total = chunksOf(job);
  const done = doneOf(job);
  const trend = history.trend(job, total);
  const params = job.record?.totalParams;
  const eta = trend.etaSeconds === undefined ? "?" : formatDuration(trend.etaSeconds);
  const barWidth = Math.max(10, Math.min(40, width - 60));
  return [
    `Job "${job.jobId}"  ${job.state}  ${job.record?.handler ?? "(no record)"}`,
    `  ${bar(total ? done / total : 0, barWidth)} ${percent(done, total)}  chunks ${done}/${
      total ?? "?"
    }  parameters ${s.completedParams}/${params ?? "?"}`,
    `  ready ${s.ready}  in flight ${s.inFlight}  retrying ${s.delayed}  dead ${s.deadLettered}  ` +
    `completed ${s.completed}  cancelled ${s.cancelled}  duplicates ${s.duplicates}  zombies ${s.zombies}`,
    `  ${trend.rateNow.toFixed(1)} chunks/s now, ${
      trend.rateAverage.toFixed(1)
    } on average, ETA ${eta}` +
    `   depth ${sparkline(trend.depths, Math.max(10, Math.min(60, width - 50)))}`,
  ];
}

/** One plain line per job, for a log (off a terminal). */
export function renderPlain(snapshot: Snapshot, history: History): string[] {
  const when = new Date(snapshot.at).toISOString();
  return snapshot.jobs.map((job) => {
    const s = job.stats;
    const total = chunksOf(job);
    const done = doneOf(job);
    const trend = history.trend(job, total);
    const eta = trend.etaSeconds === undefined ? "?" : formatDuration(trend.etaSeconds);
    return `${when} ${job.jobId} ${job.state} ${done}/${total ?? "?"} chunks (${
      percent(done, total)
    }) ready ${s.ready} in-flight ${s.inFlight} retrying ${s.delayed} dead ${s.deadLettered} ` +
      `rate ${trend.rateNow.toFixed(1)}/s ETA ${eta} workers ${job.workers.length}`;
  });
}

/** The snapshot as one JSON object for scripts (snake_case, as every `--json` output). */
export function snapshotJson(snapshot: Snapshot, backend: string): Record<string, unknown> {
  return {
    at: new Date(snapshot.at).toISOString(),
    backend,
    jobs: snapshot.jobs.map((job) => {
      const s = job.stats;
      return {
        job_id: job.jobId,
        state: job.state,
        handler: job.record?.handler ?? null,
        chunks: chunksOf(job) ?? null,
        params: job.record?.totalParams ?? null,
        ready: s.ready,
        in_flight: s.inFlight,
        retrying: s.delayed,
        completed: s.completed,
        completed_params: s.completedParams,
        dead_lettered: s.deadLettered,
        malformed: s.malformed,
        cancelled: s.cancelled,
        splits: s.splits,
        duplicates: s.duplicates,
        zombies: s.zombies,
        retried: s.retried,
        reclaimed: s.reclaimed,
        consumers: s.consumers,
        workers: job.workers.map((w) => ({
          id: w.workerId,
          state: w.state,
          host: w.host,
          pod: w.pod,
          node: w.node,
          chunks: w.chunks,
          params: w.params,
          in_flight: w.inFlight,
          failures: w.failures,
          timeouts: w.timeouts,
          last_seen: w.lastSeen,
        })),
      };
    }),
  };
}
