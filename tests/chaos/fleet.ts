/**
 * A fleet of real `ttg worker` processes for the chaos suite: start, SIGKILL at random, replace,
 * and stop every one it started (nothing outlives a scenario).
 *
 * @module
 */
import { ttgArgs } from "../helpers.ts";

/** One worker process and what it printed. */
export interface FleetWorker {
  readonly id: string;
  readonly child: Deno.ChildProcess;
  /** Resolves with stdout and the last stderr lines once the process has exited. */
  readonly done: Promise<
    { code: number; signal: Deno.Signal | null; stdout: string; tail: string[] }
  >;
  killed: boolean;
}

/** Options of {@linkcode Fleet}. */
export interface FleetOptions {
  /** `ttg worker` flags, the broker and job included (each worker gets its own --worker-id). */
  readonly args: readonly string[];
  /** Flags per worker index (e.g. a proxy URL for one of them). */
  readonly argsFor?: (index: number) => readonly string[];
  /** Environment of every worker. */
  readonly env?: Record<string, string>;
  /** Patterns to count in the workers' logs (see {@linkcode Fleet.seen}). */
  readonly watch?: readonly RegExp[];
}

/** Real worker processes, started and killed on command. */
export class Fleet implements AsyncDisposable {
  readonly #o: FleetOptions;
  readonly #all: FleetWorker[] = [];
  readonly #exited = new Set<FleetWorker>();
  readonly #seen = new Map<RegExp, number>();
  #next = 0;
  /** Workers SIGKILLed so far. */
  kills = 0;

  constructor(options: FleetOptions) {
    this.#o = options;
  }

  /** Workers still running. */
  get running(): FleetWorker[] {
    return this.#all.filter((w) => !w.killed && w.child.pid && !this.#exited.has(w));
  }

  /** How many log lines of every worker so far matched `pattern` (one of `watch`). */
  seen(pattern: RegExp): number {
    return this.#seen.get(pattern) ?? 0;
  }

  /** Starts `count` more workers. */
  start(count = 1): FleetWorker[] {
    const started: FleetWorker[] = [];
    for (let i = 0; i < count; i++) {
      const index = this.#next++;
      const id = `chaos-${index}`;
      const child = new Deno.Command(Deno.execPath(), {
        args: ttgArgs([
          "worker",
          ...this.#o.args,
          ...(this.#o.argsFor?.(index) ?? []),
          "--worker-id",
          id,
        ]),
        env: this.#o.env ?? {},
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const worker: FleetWorker = {
        id,
        child,
        done: collect(child, (line) => this.#count(line)),
        killed: false,
      };
      void worker.done.then(() => this.#exited.add(worker));
      this.#all.push(worker);
      started.push(worker);
    }
    return started;
  }

  /**
   * SIGKILLs one running worker chosen at random (among `among`, when given), and starts a
   * replacement.
   */
  killOne(
    random: () => number = Math.random,
    among?: ReadonlySet<string>,
  ): FleetWorker | undefined {
    const running = this.running.filter((w) => !among || among.has(w.id));
    if (running.length === 0) return undefined;
    const victim = running[Math.floor(random() * running.length)]!;
    victim.killed = true;
    try {
      victim.child.kill("SIGKILL");
      this.kills += 1;
    } catch { /* it had exited */ }
    this.start(1);
    return victim;
  }

  /**
   * Kills a random worker every `minMs`–`maxMs` (and starts a new one) until `stop` aborts. With
   * `working`, the victim is one of the workers it names (those doing work now, as the broker's
   * fleet registry says), so that on a slow machine the storm kills workers mid-chunk rather than
   * processes that are still starting.
   */
  async storm(
    stop: AbortSignal,
    minMs: number,
    maxMs: number,
    working?: () => Promise<ReadonlySet<string>>,
  ): Promise<void> {
    while (!stop.aborted) {
      await sleep(minMs + Math.random() * (maxMs - minMs), stop);
      if (stop.aborted) break;
      const among = working ? await working().catch(() => undefined) : undefined;
      this.killOne(Math.random, among);
    }
  }

  /** SIGTERMs every running worker, SIGKILLs those still running after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    for (const w of this.running) signal(w, "SIGTERM");
    const timer = setTimeout(() => {
      for (const w of this.#all) signal(w, "SIGKILL");
    }, graceMs);
    await Promise.all(this.#all.map((w) => w.done));
    clearTimeout(timer);
  }

  /** Every worker started, with how it ended. */
  async outcomes(): Promise<Awaited<FleetWorker["done"]>[]> {
    return await Promise.all(this.#all.map((w) => w.done));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop(5000);
  }

  #count(line: string): void {
    for (const pattern of this.#o.watch ?? []) {
      if (pattern.test(line)) this.#seen.set(pattern, (this.#seen.get(pattern) ?? 0) + 1);
    }
  }
}

function signal(worker: FleetWorker, name: Deno.Signal): void {
  try {
    worker.child.kill(name);
  } catch { /* exited */ }
}

async function collect(
  child: Deno.ChildProcess,
  onLine: (line: string) => void,
): Promise<{ code: number; signal: Deno.Signal | null; stdout: string; tail: string[] }> {
  const tail: string[] = [];
  const stderr = (async () => {
    let buffer = "";
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
      buffer += text;
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) onLine(line);
      tail.push(...lines);
      if (tail.length > 30) tail.splice(0, tail.length - 30);
    }
  })();
  const [stdout, status] = await Promise.all([new Response(child.stdout).text(), child.status]);
  await stderr;
  return { code: status.code, signal: status.signal, stdout, tail };
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
