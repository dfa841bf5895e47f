/**
 * Start-up figures: from starting a `ttg worker` process (a job already queued on SQLite) to its
 * first chunk pulled, read as the first counted chunk's handler start (its completion time less
 * its run time, written by the worker; the bench and the worker share the machine's clock). For
 * `deno run` of workers/cli.ts beside the runtime's own floor, `deno run` of a script that only
 * prints the time; and for the compiled binary when DENORT_BIN names a denort to compile with.
 * A first start that fills Deno's module cache is run and not counted.
 *
 * @module
 */
import { openBroker } from "../brokers/open.ts";
import {
  DENO_RUN,
  resultsOf,
  spawnTtg,
  startedAt,
  submitSweep,
  type TtgProgram,
  until,
} from "./ttg_process.ts";

/** What the start-up figures measured: milliseconds per run, or why the binary was not built. */
export interface StartupFigures {
  readonly denoRun: number[];
  readonly runtimeFloor: number[];
  readonly binary: number[] | { readonly skipped: string };
}

/** Milliseconds from spawning `program`'s worker to its first chunk pulled. */
async function firstPull(program: TtgProgram, dir: string, run: number): Promise<number> {
  const db = `${dir}/.ttg/bench.db`;
  const jobId = `ttgbench-startup-${run}`;
  const broker = await openBroker({ backend: "sqlite", sqlitePath: db, consumerId: "bench" });
  try {
    await submitSweep(broker, { jobId, params: 500, chunkSize: 10 });
    const t0 = Date.now();
    const child = spawnTtg([
      "worker",
      "--backend",
      "sqlite",
      "--sqlite-path",
      ".ttg/bench.db",
      "--job-id",
      jobId,
      "--idle-timeout",
      "0",
      "--log-level",
      "ERROR",
    ], { ...program, cwd: dir });
    try {
      const first = await until(
        async () => {
          const results = await resultsOf(broker, jobId);
          return results.length > 0 ? Math.min(...results.map(startedAt)) : undefined;
        },
        60_000,
        "the worker's first chunk",
      );
      return first - t0;
    } finally {
      child.kill("SIGTERM");
      await child.output();
    }
  } finally {
    await broker.reset(jobId).catch(() => {});
    await broker.close();
  }
}

/** Milliseconds from spawning `deno run` of a script to the time it prints. */
async function runtimeFloor(dir: string): Promise<number> {
  const script = `${dir}/now.ts`;
  await Deno.writeTextFile(script, "console.log(Date.now());\n");
  const t0 = Date.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script],
    stdout: "piped",
    stderr: "null",
  }).output();
  return Number(new TextDecoder().decode(out.stdout).trim()) - t0;
}

/** The compiled binary of workers/cli.ts, or why there is none. */
async function compileBinary(dir: string): Promise<TtgProgram | { skipped: string }> {
  const denort = Deno.env.get("DENORT_BIN");
  if (!denort) {
    return {
      skipped:
        "DENORT_BIN is not set (deno compile needs a denort of this Deno version, and this machine cannot download one)",
    };
  }
  const { compileArgv } = await import("../deploy/binary.ts");
  const { compileExecutable, findWorkerModules } = await import("../tasks/compile.ts");
  const output = `${dir}/ttg`;
  const argv = compileArgv({ deno: Deno.execPath(), output, include: await findWorkerModules() });
  await compileExecutable(argv, { output, denort });
  return { argv: [output] };
}

/** `runs` start-ups of each program, interleaved. */
export async function measureStartup(runs: number): Promise<StartupFigures> {
  const dir = await Deno.makeTempDir({ prefix: "ttg-bench-startup-" });
  try {
    await Deno.mkdir(`${dir}/.ttg`);
    const binary = await compileBinary(dir).catch((e) => ({
      skipped: `deno compile failed: ${e instanceof Error ? e.message : e}`,
    }));
    const denoRun: number[] = [];
    const floor: number[] = [];
    const binaryMs: number[] = [];
    await firstPull(DENO_RUN, dir, -1); // fills the module cache
    for (let run = 0; run < runs; run++) {
      floor.push(await runtimeFloor(dir));
      denoRun.push(await firstPull(DENO_RUN, dir, run));
      if ("argv" in binary) binaryMs.push(await firstPull(binary, dir, runs + run));
      console.error(
        `bench: start-up run ${run + 1}/${runs}: deno run ${denoRun.at(-1)} ms (runtime ${
          floor.at(-1)
        } ms)${"argv" in binary ? `, binary ${binaryMs.at(-1)} ms` : ""}`,
      );
    }
    return {
      denoRun,
      runtimeFloor: floor,
      binary: "argv" in binary ? binaryMs : { skipped: binary.skipped },
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
