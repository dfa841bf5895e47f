/**
 * The dashboard's JSON API, which its page uses and scripts can use too (snake_case, as every
 * `--json` output of `ttg`):
 *
 * - `GET /api/jobs`: every job of the broker with its state, progress, rates, ETA, dead letters
 *   and age.
 * - `GET /api/jobs/{id}`: one job: the same, its record, the series of its queue depth, in
 *   flight and throughput, its fleet, and its first dead letters (reason, attempt history,
 *   parameters).
 * - `GET /api/jobs/{id}/map`: the sweep map (workers/dashboard/sweep_map.ts).
 * - `POST /api/jobs/{id}/{pause,resume,cancel}` and
 *   `POST /api/jobs/{id}/dead-letters/{replay,purge}` (body `{"ids": [...]}` to pick some):
 *   the actions.
 *
 * Reads come from the shared {@linkcode DashboardHub}; a broker that cannot be read is a 503
 * with `{"error": "Broker unreachable: …"}`.
 *
 * @module
 */
import type { ControlAction, DeadLetter } from "../../brokers/broker.ts";
import { runningOf } from "../../brokers/registry.ts";
import { isJobId } from "../../brokers/task.ts";
import { errorMessage } from "../../errors.ts";
import { controlJob } from "../job_control.ts";
import { snapshotJson } from "../watch/render.ts";
import { chunksOf, doneOf, type JobView, type Snapshot } from "../watch/snapshot.ts";
import { BrokerUnreachable, type DashboardHub } from "./hub.ts";
import { CELL_LEGEND } from "./sweep_map.ts";

/** What the API needs besides the hub. */
export interface ApiContext {
  readonly hub: DashboardHub;
  /** Actions are allowed. */
  readonly allowActions: boolean;
}

/** A route of the API: what kind of request it is, and its handler. */
export interface ApiRoute {
  readonly kind: "read" | "action";
  handle(context: ApiContext): Promise<Response>;
}

const JSON_HEADERS = { "cache-control": "no-store" };

function json(body: unknown, status = 200): Response {
  return Response.json(body, { status, headers: JSON_HEADERS });
}

function problem(status: number, error: string): Response {
  return json({ error }, status);
}

const CONTROL_ACTIONS: readonly ControlAction[] = ["pause", "resume", "cancel"];

/**
 * The route of a request under `/api/`, or undefined when there is none (404). Reads are GET,
 * actions POST; the caller checks access for the route's kind before calling `handle`.
 */
export function apiRoute(request: Request, pathname: string): ApiRoute | "bad-method" | undefined {
  const parts = pathname.replace(/^\/api\/?/, "").split("/").filter((p) => p !== "");
  const get = request.method === "GET" || request.method === "HEAD";
  const post = request.method === "POST";
  const [root, rawId, first, second] = parts;
  if (root !== "jobs") return undefined;
  if (parts.length === 1) return get ? read((c) => jobsList(c)) : "bad-method";
  const jobId = decodeURIComponent(rawId ?? "");
  if (parts.length === 2) return get ? read((c) => jobDetail(c, jobId)) : "bad-method";
  if (parts.length === 3 && first === "map") {
    return get ? read((c) => jobMap(c, jobId)) : "bad-method";
  }
  if (parts.length === 3 && CONTROL_ACTIONS.includes(first as ControlAction)) {
    return post ? act((c) => control(c, jobId, first as ControlAction)) : "bad-method";
  }
  if (
    parts.length === 4 && first === "dead-letters" && (second === "replay" || second === "purge")
  ) {
    return post ? act((c) => deadLetterAction(c, jobId, second, request)) : "bad-method";
  }
  return undefined;
}

function read(fn: (c: ApiContext) => Promise<Response>): ApiRoute {
  return { kind: "read", handle: (c) => guarded(fn, c) };
}

function act(fn: (c: ApiContext) => Promise<Response>): ApiRoute {
  return { kind: "action", handle: (c) => guarded(fn, c) };
}

async function guarded(fn: (c: ApiContext) => Promise<Response>, c: ApiContext) {
  try {
    return await fn(c);
  } catch (error) {
    if (error instanceof BrokerUnreachable) return problem(503, error.message);
    if (error instanceof TypeError || error instanceof RangeError) {
      return problem(400, error.message);
    }
    return problem(503, new BrokerUnreachable(error).message);
  }
}

