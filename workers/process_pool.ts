/**
 * Runs handlers in any language: a pool of long-lived handler processes (handler_process.ts)
 * speaking protocol v1 (docs/PROTOCOL.md), one chunk per process at a time. A timeout or an abort
 * kills the process's group and a new process takes its place; a process that exits or breaks
 * the protocol fails its chunk with that reason and is replaced, with a growing delay while
 * replacements keep dying (never a busy loop). A watchdog kills the groups if the worker dies.
 *
 * @module
 */
import { type BackoffOptions, reconnectDelayMs } from "../brokers/policy.ts";
import { TtgError } from "../errors.ts";
import type { Logger } from "../jobs/define_job.ts";
import {
  type ChunkExecutor,
  type ExecutionOutcome,
  type ExecutionRequest,
  unknownHandler,
} from "./executor.ts";
import { type ChunkAnswer, HandlerProcess } from "./handler_process.ts";
import { chunkLine } from "./process_protocol.ts";
import { ProcessWatchdog } from "./process_watchdog.ts";
import { waitOrAbort } from "../brokers/wait.ts";

/** Options of {@linkcode ProcessPoolExecutor.create}. */
export interface ProcessPoolOptions {
  /** Program and arguments of each handler process. */
  readonly argv: readonly string[];
  /** The processes' whole environment (process_command.ts makes it clean). */
  readonly env: Readonly<Record<string, string>>;
  /** Working directory of the processes. @default the worker's */
  readonly cwd?: string;
  /** Job name (in messages), and the handler name chunks must carry unless `accepts` says. */
  readonly jobName: string;
  /** Handler names this pool runs. @default only `jobName` */
  readonly accepts?: (handler: string) => boolean;
  /** Processes in the pool (the worker's concurrency). */
  readonly size: number;
  /** Receives the processes' stderr lines and the pool's warnings. */
  readonly log: Logger;
  /** Longest wait for a process's hello line. @default 30000 */
  readonly startTimeoutMs?: number;
  /** On close, how long a process may take to exit once its stdin is closed. @default 1000 */
  readonly stopGraceMs?: number;
  /** Delays between replacements of processes that keep dying. @default 100 ms doubling to 30 s */
  readonly restartBackoff?: BackoffOptions;
  /** Start the watchdog that kills the processes should the worker die. @default true */
  readonly watchdog?: boolean;
}

interface Slot {
  process: HandlerProcess | undefined;
  /** A replacement being started (after its backoff delay). */
  starting: Promise<HandlerProcess | undefined> | undefined;
  busy: boolean;
}

/** A pool of handler processes. */
export class ProcessPoolExecutor implements ChunkExecutor {
  readonly mode = "processes";
  readonly #o: ProcessPoolOptions;
  readonly #slots: Slot[] = [];
  readonly #waiters: ((slot: Slot) => void)[] = [];
  readonly #all = new Set<HandlerProcess>();
  /** Processes this pool killed (timeout, abort): their end is not a death to back off from. */
  readonly #killed = new WeakSet<HandlerProcess>();
  readonly #closing = new AbortController();
  #watchdog: ProcessWatchdog | undefined;
  #started = false;
  #closed = false;
  /** Deaths and failed starts since the last chunk a process answered. */
  #failuresInARow = 0;
  /** Processes replaced (timeouts, aborts, exits, protocol violations). */
  processesReplaced = 0;

  private constructor(options: ProcessPoolOptions) {
    this.#o = options;
  }

