/**
 * Runs a chunk's handler and reports its outcome; two implementations: in the main thread
 * ({@linkcode InlineExecutor}) and in a pool of Web Workers (thread_pool.ts).
 *
 * @module
 */
import type { ChunkTask } from "../brokers/broker.ts";
import { errorMessage } from "../errors.ts";
import { type Chunk, isUnrecoverable, type Job, type Logger } from "../jobs/define_job.ts";

/** One chunk to run. */
export interface ExecutionRequest {
  /** The chunk to run. */
  readonly task: ChunkTask;
  /** Attempt number of this run (1-based), passed to the handler. */
  readonly attempt: number;
  /** Id of the worker running the chunk, passed to the handler. */
  readonly workerId: string;
  /** Per-chunk timeout; past it the handler is stopped and the outcome is `timeout`. */
  readonly timeoutMs: number;
  /** Shutdown or a lost lease: stop the handler; the outcome is `aborted`. */
  readonly signal: AbortSignal;
  /** Receives the handler's `ctx.progress(done)` calls (threads forward them at most 5 per s). */
  readonly onProgress?: (done: number) => void;
}

/** What became of one chunk. */
export type ExecutionOutcome =
  | { readonly ok: true; readonly value: unknown; readonly durationMs: number }
  | {
    readonly ok: false;
    readonly kind: "failed" | "timeout" | "unrecoverable" | "aborted";
    readonly reason: string;
    readonly durationMs: number;
  };

/** Runs handlers. */
export interface ChunkExecutor extends AsyncDisposable {
  /** `threads` or `inline`. */
  readonly mode: string;
  /** Runs one chunk's handler; resolves with its outcome (a handler error is an outcome too). */
  execute(request: ExecutionRequest): Promise<ExecutionOutcome>;
  /** Releases the executor's resources. */
  close(): Promise<void>;
}

/** Turns a task into the handler's view of it. */
export function chunkOf(task: ChunkTask): Chunk {
  return {
    jobId: task.jobId,
    chunkId: task.chunkId,
    start: task.start,
    end: task.end,
    totalParams: task.totalParams,
    args: task.args,
  };
}

/** Reason text of a thrown value: its message, or its name when it has none. */
export function reasonOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** The outcome for a task whose handler this worker does not have. */
export function unknownHandler(task: ChunkTask, known: string): ExecutionOutcome {
  return {
    ok: false,
    kind: "unrecoverable",
    reason: `Unknown handler "${task.handler}": this worker runs "${known}"`,
    durationMs: 0,
  };
}

/**
 * Runs handlers on the main thread. Cheap, but a CPU-bound handler blocks heartbeats and a
 * handler that ignores its AbortSignal cannot be stopped: use it for trivial or async handlers.
 */
export class InlineExecutor implements ChunkExecutor {
  readonly mode = "inline";
  readonly #job: Job;
  readonly #log: Logger;
  /** Creates an executor that runs `job`'s handler, logging to `log`. */
  constructor(job: Job, log: Logger) {
    this.#job = job;
    this.#log = log;
  }

  /** Runs the handler on the main thread, racing it against the timeout and `request.signal`. */
  async execute(request: ExecutionRequest): Promise<ExecutionOutcome> {
    const t0 = performance.now();
    if (request.task.handler !== this.#job.name) {
      return unknownHandler(request.task, this.#job.name);
    }
    const controller = new AbortController();
    let timedOut = false;
    let stop: (() => void) | undefined;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const onAbort = () => {
      controller.abort(new DOMException("Chunk aborted", "AbortError"));
      stop!();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(
        new DOMException(`Chunk timed out after ${request.timeoutMs} ms`, "TimeoutError"),
      );
      stop!();
    }, request.timeoutMs);
    if (request.signal.aborted) onAbort();
    else request.signal.addEventListener("abort", onAbort, { once: true });
    try {
      const running = Promise.resolve().then(() =>
        this.#job.run(chunkOf(request.task), {
          signal: controller.signal,
          attempt: request.attempt,
          workerId: request.workerId,
          log: this.#log,
          progress: (done) => request.onProgress?.(done),
        })
      );
      running.catch(() => {}); // a handler that outlives its abort must not crash the process
      const value = await Promise.race([running, stopped.then(() => ABORTED)]);
      const durationMs = performance.now() - t0;
      if (value === ABORTED || controller.signal.aborted) {
        return timedOut
          ? {
            ok: false,
            kind: "timeout",
            reason: `Chunk timed out after ${request.timeoutMs} ms`,
            durationMs,
          }
          : { ok: false, kind: "aborted", reason: "Chunk aborted", durationMs };
      }
      return { ok: true, value, durationMs };
    } catch (error) {
      const durationMs = performance.now() - t0;
      if (timedOut) {
        return {
          ok: false,
          kind: "timeout",
          reason: `Chunk timed out after ${request.timeoutMs} ms`,
          durationMs,
        };
      }
      if (request.signal.aborted) {
        return { ok: false, kind: "aborted", reason: "Chunk aborted", durationMs };
      }
      return {
        ok: false,
        kind: isUnrecoverable(error) ? "unrecoverable" : "failed",
        reason: reasonOf(error),
        durationMs,
      };
    } finally {
      clearTimeout(timer);
      request.signal.removeEventListener("abort", onAbort);
    }
  }

  /** Does nothing: an inline executor holds no resources. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Same as {@linkcode InlineExecutor.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

const ABORTED = Symbol("aborted");

/**
 * A result must survive JSON (every broker stores results as JSON); one that cannot (a BigInt,
 * a cycle) is a failure of the chunk, retried and then bisected like a thrown error, so only the
 * parameters whose result cannot be stored end as dead letters, with the serializer's reason.
 */
export function storableOutcome(outcome: ExecutionOutcome): ExecutionOutcome {
  if (!outcome.ok) return outcome;
  try {
    JSON.stringify(outcome.value);
    return outcome;
  } catch (error) {
    return {
      ok: false,
      kind: "failed",
      reason: `The handler's result cannot be stored as JSON: ${errorMessage(error)}`,
      durationMs: outcome.durationMs,
    };
  }
}
