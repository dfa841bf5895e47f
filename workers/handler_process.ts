/**
 * One long-lived handler process speaking protocol v1 (process_protocol.ts): started in a
 * session and process group of its own with a clean environment, it says hello, then answers
 * one chunk at a time. A process that exits, or prints a line outside the protocol, is broken:
 * its chunk fails with that reason and the pool replaces it. Stopping it kills its whole group.
 *
 * @module
 */
import type { Logger } from "../jobs/define_job.ts";
import {
  HELLO_LINE,
  helloProblem,
  MAX_LINE_CHARS,
  parseHandlerLine,
  quoteLine,
} from "./process_protocol.ts";
import type { ProcessWatchdog } from "./process_watchdog.ts";

/** How a handler process is started. */
export interface HandlerProcessOptions {
  /** Program and arguments (no shell unless argv says so). */
  readonly argv: readonly string[];
  /** The process's whole environment. */
  readonly env: Readonly<Record<string, string>>;
  /** Working directory. @default the worker's */
  readonly cwd?: string;
  /** Receives the process's stderr lines, prefixed with the chunk id. */
  readonly log: Logger;
  /** Longest wait for the hello line. */
  readonly startTimeoutMs: number;
  /** Kills the process group should the worker die. */
  readonly watchdog?: ProcessWatchdog;
  /** Told once when the process breaks (exits, breaks the protocol, is killed or stopped). */
  readonly onBroken?: (process: HandlerProcess) => void;
}

/** What a process did with one chunk. */
export type ChunkAnswer =
  | { readonly kind: "result"; readonly value: unknown }
  | { readonly kind: "error"; readonly message: string; readonly unrecoverable: boolean }
  /** It exited or broke the protocol: the chunk fails with `reason`; replace the process. */
  | { readonly kind: "broken"; readonly reason: string };

interface Running {
  readonly chunkId: string;
  readonly onProgress?: (done: number) => void;
  readonly resolve: (answer: ChunkAnswer) => void;
}

/** How long a process that exited (or closed stdout) has to flush the rest of its output. */
const SETTLE_MS = 300;
const STDERR_TAIL = 5;
const encoder = new TextEncoder();

/** A running handler process. */
export class HandlerProcess {
  readonly #o: HandlerProcessOptions;
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #stderrTail: string[] = [];
  readonly #done: Promise<unknown>;
  readonly ready: Promise<void>;
  #resolveReady!: () => void;
  #rejectReady!: (error: Error) => void;
  #hello = false;
  #running: Running | undefined;
  #broken: string | undefined;
  #status: Deno.CommandStatus | undefined;
  #stdoutEnded = false;
  #settleTimer: ReturnType<typeof setTimeout> | undefined;
  #helloTimer: ReturnType<typeof setTimeout> | undefined;

