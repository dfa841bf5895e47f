/**
 * The README's code works as written. Every TypeScript block (fenced as `ts`) is written to a
 * file next to the repository (so its `./mod.ts` imports resolve) and must pass the project's own
 * `deno check` and `deno lint`; `my_job.ts` and `my_deploy.ts` also run. Every `deno task …`
 * command of a `sh` block, and of a `text` block's `$ …` line, is parsed by that task's own flag
 * parser (and, for tasks with deployment flags, its config is synthesized); the manifests
 * example's output is compared line by line. Commands that need a cluster, Docker or a broker are
 * parsed, not run.
 *
 * A TypeScript block that is deliberately partial (a fragment that cannot compile alone) starts
 * with the line `// ttg-readme: fragment`; it is neither checked nor linted. No block needs it
 * today.
 */
import "../tasks/node_warnings.ts";
import assert from "node:assert/strict";
import type { Command } from "commander";
import denoJson from "../deno.json" with { type: "json" };
import { parseBenchArgs } from "../bench/main.ts";
import { synth } from "../deploy/synth.ts";
import { parseChaosArgs } from "../tasks/chaos.ts";
import { parseCleanupArgs } from "../tasks/cleanup.ts";
import { parseClusterArgs } from "../tasks/cluster.ts";
import { REPO_ROOT } from "../tasks/command.ts";
import { parseCompileArgs } from "../tasks/compile.ts";
import { propsFromFlags } from "../tasks/config_flags.ts";
import { parseDemoArgs } from "../tasks/demo_kind.ts";
import { fleetGuide } from "../tasks/fleet_submit.ts";
import { parseDeployArgs } from "../tasks/deploy.ts";
import { parseImageArgs } from "../tasks/image.ts";
import { parseManifestsArgs } from "../tasks/manifests.ts";
import { buildProgram } from "../workers/cli.ts";
import { resolveSettings } from "../workers/settings.ts";
import { tempDir, ttg } from "./helpers.ts";

const FRAGMENT = "// ttg-readme: fragment";

interface Block {
  readonly lang: string;
  readonly code: string;
  /** 1-based line of the README where the block's code starts. */
  readonly line: number;
}

async function readmeBlocks(): Promise<Block[]> {
  const text = await Deno.readTextFile(`${REPO_ROOT}/README.md`);
  const blocks: Block[] = [];
  for (const m of text.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)) {
    const line = text.slice(0, m.index).split("\n").length + 1;
    blocks.push({ lang: m[1]!, code: m[2]!, line });
  }
  return blocks;
}

/** Shell words of one command (quotes as sh reads them; no expansions in the README's commands). */
function shellWords(command: string): string[] {
  const words: string[] = [];
  for (const m of command.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) {
    words.push(m[1] ?? m[2] ?? m[3]!);
  }
  return words;
}

/** A `deno task` command of the README; `fails` when the README shows it failing (bad input). */
interface TaskCommand {
  readonly name: string;
  readonly args: string[];
  readonly where: string;
  readonly fails: boolean;
}

/**
 * Every `deno task NAME ARGS…` of a block (in a ```text block, the `$ …` lines): comments
 * dropped, pipelines and `&&` split. A `$` line followed by `Invalid …` output shows bad input.
 */
function taskCommands(block: Block): TaskCommand[] {
  const lines = block.code.split("\n");
  return lines.flatMap((line, i) => {
    if (block.lang === "text" && !line.startsWith("$ ")) return [];
    const command = block.lang === "text" ? line.slice(2) : line;
    const fails = block.lang === "text" && (lines[i + 1] ?? "").startsWith("Invalid ");
    return command.replace(/\s#.*$/, "").replace(/\s[12]?>>?\s*\S+/g, "").split(/\||&&/).map((c) =>
      shellWords(c.trim())
    )
      .filter((w) => w[0] === "deno" && w[1] === "task")
      .map((w) => ({ name: w[2]!, args: w.slice(3), where: `README.md:${block.line + i}`, fails }));
  });
}

function* commandTree(command: Command): Generator<Command> {
  yield command;
  for (const sub of command.commands) yield* commandTree(sub);
}

/** Parses `ttg` arguments with the real program, its actions replaced by resolving settings. */
async function parseTtg(args: readonly string[]): Promise<void> {
  const program = buildProgram();
  let resolved = false;
  for (const command of commandTree(program)) {
    command.configureOutput({ writeErr: () => {}, writeOut: () => {} });
    command.action((flags: Record<string, string | boolean | undefined>) => {
      resolveSettings(flags, () => undefined);
      resolved = true;
    });
  }
  await program.parseAsync([...args], { from: "user" });
  assert.ok(resolved, `no command ran for ttg ${args.join(" ")}`);
}

/** Each task's own flag parser; for tasks with deployment flags, the config is synthesized too. */
const TASK_PARSERS: Readonly<Record<string, (args: string[]) => unknown>> = {
  bench: parseBenchArgs,
  chaos: parseChaosArgs,
  cleanup: parseCleanupArgs,
  cluster: parseClusterArgs,
  compile: parseCompileArgs,
  image: parseImageArgs,
  deploy: (args) => synth(propsFromFlags(parseDeployArgs(args).values)),
  "demo:kind": (args) => synth(propsFromFlags(parseDemoArgs(args).values)),
  manifests: (args) => synth(propsFromFlags(parseManifestsArgs(args))),
};

