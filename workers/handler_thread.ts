/**
 * The body of a handler thread (a Deno Web Worker): {@linkcode serveThread} gets the job, then
 * runs one chunk at a time for the pool in thread_pool.ts. The thread's root module is generated
 * by the pool: it imports the job module and this one statically, so the job's code loads as the
 * thread's own and needs none of the permissions the thread is denied. Messages: see
 * {@linkcode ThreadMessage}.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { isJob, isUnrecoverable, type Job } from "../jobs/define_job.ts";
import { permissionDeniedReason } from "../jobs/permissions.ts";
import type { ChunkTask } from "../brokers/broker.ts";

/** Main → thread. */
export type PoolMessage =
  | {
    readonly type: "run";
    readonly id: number;
    readonly task: ChunkTask;
    readonly attempt: number;
    readonly workerId: string;
  }
  | { readonly type: "abort"; readonly id: number };

/** Thread → main. */
export type ThreadMessage =
  | { readonly type: "ready"; readonly name: string }
  | { readonly type: "init-error"; readonly message: string }
  | { readonly type: "crash"; readonly message: string }
  | { readonly type: "done"; readonly id: number; readonly ok: true; readonly value: unknown }
  | {
    readonly type: "done";
    readonly id: number;
    readonly ok: false;
    readonly reason: string;
    readonly unrecoverable: boolean;
    readonly aborted: boolean;
  }
  | { readonly type: "progress"; readonly id: number; readonly done: number }
  | {
    readonly type: "log";
    readonly level: "debug" | "info" | "warn" | "error";
    readonly message: string;
    readonly fields?: Record<string, unknown>;
  };

const running = new Map<number, AbortController>();

function post(message: ThreadMessage): void {
  self.postMessage(message);
}

function logger(level: "debug" | "info" | "warn" | "error") {
  return (message: string, fields?: Record<string, unknown>) =>
    post({ type: "log", level, message, fields });
}
const log = {
  debug: logger("debug"),
  info: logger("info"),
  warn: logger("warn"),
  error: logger("error"),
};

/**
 * Forwards a chunk's progress to the pool at most every 200 ms (a handler may call it often); a
 * count held back is sent when the window ends, if the handler lets the thread's timers run.
 */
function progressReporter(id: number): (done: number) => void {
  let last = -Infinity;
  let pending: number | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const send = (done: number) => {
    last = performance.now();
    pending = undefined;
    if (running.has(id)) post({ type: "progress", id, done });
  };
  return (done) => {
    const wait = 200 - (performance.now() - last);
    if (wait <= 0) {
      clearTimeout(timer);
      timer = undefined;
      return send(done);
    }
    pending = done;
    timer ??= setTimeout(() => {
      timer = undefined;
      if (pending !== undefined) send(pending);
    }, wait);
  };
}

async function run(job: Job, message: Extract<PoolMessage, { type: "run" }>): Promise<void> {
  const controller = new AbortController();
  running.set(message.id, controller);
  const { task } = message;
  try {
    const value = await job.run(
      {
        jobId: task.jobId,
        chunkId: task.chunkId,
        start: task.start,
        end: task.end,
        totalParams: task.totalParams,
        args: task.args,
      },
      {
        signal: controller.signal,
        attempt: message.attempt,
        workerId: message.workerId,
        log,
        progress: progressReporter(message.id),
      },
    );
    if (controller.signal.aborted) {
      // A handler that returns after its abort may hold a partial result: never publish it.
      post({
        type: "done",
        id: message.id,
        ok: false,
        reason: "Chunk aborted",
        unrecoverable: false,
        aborted: true,
      });
    } else post({ type: "done", id: message.id, ok: true, value });
  } catch (error) {
    // An access the job did not declare cannot succeed on a retry: dead-letter it at once.
    const denied = permissionDeniedReason(error, job.name);
    post({
      type: "done",
      id: message.id,
      ok: false,
      reason: denied ?? (error instanceof Error ? error.message || error.name : String(error)),
      unrecoverable: denied !== undefined || isUnrecoverable(error),
      aborted: controller.signal.aborted,
    });
  } finally {
    running.delete(message.id);
  }
}

/**
 * An error thrown outside any handler's await (a stray timer) or a rejection nobody handles ends
 * the thread, as it would without these listeners, but is reported to the pool as a crash
 * instead of being printed as a stack trace on the worker's stderr.
 */
function reportCrashes(): void {
  const crash = (message: string) => {
    post({ type: "crash", message });
    self.close();
  };
  self.addEventListener("error", (event) => {
    event.preventDefault();
    crash(event.message || String(event.error));
  });
  self.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    const reason = event.reason instanceof Error ? event.reason.message : String(event.reason);
    crash(`Unhandled rejection: ${reason}`);
  });
}

/**
 * Serves the pool with `job` (the job module's default export, imported by the thread's root
 * module): says `ready`, or `init-error` when it is not a job.
 */
export function serveThread(job: unknown): void {
  reportCrashes();
  if (!isJob(job)) {
    post({ type: "init-error", message: "the module's default export is not a job" });
    return;
  }
  self.onmessage = async (event: MessageEvent<PoolMessage>) => {
    const message = event.data;
    if (message.type === "run") {
      await run(job, message);
    } else if (message.type === "abort") {
      running.get(message.id)?.abort(new DOMException("Chunk aborted", "AbortError"));
    }
  };
  post({ type: "ready", name: job.name });
}