  /** Spawns the process; throws when it cannot be started at all (no such program). */
  constructor(options: HandlerProcessOptions) {
    this.#o = options;
    const [program, ...args] = options.argv;
    this.#child = new Deno.Command(program!, {
      args,
      env: { ...options.env },
      clearEnv: true,
      cwd: options.cwd,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      detached: true, // setsid(): its own process group, killed as one
    }).spawn();
    options.watchdog?.track(this.#child.pid);
    this.#writer = this.#child.stdin.getWriter();
    this.ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.ready.catch(() => {});
    this.#helloTimer = setTimeout(() => {
      this.#break(
        `did not print its hello line ${HELLO_LINE} within ${options.startTimeoutMs} ms`,
      );
    }, options.startTimeoutMs);
    const stdout = readLines(this.#child.stdout, MAX_LINE_CHARS, {
      line: (line) => this.#onLine(line),
      overlong: () => this.#break(`printed a line longer than ${MAX_LINE_CHARS} characters`),
    }).then(() => {
      this.#stdoutEnded = true;
      this.#settle();
    });
    const stderr = readLines(this.#child.stderr, 64 * 1024, {
      line: (line) => this.#onStderr(line),
      overlong: (start) => this.#onStderr(`${start}…`),
    });
    const status = this.#child.status.then((s) => {
      this.#status = s;
      this.#settle();
    });
    this.#done = Promise.all([stdout, stderr, status]);
  }

  /** Pid of the process, and id of its process group. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Why the process can no longer be used, or undefined while it can. */
  get broken(): string | undefined {
    return this.#broken;
  }

  /** Sends one chunk line; resolves with the process's answer (or why it broke). */
  run(line: string, chunkId: string, onProgress?: (done: number) => void): Promise<ChunkAnswer> {
    if (this.#broken) return Promise.resolve({ kind: "broken", reason: this.#reason(chunkId) });
    if (this.#running) throw new Error("A handler process runs one chunk at a time");
    return new Promise<ChunkAnswer>((resolve) => {
      this.#running = { chunkId, onProgress, resolve };
      this.#writer.write(encoder.encode(line)).catch(() => {
        // Its stdin is closed: it is exiting (its exit gives the reason) or it closed stdin.
        this.#settleTimer ??= setTimeout(
          () => this.#break("closed its stdin"),
          SETTLE_MS,
        );
      });
    });
  }

  /** Gives the process up at once: it is broken with `what`, and its whole group SIGKILLed. */
  abandon(what: string): void {
    this.#break(what);
  }

  /** SIGKILLs the whole process group (the process and anything it started). */
  kill(): void {
    try {
      Deno.kill(-this.#child.pid, "SIGKILL");
    } catch {
      // the group is gone already
    }
  }

  /**
   * Ends the process: closes its stdin (a protocol handler exits at once), waits up to
   * `graceMs`, then kills its group; resolves once it and its pipes are gone.
   */
  async close(graceMs: number): Promise<void> {
    this.#break("was stopped", { kill: false });
    await this.#writer.close().catch(() => {});
    if (!this.#status) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#child.status,
        new Promise((resolve) => (timer = setTimeout(resolve, graceMs))),
      ]);
      clearTimeout(timer);
    }
    this.kill(); // also whatever it left behind in its group
    await this.#done;
    clearTimeout(this.#settleTimer);
    this.#o.watchdog?.untrack(this.#child.pid);
  }

  #onLine(line: string): void {
    if (this.#broken) return;
    if (!this.#hello) {
      if (line.trim() === "") return;
      const problem = helloProblem(line);
      if (problem) return this.#break(`did not start with the protocol: ${problem}`);
      this.#hello = true;
      clearTimeout(this.#helloTimer);
      this.#resolveReady();
      return;
    }
    const message = parseHandlerLine(line);
    const running = this.#running;
    switch (message.type) {
      case "blank":
        return;
      case "progress":
        if (running) return running.onProgress?.(message.done);
        break;
      case "result":
        if (running) return this.#answer({ kind: "result", value: message.value });
        break;
      case "error":
        if (running) {
          return this.#answer({
            kind: "error",
            message: message.message,
            unrecoverable: message.unrecoverable,
          });
        }
        break;
      default:
        return this.#break(`printed a line outside the protocol: ${quoteLine(line)}`);
    }
    this.#break(`printed a line while it had no chunk to answer: ${quoteLine(line)}`);
  }

  #answer(answer: ChunkAnswer): void {
    const running = this.#running!;
    this.#running = undefined;
    running.resolve(answer);
  }

  #onStderr(line: string): void {
    const text = line.endsWith("\r") ? line.slice(0, -1) : line;
    this.#stderrTail.push(text);
    if (this.#stderrTail.length > STDERR_TAIL) this.#stderrTail.shift();
    const chunkId = this.#running?.chunkId;
    this.#o.log.info(chunkId ? `[${chunkId}] ${text}` : `[handler ${this.pid}] ${text}`, {
      handler_pid: this.pid,
      ...(chunkId ? { chunk_id: chunkId } : {}),
    });
  }

  /**
   * Called when stdout ends or the process exits: once both happened, or `SETTLE_MS` after the
   * first (a process can exit while a child of its holds stdout), the process is broken.
   */
  #settle(): void {
    if (this.#broken) return;
    if (this.#stdoutEnded && this.#status) return this.#break(this.#exitText());
    this.#settleTimer ??= setTimeout(() => this.#break(this.#exitText()), SETTLE_MS);
  }

  #exitText(): string {
    const s = this.#status;
    if (!s) return "closed its stdout";
    return s.signal ? `was killed by ${s.signal}` : `exited with code ${s.code}`;
  }

  /**
   * Marks the process broken, once: fails its start or its chunk with `what` and kills its
   * group (unless `kill` is false: {@linkcode HandlerProcess.close} lets it exit on its own).
   */
  #break(what: string, { kill = true } = {}): void {
    if (this.#broken) return;
    const exited = this.#status !== undefined || this.#stdoutEnded;
    this.#broken = what;
    clearTimeout(this.#helloTimer);
    clearTimeout(this.#settleTimer);
    if (kill) this.kill();
    const running = this.#running;
    this.#running = undefined;
    const reason = this.#reason(running?.chunkId, exited);
    if (!this.#hello) this.#rejectReady(new Error(reason));
    running?.resolve({ kind: "broken", reason });
    this.#o.onBroken?.(this);
  }

  /**
   * Why the process broke, for the chunk's reason or the start error: what happened, the chunk
   * it ran or that it had not said hello yet, and (when it exited) its last stderr line.
   */
  #reason(chunkId?: string, exited = false): string {
    const program = quoteLine(this.#o.argv.join(" "));
    let text = `The handler process ${program} (pid ${this.pid}) ${this.#broken ?? "broke"}`;
    if (chunkId) text += ` while running chunk ${chunkId}`;
    else if (!this.#hello && exited) text += ` before its hello line ${HELLO_LINE}`;
    const last = this.#stderrTail.at(-1);
    if (exited && last !== undefined) text += `; its last stderr line: ${quoteLine(last)}`;
    return text;
  }
}

/**
 * Splits a stream into lines (the last one may lack its newline) until the stream ends. A line
 * longer than `max` characters is cut: `overlong` gets its start, the rest is skipped. Only new
 * text is searched for a newline, so a long line costs its length once.
 */
async function readLines(
  stream: ReadableStream<Uint8Array>,
  max: number,
  on: { line: (line: string) => void; overlong: (start: string) => void },
): Promise<void> {
  const decoder = new TextDecoder();
  let pieces: string[] = [];
  let size = 0;
  let skipping = false;
  const take = (tail: string) => {
    const line = pieces.length > 0 ? pieces.join("") + tail : tail;
    pieces = [];
    size = 0;
    return line;
  };
  try {
    for await (const bytes of stream) {
      let text = decoder.decode(bytes, { stream: true });
      for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
        const line = take(text.slice(0, nl));
        if (!skipping) on.line(line);
        skipping = false;
        text = text.slice(nl + 1);
      }
      if (text === "" || skipping) continue;
      pieces.push(text);
      size += text.length;
      if (size > max) {
        on.overlong(take("").slice(0, 200));
        skipping = true;
      }
    }
  } catch {
    // the pipe broke: the process is gone
  }
  const last = take(decoder.decode());
  if (last !== "" && !skipping) on.line(last);
}
