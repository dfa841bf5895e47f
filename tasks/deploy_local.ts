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

/** The plan of a synthesized deployment, with the local entrypoint and credentials. */
export function planLocal(synthesized: Synthesized, deno?: string): LocalPlan {
  return localPlan(synthesized.manifests, {
    entrypoint: localEntrypoint(deno),
    secretOverrides: localSecretOverrides(synthesized.config),
    nodeName: "localhost",
  });
}

/** The plan as shell lines (what `--dry-run --target local` prints). */
export function describePlan(plan: LocalPlan): string {
  const lines: string[] = [];
  for (const [stage, processes] of Object.entries(plan)) {
    for (const p of processes as readonly LocalProcess[]) {
      const env = Object.entries(p.env).map(([k, v]) => `${k}=${v}`);
      lines.push(`# ${stage}: ${p.name}`, shellQuote(["env", "-i", ...env, ...p.argv]));
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

/** Starts one process; its output lines are prefixed with its pod name. Resolves to its exit code. */
export async function startLocal(
  process: LocalProcess,
  options: { readonly prefix?: boolean; readonly signal?: AbortSignal } = {},
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
      cwd: REPO_ROOT,
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
    pipeLines(child.stdout, prefix, (line) => console.log(line)),
    pipeLines(child.stderr, prefix, (line) => console.error(line)),
  ]);
  return (await child.status).code;
}

/**
 * Runs a plan: submit, then the workers together, then the report (unprefixed). Returns 0 when
 * every process succeeded.
 */
export async function runLocalPlan(plan: LocalPlan): Promise<number> {
  for (const p of plan.submit) {
    const code = await startLocal(p);
    if (code !== 0) {
      throw new EnvironmentError(
        `"${p.name}" exited with code ${code}; is the local broker running?`,
      );
    }
  }
  const codes = await Promise.all(plan.workers.map((p) => startLocal(p)));
  const failed = plan.workers.flatMap((p, i) =>
    codes[i] === 0 ? [] : [`${p.name} (exit code ${codes[i]})`]
  );
  for (const p of plan.report) {
    const code = await startLocal(p, { prefix: false });
    if (code !== 0) failed.push(`${p.name} (exit code ${code})`);
  }
  if (failed.length > 0) {
    console.error(`Failed: ${failed.join(", ")}`);
    return 1;
  }
  return 0;
}
