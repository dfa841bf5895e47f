/**
 * Runs handlers off the main event loop, in a pool of Deno Web Workers (one chunk per thread at
 * a time), so heartbeats and lease renewal keep their schedule whatever a handler does. A handler
 * that exceeds its timeout, or ignores an abort, has its thread terminated and replaced.
 *
 * @module
 */
import type { JobPermissions, Logger } from "../jobs/define_job.ts";
import { threadPermissions } from "../jobs/permissions.ts";
import { TtgError } from "../errors.ts";
import {
  type ChunkExecutor,
  type ExecutionOutcome,
  type ExecutionRequest,
  unknownHandler,
} from "./executor.ts";
import type { PoolMessage, ThreadMessage } from "./handler_thread.ts";

/** Options of {@linkcode ThreadPoolExecutor.create}. */
export interface ThreadPoolOptions {
  /** Module whose default export is the job; each thread imports it. */
  readonly moduleUrl: string;
  /** Handler name the job declares (checked against each thread's import). */
  readonly jobName: string;
  /** Threads in the pool (the worker's concurrency). */
  readonly size: number;
  /** Logger that receives the handlers' log calls. */
  readonly log: Logger;
  /** How long an aborted handler may take to stop before its thread is terminated. @default 1000 */
  readonly abortGraceMs?: number;
  /**
   * What the job declared (`defineJob({ permissions })`): each thread gets exactly that (its
   * code loads without them). Needs Deno's `--unstable-worker-options` (deno.json sets it).
   * @default {} (nothing)
   */
  readonly permissions?: JobPermissions;
}

/** The body of every handler thread (`deno compile` includes it: see deploy/binary.ts). */
const THREAD_WORKER_BODY = new URL("./handler_thread.ts", import.meta.url);

/**
 * The root module of a handler thread: it imports the job module and the thread body
 * statically, so the job's code loads with the thread (no read permission needed for it).
 */
function threadRoot(moduleUrl: string): string {
  const source = [
    `import * as job from ${JSON.stringify(moduleUrl)};`,
    `import { serveThread } from ${JSON.stringify(THREAD_WORKER_BODY.href)};`,
    "serveThread(job.default);",
  ].join("\n");
  return `data:application/javascript,${encodeURIComponent(source)}`;
}

interface Pending {
  readonly resolve: (message: Extract<ThreadMessage, { type: "done" }>) => void;
  readonly progress?: (done: number) => void;
}

class HandlerThread {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  readonly pending = new Map<number, Pending>();
  busy = false;
  /** Why the thread died (an uncaught error after it loaded the job); it must be replaced. */
  crashed: string | undefined;

  constructor(moduleUrl: string, log: Logger, permissions: Deno.PermissionOptionsObject) {
    this.worker = new Worker(threadRoot(moduleUrl), { type: "module", deno: { permissions } });
    this.ready = new Promise<void>((resolve, reject) => {
      // After loading, an uncaught error (a throw in a stray timer, say) ends the thread: fail
      // the chunk it held at once instead of letting it run into its timeout. The thread reports
      // its own (a "crash" message, no stack trace on stderr); onerror catches any other.
      const crash = (why: string) => {
        reject(new TtgError("JOB_LOAD", `A handler thread failed: ${why}`));
        this.crashed = `The handler thread crashed: ${why}`;
        for (const [id, pending] of this.pending) {
          pending.resolve({
            type: "done",
            id,
            ok: false,
            reason: this.crashed,
            unrecoverable: false,
            aborted: false,
          });
        }
        this.pending.clear();
      };
      this.worker.onmessage = (event: MessageEvent<ThreadMessage>) => {
        const message = event.data;
        if (message.type === "ready") resolve();
        else if (message.type === "crash") crash(message.message);
        else if (message.type === "init-error") {
          reject(
            new TtgError("JOB_LOAD", `Cannot load job in a handler thread: ${message.message}`),
          );
        } else if (message.type === "done") {
          const pending = this.pending.get(message.id);
          this.pending.delete(message.id);
          pending?.resolve(message);
        } else if (message.type === "progress") {
          this.pending.get(message.id)?.progress?.(message.done);
        } else if (message.type === "log") log[message.level](message.message, message.fields);
      };
      this.worker.onerror = (event) => {
        event.preventDefault();
        crash(event.message);
      };
    });
    this.ready.catch(() => {});
  }

  send(message: PoolMessage): void {
    this.worker.postMessage(message);
  }

  terminate(): void {
    this.worker.terminate();
  }
}

/** A pool of handler threads. */
export class ThreadPoolExecutor implements ChunkExecutor {
  readonly mode = "threads";
  readonly #options: ThreadPoolOptions;
  readonly #permissions: Deno.PermissionOptionsObject;
  #threads: HandlerThread[] = [];
  #waiters: ((thread: HandlerThread) => void)[] = [];
  #nextId = 1;
  #closed = false;
  /** Threads terminated and replaced (timeouts, ignored aborts). */
  threadsReplaced = 0;