  /**
   * Starts `size` processes and waits for each one's hello; a process that cannot start (no
   * such program, an exit or a wrong first line) is a `JOB_LOAD` error naming the command.
   */
  static async create(options: ProcessPoolOptions): Promise<ProcessPoolExecutor> {
    if (!(options.size >= 1)) throw new RangeError(`Invalid pool size "${options.size}"`);
    if (options.argv.length === 0 || options.argv[0] === "") {
      throw new RangeError("Invalid handler command: expected a program to run");
    }
    const pool = new ProcessPoolExecutor(options);
    if (options.watchdog ?? true) pool.#watchdog = ProcessWatchdog.start(options.log);
    try {
      await Promise.all(Array.from({ length: options.size }, async () => {
        const slot: Slot = { process: undefined, starting: undefined, busy: false };
        pool.#slots.push(slot);
        const process = pool.#spawn();
        slot.process = process;
        await process.ready;
      }));
    } catch (error) {
      await pool.close();
      const why = error instanceof Error ? error.message : String(error);
      throw new TtgError(
        "JOB_LOAD",
        `Cannot start the handlers of job "${options.jobName}": ${why.charAt(0).toLowerCase()}${
          why.slice(1)
        }`,
        { cause: error },
      );
    }
    pool.#started = true;
    return pool;
  }

