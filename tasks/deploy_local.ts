/**
 * `deno task deploy --target local`: runs the generated containers as local processes (see
 * deploy/local.ts) against the local broker and prints the job report: the submit Job's
 * process to completion, then every worker pod's process at once, then the report Job's.
 *
 * @module
 */
import type { DeploymentConfig } from "../deploy/config.ts";
import { names } from "../deploy/labels.ts";
import { type LocalPlan, localPlan, type LocalProcess } from "../deploy/local.ts";
import type { Synthesized } from "../deploy/synth.ts";
import { EnvironmentError, REPO_ROOT, shellQuote } from "./command.ts";

/** The image's entrypoint, locally: the `ttg` program from source. */
export function localEntrypoint(deno: string = Deno.execPath()): string[] {
  return [deno, "run", "-A", "workers/cli.ts"];
}

/**
 * The local brokers' real credentials in place of the generated Secrets': the local Redis has
 * no password (the variable is left unset) and the local RabbitMQ has only its localhost
 * guest account. This explicit map is the only place those credentials appear.
 */
export function localSecretOverrides(config: DeploymentConfig): Record<string, string | null> {
  const n = names(config);
  return {
    [`${n.redisSecret}/password`]: null,
    [`${n.rabbitmqSecret}/username`]: "guest",
    [`${n.rabbitmqSecret}/password`]: "guest",
  };
}

/** Variables a local process keeps from this one (what a container image would provide). */
const PASS_THROUGH = ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "NO_COLOR"];

/** A TCP port on 127.0.0.1 that was free a moment ago (for each local worker's metrics). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * The plan of a synthesized deployment, with the local entrypoint and credentials, a port of its
 * own for each local worker's metrics, and the repository for the image's jobs directory (where
 * `deno task ttg submit --job <relative path>` resolves a module, as the fleet then does).
 */
export function planLocal(
  synthesized: Synthesized,
  deno?: string,
  metricsPort: () => number = freePort,
): LocalPlan {
  return localPlan(synthesized.manifests, {
    entrypoint: localEntrypoint(deno),
    secretOverrides: localSecretOverrides(synthesized.config),
    nodeName: "localhost",
    metricsPort,
    paths: { [synthesized.config.fleet.jobsDir]: REPO_ROOT },
  });
}

/** The plan as shell lines (what `--dry-run --target local` prints). */
export function describePlan(plan: LocalPlan): string {
  const lines: string[] = [];
  for (const stage of ["submit", "workers", "report"] as const) {
    for (const p of plan[stage]) {
      const env = Object.entries(p.env).map(([k, v]) => `${k}=${v}`);
      const cd = p.cwd === undefined ? "" : `cd ${shellQuote([p.cwd])} && `;
      lines.push(`# ${stage}: ${p.name}`, cd + shellQuote(["env", "-i", ...env, ...p.argv]));
    }
  }
  return lines.join("\n");
}

async function pipeLines(
  stream: ReadableStream<Uint8Array>,
  prefix: string,
  out: (line: string) => void,
) {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) out(prefix + line);
  }
  if (rest) out(prefix + rest);
}

/** Options of {@linkcode startLocal}. */
export interface StartLocalOptions {
  /** Prefix each output line with the pod's name. @default true */
  readonly prefix?: boolean;
  readonly signal?: AbortSignal;
  /** Receives each stdout line, unprefixed. */
  readonly stdoutLines?: string[];
  /** Print nothing (stdout still reaches `stdoutLines`). @default false */
  readonly quiet?: boolean;
}

/** Starts one process; its output lines are prefixed with its pod name. Resolves to its exit code. */
export async function startLocal(
  process: LocalProcess,
  options: StartLocalOptions = {},
): Promise<number> {
  const [program, ...args] = process.argv;
  const inherited = Object.fromEntries(
    PASS_THROUGH.flatMap((name) => {
      const value = Deno.env.get(name);
      return value === undefined ? [] : [[name, value]];
    }),
  );
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program!, {
      args,
      cwd: process.cwd ?? REPO_ROOT,
      clearEnv: true,
      env: { ...inherited, ...process.env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: options.signal,
    }).spawn();
  } catch (error) {
    throw new EnvironmentError(
      `Cannot start "${process.name}" (${program}): ${(error as Error).message}`,
    );
  }
  const prefix = options.prefix === false ? "" : `[${process.name}] `;
  await Promise.all([
    pipeLines(child.stdout, "", (line) => {
      options.stdoutLines?.push(line);
      if (!options.quiet) console.log(prefix + line);
    }),
    pipeLines(child.stderr, prefix, (line) => {
      if (!options.quiet) console.error(line);
    }),
  ]);
  return (await child.status).code;
}

/** What {@linkcode runLocalPlan} leaves. */
export interface LocalOutcome {
  /** 0 when every process succeeded, else 1. */
  readonly code: number;
  /** The report's output, or (static mode, no report) each pod's share. */
  readonly outcome: string;
}

/**
 * Runs a plan: submit, then the workers together, then the report (unprefixed). Returns 0 when
 * every process succeeded, and the output of the report (or, with none, of the workers).
 */
export async function runLocalPlan(plan: LocalPlan): Promise<LocalOutcome> {
  const workerLines: string[] = [];
  const reportLines: string[] = [];
  for (const p of plan.submit) {
    const code = await startLocal(p);
    if (code !== 0) {
      throw new EnvironmentError(
        `"${p.name}" exited with code ${code}; is the local broker running?`,
      );
    }
  }
  const codes = await Promise.all(
    plan.workers.map((p) => startLocal(p, { stdoutLines: workerLines })),
  );
  const failed = plan.workers.flatMap((p, i) =>
    codes[i] === 0 ? [] : [`${p.name} (exit code ${codes[i]})`]
  );
  for (const p of plan.report) {
    const code = await startLocal(p, { prefix: false, stdoutLines: reportLines });
    if (code !== 0) failed.push(`${p.name} (exit code ${code})`);
  }
  const lines = plan.report.length > 0 ? reportLines : workerLines;
  const outcome = lines.map((line) => `${line}\n`).join("");
  if (failed.length > 0) {
    console.error(`Failed: ${failed.join(", ")}`);
    return { code: 1, outcome };
  }
  return { code: 0, outcome };
}
