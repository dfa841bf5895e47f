/**
 * Handler processes must not outlive their worker, even one killed with SIGKILL (which runs no
 * code of ours). The watchdog is a tiny `/bin/sh` loop in a session of its own that reads, on a
 * pipe from the worker, the process groups to guard (`+pgid`, `-pgid` lines). When the pipe
 * closes — the worker exited, however it died — it SIGKILLs every group still listed, then exits.
 *
 * @module
 */
import type { Logger } from "../jobs/define_job.ts";

const SCRIPT = `groups=" "
while IFS= read -r line; do
  case "$line" in
    +*) groups="$groups\${line#+} " ;;
    -*) kept=" "
        for g in $groups; do [ "$g" = "\${line#-}" ] || kept="$kept$g "; done
        groups=$kept ;;
  esac
done
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done
`;

/** A running watchdog. */
export class ProcessWatchdog {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #encoder = new TextEncoder();
  #closed = false;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
  }

  /**
   * Starts a watchdog; without `/bin/sh` (a distroless image) logs once that handler processes
   * then rely on their own end-of-stdin check, and returns undefined.
   */
  static start(log: Logger): ProcessWatchdog | undefined {
    try {
      const child = new Deno.Command("/bin/sh", {
        args: ["-c", SCRIPT, "ttg-watchdog"],
        stdin: "piped",
        stdout: "null",
        stderr: "null",
        clearEnv: true,
        detached: true, // its own session: signals sent to the worker's group do not reach it
      }).spawn();
      return new ProcessWatchdog(child);
    } catch (error) {
      log.warn(
        "No /bin/sh for the handler watchdog: handler processes outlive a SIGKILLed worker until they read the end of their stdin",
        { error: error instanceof Error ? error.message : String(error) },
      );
      return undefined;
    }
  }

  /** Pid of the watchdog's shell. */
  get pid(): number {
    return this.#child.pid;
  }

  #send(line: string): void {
    if (this.#closed) return;
    this.#writer.write(this.#encoder.encode(line + "\n")).catch(() => {});
  }

  /** Guards the process group `pgid` (a handler started in a session of its own). */
  track(pgid: number): void {
    this.#send(`+${pgid}`);
  }

  /** Stops guarding `pgid` (its processes are gone). */
  untrack(pgid: number): void {
    this.#send(`-${pgid}`);
  }

  /** Closes the pipe: the watchdog kills what is still listed and exits. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#writer.close().catch(() => {});
    await this.#child.status;
  }
}