  /** Spawns one process (throws when the program cannot be started at all). */
  #spawn(): HandlerProcess {
    let process: HandlerProcess;
    try {
      process = new HandlerProcess({
        argv: this.#o.argv,
        env: this.#o.env,
        cwd: this.#o.cwd,
        log: this.#o.log,
        startTimeoutMs: this.#o.startTimeoutMs ?? 30_000,
        watchdog: this.#watchdog,
        onBroken: (p) => this.#onBroken(p),
      });
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new Error(`The handler process "${this.#o.argv.join(" ")}" cannot be started: ${why}`);
    }
    this.#all.add(process);
    return process;
  }

  /** A process ended: forget it and start a replacement (after a delay if they keep dying). */
  #onBroken(process: HandlerProcess): void {
    const slot = this.#slots.find((s) => s.process === process);
    if (!slot || this.#closed || !this.#started) return; // create() reports a failed start
    slot.process = undefined;
    this.processesReplaced += 1;
    const killed = this.#killed.has(process);
    if (!killed) {
      this.#failuresInARow += 1;
      this.#o.log.warn("Handler process ended; starting another", {
        reason: process.broken,
        in_a_row: this.#failuresInARow,
      });
    }
    void process.close(0).finally(() => this.#all.delete(process));
    this.#replace(slot);
  }

  /** Starts a replacement in `slot` unless one is on its way. */
  #replace(slot: Slot): void {
    slot.starting ??= this.#startLoop(slot).finally(() => (slot.starting = undefined));
  }

  /** Tries to start a process until one says hello or the pool closes, backing off each time. */
  async #startLoop(slot: Slot): Promise<HandlerProcess | undefined> {
    while (!this.#closed) {
      if (this.#failuresInARow > 0) {
        const delayMs = reconnectDelayMs(this.#failuresInARow, {
          baseMs: 100,
          maxMs: 30_000,
          ...this.#o.restartBackoff,
        });
        if (this.#failuresInARow > 1) {
          this.#o.log.warn("Handler processes keep dying; waiting before the next start", {
            in_a_row: this.#failuresInARow,
            delay_ms: delayMs,
          });
        }
        await waitOrAbort(delayMs, this.#closing.signal);
        if (this.#closed) return undefined;
      }
      let process: HandlerProcess;
      try {
        process = this.#spawn();
      } catch (error) {
        this.#failuresInARow += 1;
        this.#o.log.warn("Handler process could not be started", { reason: String(error) });
        continue;
      }
      slot.process = process;
      try {
        await process.ready;
        return process;
      } catch {
        // #onBroken counted the failure and, the slot being empty again, loops through us
        if (slot.process === process) slot.process = undefined;
      }
    }
    return undefined;
  }

  async #acquire(): Promise<Slot> {
    const idle = this.#slots.find((s) => !s.busy);
    if (idle) {
      idle.busy = true;
      return idle;
    }
    return await new Promise((resolve) => this.#waiters.push(resolve));
  }

  #release(slot: Slot): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(slot);
    else slot.busy = false;
  }

  /** The slot's ready process, waiting for a replacement if needed; undefined on abort. */
  async #readyProcess(slot: Slot, signal: AbortSignal): Promise<HandlerProcess | undefined> {
    while (!this.#closed && !signal.aborted) {
      const process = slot.process;
      if (process && !process.broken) {
        try {
          await abortable(process.ready, signal);
          if (!process.broken) return process;
        } catch {
          // it broke while starting: a replacement is on its way
        }
        continue;
      }
      this.#replace(slot);
      await abortable(slot.starting!, signal).catch(() => {});
    }
    return undefined;
  }

  /**
   * Runs the chunk in an idle process. A timeout or an abort kills the process's group (no
   * partial result is ever returned); a process that dies or breaks the protocol fails the
   * chunk with the reason, and is replaced.
   */
  async execute(request: ExecutionRequest): Promise<ExecutionOutcome> {
    if (this.#closed) {
      throw new TtgError("CLOSED", "Cannot run a chunk: the handler pool is closed");
    }
    const accepts = this.#o.accepts ?? ((h: string) => h === this.#o.jobName);
    if (!accepts(request.task.handler)) return unknownHandler(request.task, this.#o.jobName);
    const slot = await this.#acquire();
    try {
      const process = await this.#readyProcess(slot, request.signal);
      if (!process) {
        return { ok: false, kind: "aborted", reason: "Released before it started", durationMs: 0 };
      }
      return await this.#run(process, request);
    } finally {
      this.#release(slot);
    }
  }

  async #run(process: HandlerProcess, request: ExecutionRequest): Promise<ExecutionOutcome> {
    const t0 = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort = () => {};
    const stopped = new Promise<"timeout" | "aborted">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), request.timeoutMs);
      onAbort = () => resolve("aborted");
      if (request.signal.aborted) onAbort();
      else request.signal.addEventListener("abort", onAbort, { once: true });
    });
    const answer: ChunkAnswer | "timeout" | "aborted" = await Promise.race([
      process.run(
        chunkLine(request.task, request.attempt),
        request.task.chunkId,
        request.onProgress,
      ),
      stopped,
    ]);
    clearTimeout(timer);
    request.signal.removeEventListener("abort", onAbort);
    const durationMs = performance.now() - t0;
    if (answer === "timeout" || answer === "aborted") {
      // The only way to stop a handler: protocol v1 has no cancel message.
      this.#killed.add(process);
      process.abandon(answer === "timeout" ? "was killed: its chunk timed out" : "was killed");
      return answer === "timeout"
        ? {
          ok: false,
          kind: "timeout",
          reason: `Chunk timed out after ${request.timeoutMs} ms (its handler process was killed)`,
          durationMs,
        }
        : {
          ok: false,
          kind: "aborted",
          reason: "Chunk aborted (its handler process was killed)",
          durationMs,
        };
    }
    if (answer.kind === "broken") {
      return { ok: false, kind: "failed", reason: answer.reason, durationMs };
    }
    this.#failuresInARow = 0; // it answered: the handler works
    if (request.signal.aborted) {
      return { ok: false, kind: "aborted", reason: "Chunk aborted", durationMs };
    }
    if (answer.kind === "result") return { ok: true, value: answer.value, durationMs };
    return {
      ok: false,
      kind: answer.unrecoverable ? "unrecoverable" : "failed",
      reason: answer.message,
      durationMs,
    };
  }

  /**
   * Stops every process (stdin closed, `stopGraceMs` to exit, then its group killed) and the
   * watchdog; later calls to `execute` throw.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort(); // no start loop spawns again; a sleeping one wakes and returns
    const grace = this.#o.stopGraceMs ?? 1000;
    await Promise.all([...this.#all].map((p) => p.close(grace)));
    await Promise.all(this.#slots.map((s) => s.starting));
    this.#all.clear();
    await this.#watchdog?.close();
    if (this.processesReplaced > 0) {
      this.#o.log.info("Handler processes replaced during the run", {
        replaced: this.processesReplaced,
      });
    }
  }

  /** Same as {@linkcode ProcessPoolExecutor.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** `promise`, or a rejection as soon as `signal` aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