Deno.test("every ```ts block of the README passes deno check and deno lint", async () => {
  const blocks = (await readmeBlocks()).filter((b) => b.lang === "ts");
  assert.ok(blocks.length >= 2, "the README's job and deploy examples");
  const tag = crypto.randomUUID().slice(0, 8);
  const files = blocks.filter((b) => !b.code.startsWith(FRAGMENT)).map((b) => ({
    path: `${REPO_ROOT}/.readme-${tag}-line${b.line}.ts`,
    block: b,
  }));
  try {
    for (const f of files) await Deno.writeTextFile(f.path, f.block.code);
    const paths = files.map((f) => f.path);
    for (const argv of [["check", ...paths], ["lint", ...paths]]) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: argv,
        cwd: REPO_ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      // deno check also reports what the blocks import; only problems in a block count here.
      // deno-lint-ignore no-control-regex
      const text = new TextDecoder().decode(out.stderr).replace(/\x1b\[[0-9;]*m/g, "");
      const inBlocks = text.split(/\n(?=TS\d+ \[ERROR\]|error\[)/)
        .filter((p) => /^(TS\d+ \[ERROR\]|error\[)/.test(p) && p.includes(`.readme-${tag}-`));
      assert.deepEqual(inBlocks, [], `deno ${argv[0]} of the README's ts blocks`);
      if (argv[0] === "lint") assert.equal(out.code, 0, text);
    }
  } finally {
    for (const f of files) await Deno.remove(f.path).catch(() => {});
  }
});

Deno.test("the README's my_job.ts runs as a job: its sum, and --args reaching chunk.args", async () => {
  const block = (await readmeBlocks()).find((b) => b.code.startsWith("// my_job.ts"));
  assert.ok(block, "the README's my_job.ts");
  const path = `${REPO_ROOT}/.readme-${crypto.randomUUID().slice(0, 8)}-my_job.ts`;
  await using dir = await tempDir();
  try {
    await Deno.writeTextFile(path, block.code);
    const base = ["run", "--job", path, "--sqlite-path", `${dir.path}/ttg.db`, "--workers", "1"];
    const run = await ttg([...base, "--params", "100000", "--chunk-size", "1000", "--json"]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout).aggregate, { sum: 333328333350000 });
    const bad = await ttg([...base, "--params", "10", "--args", '{"bad": true}', "--json"]);
    assert.equal(bad.code, 3, bad.stderr);
    assert.equal(JSON.parse(bad.stdout).dead_letters[0].reason, "bad input");
  } finally {
    await Deno.remove(path).catch(() => {});
  }
});

Deno.test("the README's my_deploy.ts prints its deployment's YAML, without the password Secret", async () => {
  const block = (await readmeBlocks()).find((b) => b.code.startsWith("// my_deploy.ts"));
  assert.ok(block, "the README's my_deploy.ts");
  const path = `${REPO_ROOT}/.readme-${crypto.randomUUID().slice(0, 8)}-my_deploy.ts`;
  try {
    await Deno.writeTextFile(path, block.code);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", path],
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.match(stdout, /^kind: ScaledJob$/m);
    assert.match(stdout, /^ {2}namespace: sweeps$/m);
    assert.doesNotMatch(stdout, /^kind: Secret$/m);
  } finally {
    await Deno.remove(path).catch(() => {});
  }
});

Deno.test("every deno task command the README shows is parsed by that task's own flag parser", async () => {
  const commands = (await readmeBlocks()).filter((b) => b.lang === "sh" || b.lang === "text")
    .flatMap(taskCommands);
  assert.ok(commands.length >= 25, `found only ${commands.length} commands`);
  const tasks = denoJson.tasks as Record<string, string>;
  for (const { name, args, where, fails } of commands) {
    assert.ok(name in tasks, `${where}: deno task ${name} is not a task of deno.json`);
    const label = `${where}: deno task ${name} ${args.join(" ")}`;
    let failure: Error | undefined;
    try {
      if (name === "ttg" || name === "demo") {
        await parseTtg(name === "demo" ? ["run", ...args] : args);
      } else if (name === "test" || name === "check") {
        assert.deepEqual(args, [], "takes no arguments here");
      } else {
        const parse = TASK_PARSERS[name];
        assert.ok(parse, "no parser known for this task");
        parse(args);
      }
    } catch (error) {
      failure = error as Error;
    }
    if (fails) assert.ok(failure, `${label}: the README shows it failing, but it parses`);
    else if (failure) throw new Error(`${label}: ${failure.message}`);
  }
});

Deno.test("the README's manifests example prints exactly the lines it shows", async () => {
  const block = (await readmeBlocks()).find((b) =>
    b.lang === "text" && b.code.startsWith("$ deno task manifests")
  );
  assert.ok(block, "the manifests example");
  const [command, ...expected] = block.code.trimEnd().split("\n");
  const args = shellWords(command!.slice(2)).slice(3);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO_ROOT}/tasks/manifests.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.deepEqual(new TextDecoder().decode(out.stderr).trimEnd().split("\n"), expected);
});

Deno.test("the README's fleet deploy ends with the port-forward and submit commands the deploy task prints", async () => {
  const block = (await readmeBlocks()).find((b) =>
    b.lang === "text" && b.code.startsWith("$ deno task deploy --mode fleet\n")
  );
  assert.ok(block, "the fleet deploy example");
  const guide = fleetGuide(synth({ mode: "fleet" }).config);
  assert.ok(block.code.trimEnd().endsWith(guide), `README.md:${block.line}: expected\n${guide}`);
});