  private constructor(options: ThreadPoolOptions) {
    this.#options = options;
    this.#permissions = threadPermissions(options.permissions, options.moduleUrl);
  }

  #thread(): HandlerThread {
    return new HandlerThread(this.#options.moduleUrl, this.#options.log, this.#permissions);
  }

  /** Starts the pool and waits until every thread has loaded the job. */
  static async create(options: ThreadPoolOptions): Promise<ThreadPoolExecutor> {
    if (!(options.size >= 1)) throw new RangeError(`Invalid pool size "${options.size}"`);
    const pool = new ThreadPoolExecutor(options);
    try {
      pool.#threads = Array.from({ length: options.size }, () => pool.#thread());
      await Promise.all(pool.#threads.map((t) => t.ready));
    } catch (error) {
      await pool.close();
      if (error instanceof Deno.errors.NotCapable) {
        // The job declared more than this worker process itself may do.
        throw new TtgError(
          "JOB_LOAD",
          `Cannot start handler threads for job "${options.jobName}": it declares ${
            JSON.stringify(options.permissions)
          }, more than this worker's own permissions allow (${error.message})`,
          { cause: error },
        );
      }
      throw error;
    }
    return pool;
  }

  #acquire(): Promise<HandlerThread> {
    const idle = this.#threads.find((t) => !t.busy);
    if (idle) {
      idle.busy = true;
      return Promise.resolve(idle);
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #release(thread: HandlerThread): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(thread);
    else thread.busy = false;
  }

  #replace(thread: HandlerThread): HandlerThread {
    thread.terminate();
    this.threadsReplaced += 1;
    const fresh = this.#thread();
    fresh.busy = true;
    this.#threads = this.#threads.map((t) => (t === thread ? fresh : t));
    return fresh;
  }

  /**
   * Runs the chunk on an idle thread (waiting for one if all are busy); a timeout, or an abort the
   * handler ignores for `abortGraceMs`, terminates and replaces the thread.
   */
  async execute(request: ExecutionRequest): Promise<ExecutionOutcome> {
    if (this.#closed) {
      throw new TtgError("CLOSED", "Cannot run a chunk: the handler pool is closed");
    }
    if (request.task.handler !== this.#options.jobName) {
      return unknownHandler(request.task, this.#options.jobName);
    }
    let thread = await this.#acquire();
    if (thread.crashed) thread = this.#replace(thread);
    const t0 = performance.now();
    try {
      await thread.ready;
    } catch (error) {
      this.#release(thread);
      return { ok: false, kind: "failed", reason: (error as Error).message, durationMs: 0 };
    }
    const id = this.#nextId++;
    const done = new Promise<Extract<ThreadMessage, { type: "done" }>>((resolve) =>
      thread.pending.set(id, { resolve, progress: request.onProgress })
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    let abortTimer: ReturnType<typeof setTimeout> | undefined;
    let onAbort = () => {};
    const stopped = new Promise<"timeout" | "abort-expired">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), request.timeoutMs);
      onAbort = () => {
        thread.send({ type: "abort", id });
        abortTimer = setTimeout(() => resolve("abort-expired"), this.#options.abortGraceMs ?? 1000);
      };
      if (request.signal.aborted) onAbort();
      else request.signal.addEventListener("abort", onAbort, { once: true });
    });
    thread.send({
      type: "run",
      id,
      task: request.task,
      attempt: request.attempt,
      workerId: request.workerId,
    });
    const first = await Promise.race([done, stopped]);
    clearTimeout(timer);
    clearTimeout(abortTimer);
    request.signal.removeEventListener("abort", onAbort);
    const durationMs = performance.now() - t0;
    if (first === "timeout" || first === "abort-expired") {
      thread.pending.delete(id);
      thread = this.#replace(thread); // the only way to stop a handler that does not yield
      this.#release(thread);
      return first === "timeout"
        ? {
          ok: false,
          kind: "timeout",
          reason: `Chunk timed out after ${request.timeoutMs} ms (handler thread replaced)`,
          durationMs,
        }
        : {
          ok: false,
          kind: "aborted",
          reason: "Chunk aborted (handler thread replaced)",
          durationMs,
        };
    }
    if (thread.crashed) thread = this.#replace(thread);
    this.#release(thread);
    if (first.ok && !request.signal.aborted) return { ok: true, value: first.value, durationMs };
    if (first.ok) return { ok: false, kind: "aborted", reason: "Chunk aborted", durationMs };
    if (first.aborted || request.signal.aborted) {
      return { ok: false, kind: "aborted", reason: first.reason, durationMs };
    }
    return {
      ok: false,
      kind: first.unrecoverable ? "unrecoverable" : "failed",
      reason: first.reason,
      durationMs,
    };
  }

  /** Terminates every thread; later calls to `execute` throw. */
  close(): Promise<void> {
    this.#closed = true;
    for (const thread of this.#threads) thread.terminate();
    this.#threads = [];
    return Promise.resolve();
  }

  /** Same as {@linkcode ThreadPoolExecutor.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