/** One job's summary row. */
function jobRow(
  hub: DashboardHub,
  view: JobView,
  snapshot: Snapshot,
  base: unknown,
): Record<string, unknown> {
  const total = chunksOf(view);
  const done = doneOf(view);
  const trend = hub.history.trend(view, total);
  const created = view.record ? Date.parse(view.record.createdAt) : NaN;
  return {
    ...(base as Record<string, unknown>),
    control: view.stats.control,
    done,
    progress: total ? Math.min(1, done / total) : null,
    rate_now: round(trend.rateNow),
    rate_average: round(trend.rateAverage),
    eta_seconds: trend.etaSeconds === undefined ? null : round(trend.etaSeconds),
    created_at: view.record?.createdAt ?? null,
    age_seconds: Number.isFinite(created) ? Math.max(0, (snapshot.at - created) / 1000) : null,
  };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

async function jobsList(c: ApiContext): Promise<Response> {
  const snapshot = await c.hub.snapshot();
  const base = snapshotJson(snapshot, c.hub.broker.backend);
  const rows = base.jobs as unknown[];
  return json({
    at: base.at,
    backend: base.backend,
    actions: c.allowActions,
    interval_ms: c.hub.intervalMs,
    jobs: snapshot.jobs.map((view, i) => jobRow(c.hub, view, snapshot, rows[i])),
  });
}

async function findJob(c: ApiContext, jobId: string): Promise<JobView | Response> {
  if (!isJobId(jobId)) return problem(404, `Job "${jobId}" is not a job id`);
  const view = await c.hub.job(jobId);
  return view ?? problem(404, `Job "${jobId}" was not found on ${c.hub.broker.backend}`);
}

/** A dead letter as the page shows it: its parameters, why, and every attempt. */
export function deadLetterJson(d: DeadLetter): Record<string, unknown> {
  return {
    id: d.id,
    chunk_id: d.task?.chunkId ?? null,
    start: d.task?.start ?? null,
    end: d.task?.end ?? null,
    params: d.task ? d.task.end - d.task.start : 0,
    kind: d.kind,
    reason: d.reason,
    attempts: d.attempts,
    at: d.at,
    history: d.history.map((h) => ({
      attempt: h.attempt,
      kind: h.kind,
      reason: h.reason,
      worker_id: h.workerId,
      at: h.at,
    })),
    ...(d.raw !== undefined ? { raw: d.raw.slice(0, 2000) } : {}),
  };
}

async function jobDetail(c: ApiContext, jobId: string): Promise<Response> {
  const snapshot = await c.hub.snapshot();
  const view = await findJob(c, jobId);
  if (view instanceof Response) return view;
  const base = snapshotJson({ at: snapshot.at, jobs: [view] }, c.hub.broker.backend);
  const row = jobRow(c.hub, view, snapshot, (base.jobs as unknown[])[0]);
  const letters = view.stats.deadLettered > 0 ? (await c.hub.deadLetters(jobId)).letters : [];
  const samples = c.hub.history.samples(jobId);
  const running = new Map(view.workers.map((w) => [w.workerId, runningOf(w, jobId)]));
  return json({
    at: base.at,
    backend: base.backend,
    actions: c.allowActions,
    interval_ms: c.hub.intervalMs,
    job: {
      ...row,
      workers: (row.workers as Record<string, unknown>[]).map((w) => ({
        ...w,
        running: running.get(w.id as string) ?? [],
        rate: round(c.hub.history.workerRate(jobId, w.id as string)),
      })),
      record: view.record && {
        handler: view.record.handler,
        total_params: view.record.totalParams,
        total_chunks: view.record.totalChunks,
        chunk_size: view.record.chunkSize,
        created_at: view.record.createdAt,
        args: view.record.args,
      },
    },
    series: {
      at: samples.map((s) => new Date(s.at).toISOString()),
      depth: samples.map((s) => s.depth),
      in_flight: samples.map((s) => s.inFlight),
      throughput: samples.map((s, i) => {
        const before = samples[i - 1];
        return before && s.at > before.at
          ? round(Math.max(0, (s.done - before.done) / ((s.at - before.at) / 1000)))
          : 0;
      }),
    },
    dead_letters: {
      total: view.stats.deadLettered,
      shown: letters.map(deadLetterJson),
    },
  });
}

async function jobMap(c: ApiContext, jobId: string): Promise<Response> {
  const view = await findJob(c, jobId);
  if (view instanceof Response) return view;
  const map = await c.hub.sweepMap(view);
  if (!map) {
    return problem(404, `Job "${jobId}" has no record (its chunk size is unknown): no map`);
  }
  return json({
    at: new Date(map.at).toISOString(),
    job_id: jobId,
    total_params: map.totalParams,
    params_per_cell: map.paramsPerCell,
    cells: map.cells,
    counts: map.counts,
    refresh_ms: map.refreshMs,
    legend: CELL_LEGEND,
  });
}

async function control(c: ApiContext, jobId: string, action: ControlAction): Promise<Response> {
  const view = await findJob(c, jobId);
  if (view instanceof Response) return view;
  const { finished, outcome } = await controlJob(c.hub.broker, jobId, action);
  if (finished) return problem(409, `Job "${jobId}" is already ${finished}; nothing to ${action}`);
  c.hub.invalidate(jobId);
  return json({ job_id: jobId, action, ...outcome });
}

async function deadLetterAction(
  c: ApiContext,
  jobId: string,
  action: "replay" | "purge",
  request: Request,
): Promise<Response> {
  let body: unknown = {};
  const text = await request.text();
  if (text.trim() !== "") {
    try {
      body = JSON.parse(text);
    } catch (error) {
      return problem(400, `The body is not JSON: ${errorMessage(error)}`);
    }
  }
  const ids = (body as { ids?: unknown }).ids;
  if (
    ids !== undefined &&
    (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => typeof id === "string"))
  ) {
    return problem(400, 'Field "ids" must be a non-empty array of dead-letter ids');
  }
  const view = await findJob(c, jobId);
  if (view instanceof Response) return view;
  if (ids) {
    const known = new Set((await c.hub.broker.deadLetters.list(jobId)).map((d) => d.id));
    const unknown = (ids as string[]).filter((id) => !known.has(id));
    if (unknown.length > 0) {
      return problem(
        404,
        `No dead letter of job "${jobId}" has the id ${unknown.map((id) => `"${id}"`).join(", ")}`,
      );
    }
  }
  const selector = { jobId, ...(ids ? { ids: ids as string[] } : {}) };
  const count = await c.hub.broker.deadLetters[action](selector);
  c.hub.invalidate(jobId);
  return json({ job_id: jobId, action, count });
}
