/**
 * Starts `ttg worker` processes of this same program (a script under `deno run`, a bundle, or a
 * compiled binary) and collects their reports.
 *
 * @module
 */
import { basename } from "node:path";
import type { WorkerReportJson } from "./json_output.ts";
import { processEnv } from "./settings.ts";
import { workerV8Flags } from "./v8_flags.ts";

/** The command line that runs this program with `args`. */
export function selfCommand(args: readonly string[]): { command: string; args: string[] } {
  const exec = Deno.execPath();
  if (!/^deno(\.exe)?$/i.test(basename(exec))) return { command: exec, args: [...args] };
  const config = new URL("../deno.json", import.meta.url);
  const withConfig =
    config.protocol === "file:" && exists(config) && Deno.mainModule.endsWith("cli.ts")
      ? ["--config", config.pathname]
      : [];
  // Handler threads get only their job's permissions (Worker `deno.permissions`), an unstable
  // option in Deno 2.9: without the flag, starting a thread would end the process.
  // --no-code-cache: reading V8's code cache maps pages of Deno's cache database into each
  // process for its whole life, about 3 MB of every worker's RSS, to save it some 20 ms of
  // compiling at start (measured on 2026-12-02, README "Worker memory").
  return {
    command: exec,
    args: [
      "run",
      "-A",
      "--unstable-worker-options",
      "--no-code-cache",
      ...withConfig,
      Deno.mainModule,
      ...args,
    ],
  };
}

function exists(url: URL): boolean {
  try {
    Deno.statSync(url);
    return true;
  } catch {
    return false;
  }
}

/** A running worker process. */
export class WorkerProcess {
  readonly id: string;
  readonly #child: Deno.ChildProcess;
  readonly #stderrTail: string[] = [];
  readonly #stdout: Promise<string>;
  readonly #stderrDone: Promise<void>;
  readonly status: Promise<Deno.CommandStatus>;
  killed = false;

  constructor(id: string, args: readonly string[], env: Record<string, string>) {
    this.id = id;
    const { command, args: argv } = selfCommand(args);
    this.#child = new Deno.Command(command, {
      args: argv,
      // The worker's heap sized for a worker (v8_flags.ts), whatever the machine's memory.
      env: { ...env, DENO_V8_FLAGS: workerV8Flags(processEnv("DENO_V8_FLAGS")) },
      // The worker stops when this pipe closes: a coordinator that dies takes its workers along.
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdout = new Response(this.#child.stdout).text();
    this.#stderrDone = this.#readStderr();
    this.status = this.#child.status;
  }

  get pid(): number {
    return this.#child.pid;
  }

  async #readStderr(): Promise<void> {
    const decoder = new TextDecoderStream();
    let buffer = "";
    for await (const text of this.#child.stderr.pipeThrough(decoder)) {
      buffer += text;
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      this.#stderrTail.push(...lines);
      if (this.#stderrTail.length > 40) this.#stderrTail.splice(0, this.#stderrTail.length - 40);
    }
    if (buffer) this.#stderrTail.push(buffer);
  }

  /** The last lines the worker logged. */
  get stderrTail(): readonly string[] {
    return this.#stderrTail;
  }

  kill(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch {
      // already exited
    }
  }

  /** Waits for the exit and parses the report the worker printed last on stdout (--report-json). */
  async report(): Promise<WorkerReportJson | undefined> {
    const [out] = await Promise.all([this.#stdout, this.#stderrDone, this.status]);
    const last = out.trim().split("\n").pop();
    if (!last) return undefined;
    try {
      return JSON.parse(last) as WorkerReportJson;
    } catch {
      return undefined;
    }
  }
}
