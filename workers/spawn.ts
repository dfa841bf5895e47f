/**
 * Starts `ttg worker` processes of this same program (a script under `deno run`, a bundle, or a
 * compiled binary) and collects their reports.
 *
 * @module
 */
import { basename } from "node:path";
import type { ServeReport } from "./serve.ts";

/** The command line that runs this program with `args`. */
export function selfCommand(args: readonly string[]): { command: string; args: string[] } {
  const exec = Deno.execPath();
  if (!/^deno(\.exe)?$/i.test(basename(exec))) return { command: exec, args: [...args] };
  const config = new URL("../deno.json", import.meta.url);
  const withConfig =
    config.protocol === "file:" && exists(config) && Deno.mainModule.endsWith("cli.ts")
      ? ["--config", config.pathname]
      : [];
  return { command: exec, args: ["run", "-A", ...withConfig, Deno.mainModule, ...args] };
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
      env,
      stdin: "null",
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

  /** Waits for the exit and parses the report the worker printed last on stdout. */
  async report(): Promise<ServeReport | undefined> {
    const [out] = await Promise.all([this.#stdout, this.#stderrDone, this.status]);
    const last = out.trim().split("\n").pop();
    if (!last) return undefined;
    try {
      return JSON.parse(last) as ServeReport;
    } catch {
      return undefined;
    }
  }
}
