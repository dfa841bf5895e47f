/**
 * Helpers for tests that run the real `ttg` program as processes, and for the private servers
 * tests start on free ports.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { LocalPlan, LocalProcess } from "../deploy/local.ts";
import { computeRange } from "../jobs/sweep.ts";

const CLI = new URL("../workers/cli.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** argv that runs `ttg` with `args`. */
export function ttgArgs(args: readonly string[]): string[] {
  return ["run", "-A", "--config", CONFIG, CLI, ...args];
}

/** Runs `ttg` to completion. */
export async function ttg(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ttgArgs(args),
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** Starts `ttg` in the background. */
export function spawnTtg(
  args: readonly string[],
  env: Record<string, string> = {},
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ttgArgs(args),
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Polls `check` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function until<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Reads `reader` (a child's decoded stdout or stderr) line by line until `match` accepts a line,
 * and returns that line without its "\n". Text after it that was already read is dropped; the
 * reader stays locked and open, for the caller to drain or cancel.
 *
 * Throws an Error that names `what` and the last lines seen when the stream ends first, or when
 * `timeoutMs` passes; in that last case it cancels the reader first (and the pipe behind it), so
 * that no read is left pending for Deno's op and resource sanitizers.
 */
export async function readUntil(
  reader: ReadableStreamDefaultReader<string>,
  match: (line: string) => boolean,
  { timeoutMs, what }: { timeoutMs: number; what: string },
): Promise<string> {
  const seen: string[] = [];
  let rest = "";
  const lastLines = () => {
    const last = [...seen, ...(rest ? [rest] : [])].slice(-5);
    return last.length ? `; the last lines seen:\n${last.join("\n")}` : "; nothing was printed";
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), timedOut]);
      if (next === "timeout") {
        await reader.cancel().catch(() => {});
        throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${lastLines()}`);
      }
      if (next.done) throw new Error(`The output ended while waiting for ${what}${lastLines()}`);
      rest += next.value;
      for (let end = rest.indexOf("\n"); end >= 0; end = rest.indexOf("\n")) {
        const line = rest.slice(0, end);
        rest = rest.slice(end + 1);
        seen.push(line);
        if (seen.length > 5) seen.shift();
        if (match(line)) return line;
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

/** A temporary directory removed on dispose. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "ttg-test-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

/**
 * Runs a deployment's generated containers (deploy/local.ts) as `ttg` processes: the submit
 * Job's, then every worker at once, then the report Job's. `env` is laid over each one's
 * generated environment (what the kubelet and the test machine decide: ports, mount paths).
 * Throws when a process fails; returns the report's output.
 */
export async function runGeneratedContainers(
  plan: LocalPlan,
  env: Record<string, string>,
): Promise<string> {
  const run = async (p: LocalProcess): Promise<string> => {
    const [program, ...args] = p.argv;
    const out = await new Deno.Command(program!, {
      args,
      env: { ...p.env, ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    if (out.code !== 0) throw new Error(`${p.name} exited ${out.code}: ${text(out.stderr)}`);
    return text(out.stdout);
  };
  for (const p of plan.submit) await run(p);
  await Promise.all(plan.workers.map(run));
  return (await Promise.all(plan.report.map(run))).join("");
}

/** The entrypoint that stands for the image's `/ttg` in {@linkcode runGeneratedContainers}. */
export function ttgEntrypoint(): string[] {
  return [Deno.execPath(), ...ttgArgs([])];
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export { freePort } from "../tasks/deploy_local.ts";

/** Whether something accepts connections on 127.0.0.1:`port`. */
export async function listening(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}

/** Waits until 127.0.0.1:`port` accepts connections; throws after `timeoutMs`. */
export async function waitUntilListening(
  port: number,
  { timeoutMs = 60_000, pollMs = 250 }: { timeoutMs?: number; pollMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await listening(port))) {
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/**
 * Asserts what `ttg results` and `ttg status` read of a 1,000-parameter job (10 chunks) that the
 * predecessor's workers produced under its real names (job id `ttg`), on the broker of `env`.
 */
export async function assertReadsLegacyJob(
  backend: "redis" | "rabbitmq",
  env: Record<string, string>,
): Promise<void> {
  const results = await ttg(["results", "--backend", backend, "--json"], env);
  assert.equal(results.code, 0, results.stderr);
  const report = JSON.parse(results.stdout);
  assert.equal(report.aggregate.count, 1000);
  assert.ok(Math.abs(report.aggregate.sum - computeRange(0, 1000).sum) < 1e-6);
  const status = await ttg(["status", "--backend", backend, "--json"], env);
  assert.equal(status.code, 0, status.stderr);
  const counters = JSON.parse(status.stdout);
  assert.equal(counters.stats.completed, 10, status.stdout);
  assert.equal(counters.stats.duplicates, 0, status.stdout);
}

/**
 * Asserts that `text` is the content of the golden file `file`; with `UPDATE_GOLDEN=1` it
 * rewrites the file first (review the diff).
 */
export async function assertGolden(file: URL, text: string): Promise<void> {
  if (Deno.env.get("UPDATE_GOLDEN") === "1") {
    await Deno.mkdir(new URL(".", file), { recursive: true });
    await Deno.writeTextFile(file, text);
  }
  const path = file.pathname.slice(new URL("../", import.meta.url).pathname.length);
  assert.equal(text, await Deno.readTextFile(file), `${path} is out of date`);
}
