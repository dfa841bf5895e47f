/**
 * The compiled `ttg` binary, the bundle and the image: the exact `deno compile` and
 * `docker build` command lines, the permission set proven under `deno run`, the compiled binary
 * against Redis (needs DENORT_BIN: deno compile cannot download its runtime here), and the
 * `deno bundle` of the CLI running a sweep on its own.
 */
import assert from "node:assert/strict";
import {
  BINARY_PATH,
  COMPILE_PERMISSIONS,
  compileArgv,
  dockerBuildArgv,
  imageTags,
  runWithCompilePermissionsArgv,
  workerModules,
} from "../deploy/binary.ts";
import { IMAGE_ENTRYPOINT, NONROOT_UID } from "../deploy/pod.ts";
import { REPO_ROOT } from "../tasks/command.ts";
import { compileExecutable, findWorkerModules } from "../tasks/compile.ts";
import { buildDate, gitCommitArgv } from "../tasks/image.ts";
import { listening, ttg } from "./helpers.ts";
import { WORKER_V8_FLAGS } from "../workers/v8_flags.ts";

const DENORT_BIN = Deno.env.get("DENORT_BIN");

const redisUp = await listening(6379);

async function exec(
  argv: readonly string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
) {
  const out = await new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("deno compile: narrow permissions, worker options, the handler thread included, dist/ttg from workers/cli.ts", () => {
  assert.deepEqual(compileArgv({ include: ["workers/handler_thread.ts"] }), [
    "deno",
    "compile",
    "--no-prompt",
    "--allow-net",
    "--allow-env",
    "--allow-read",
    "--allow-write=.ttg",
    "--allow-run",
    "--allow-sys=hostname",
    "--unstable-worker-options",
    "--v8-flags=--max-semi-space-size=1,--heap-growing-percent=50",
    "--include=workers/handler_thread.ts",
    "--output=dist/ttg",
    "workers/cli.ts",
  ]);
  assert.equal(BINARY_PATH, "dist/ttg");
  assert.ok(COMPILE_PERMISSIONS.every((p) => p.why.length > 10), "every permission says why");
  assert.ok(
    !COMPILE_PERMISSIONS.some((p) => p.flag === "--allow-all" || p.flag.startsWith("--allow-ffi")),
  );
});

Deno.test("workerModules() finds Web Worker bodies; the repository's is workers/handler_thread.ts", async () => {
  const source =
    `const w = new Worker(new URL("./handler_thread.ts", import.meta.url).href, { type: "module" });
    new Worker( new URL('../jobs/other.ts', import.meta.url) );`;
  assert.deepEqual(workerModules(source, "workers"), [
    "jobs/other.ts",
    "workers/handler_thread.ts",
  ]);
  assert.deepEqual(await findWorkerModules(), ["workers/handler_thread.ts"]);
});

Deno.test({
  name: `the compile permission set is enough for a Redis sweep (the same flags under deno run)${
    redisUp ? "" : " (ignored: no Redis on 127.0.0.1:6379)"
  }`,
  ignore: !redisUp,
  async fn() {
    const jobId = `compile-perms-${crypto.randomUUID().slice(0, 8)}`;
    const base = runWithCompilePermissionsArgv(Deno.execPath());
    const env = {
      TTG_BACKEND: "redis",
      TTG_JOB_ID: jobId,
      TTG_PARAMS: "1000",
      TTG_IDLE_TIMEOUT_SECONDS: "1",
    };
    try {
      const submit = await exec([...base, "submit"], { env });
      assert.equal(submit.code, 0, submit.stderr);
      const worker = await exec([...base, "worker", "--execution", "threads", "--report-json"], {
        env,
      });
      assert.equal(worker.code, 0, worker.stderr);
      assert.equal(JSON.parse(worker.stdout.trim().split("\n").at(-1)!).chunks, 10);
      const results = await exec([...base, "results", "--json"], { env });
      assert.equal(results.code, 0, results.stderr);
      assert.equal(JSON.parse(results.stdout).chunks.completed, 10);
    } finally {
      await ttg(["reset", "--backend", "redis", "--job-id", jobId]);
    }
  },
});

Deno.test("the compile permission set is enough for `ttg run` on SQLite: writes under .ttg/ only, starts its workers", async () => {
  const jobId = `compile-perms-sqlite-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const run = await exec([
      ...runWithCompilePermissionsArgv(Deno.execPath()),
      "run",
      "--backend",
      "sqlite",
      "--job-id",
      jobId,
      "--params",
      "1000",
      "--workers",
      "2",
      "--json",
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout.trim().split("\n").at(-1)!).chunks.completed, 10);
  } finally {
    await ttg(["reset", "--backend", "sqlite", "--job-id", jobId]);
  }
});

Deno.test({
  name: `the compiled dist/ttg runs a Redis sweep${
    DENORT_BIN
      ? redisUp ? "" : " (ignored: no Redis on 127.0.0.1:6379)"
      : " (ignored: DENORT_BIN is not set; deno compile cannot download its denort runtime here)"
  }`,
  ignore: !DENORT_BIN || !redisUp,
  async fn() {
    const dir = await Deno.makeTempDir();
    const jobId = `compiled-${crypto.randomUUID().slice(0, 8)}`;
    try {
      const binary = `${dir}/ttg`;
      const compiled = await exec(
        compileArgv({ deno: Deno.execPath(), output: binary, include: await findWorkerModules() }),
        { env: { DENORT_BIN: DENORT_BIN! } },
      );
      assert.equal(compiled.code, 0, compiled.stderr);
      const env = {
        TTG_BACKEND: "redis",
        TTG_JOB_ID: jobId,
        TTG_PARAMS: "2000",
        TTG_IDLE_TIMEOUT_SECONDS: "1",
      };
      assert.equal((await exec([binary, "submit"], { cwd: dir, env })).code, 0);
      const worker = await exec([binary, "worker", "--execution", "threads"], { cwd: dir, env });
      assert.equal(worker.code, 0, worker.stderr);
      const results = await exec([binary, "results", "--json"], { cwd: dir, env });
      assert.equal(JSON.parse(results.stdout).chunks.completed, 20);
    } finally {
      await ttg(["reset", "--backend", "redis", "--job-id", jobId]);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("deno bundle of workers/cli.ts is one self-contained file that runs a sweep away from the sources", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bundle = `${dir}/ttg.js`;
    const bundled = await exec([
      Deno.execPath(),
      "bundle",
      "--platform=deno",
      `--output=${bundle}`,
      "workers/cli.ts",
    ]);
    assert.equal(bundled.code, 0, bundled.stderr);
    const files = [];
    for await (const entry of Deno.readDir(dir)) files.push(entry.name);
    assert.deepEqual(files, ["ttg.js"], "one file");
    const run = await exec(
      [
        Deno.execPath(),
        "run",
        "-A",
        "--no-config",
        bundle,
        "run",
        "--backend",
        "sqlite",
        "--sqlite-path",
        `${dir}/ttg.db`,
        "--params",
        "1000",
        "--workers",
        "1",
        "--json",
      ],
      { cwd: dir },
    );
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout.trim().split("\n").at(-1)!);
    assert.equal(report.chunks.completed, report.chunks.total);
    assert.equal(report.aggregate.count, 1000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Dockerfile: compiled in denoland/deno of this version, distroless cc nonroot, UID 65532, /ttg entrypoint, OCI labels", async () => {
  const dockerfile = await Deno.readTextFile(new URL("../Dockerfile", import.meta.url));
  const denoVersion = Deno.version.deno;
  assert.match(
    dockerfile,
    new RegExp(`^ARG DENO_VERSION=${denoVersion.replaceAll(".", "\\.")}$`, "m"),
  );
  assert.match(dockerfile, /^FROM denoland\/deno:\$\{DENO_VERSION\} AS builder$/m);
  assert.match(dockerfile, /^RUN deno task compile$/m);
  assert.match(dockerfile, /^FROM gcr\.io\/distroless\/cc-debian12:nonroot$/m);
  assert.match(dockerfile, new RegExp(`^USER ${NONROOT_UID}:${NONROOT_UID}$`, "m"));
  const entrypoint = dockerfile.match(/^ENTRYPOINT (.+)$/m)?.[1];
  assert.deepEqual(JSON.parse(entrypoint!), IMAGE_ENTRYPOINT);
  assert.match(dockerfile, /COPY --from=builder --chown=65532:65532 \/src\/dist\/ttg \/ttg/);
  for (
    const [label, arg] of [["version", "VERSION"], ["revision", "GIT_COMMIT"], [
      "created",
      "BUILD_DATE",
    ]]
  ) {
    assert.match(dockerfile, new RegExp(`^ARG ${arg}=`, "m"));
    assert.match(
      dockerfile,
      new RegExp(`org\\.opencontainers\\.image\\.${label}="\\$\\{${arg}\\}"`),
    );
  }
  const ignore = await Deno.readTextFile(new URL("../.dockerignore", import.meta.url));
  for (const excluded of [".git", "node_modules", "dist", "tests"]) {
    assert.match(ignore, new RegExp(`^${excluded}$`, "m"));
  }
  for (const copied of dockerfile.matchAll(/^COPY (?!--from)(\S+)/gm)) {
    assert.doesNotMatch(
      ignore,
      new RegExp(`^${copied[1]!.replace(/\/$/, "")}$`, "m"),
      `${copied[1]} is copied`,
    );
  }
});

Deno.test("deno task image: docker build tagged with the version and the git commit, build args for the OCI labels", () => {
  const build = { version: "0.1.0", gitCommit: "0123456789ab", buildDate: "2025-01-02T03:04:05Z" };
  assert.deepEqual(dockerBuildArgv(build), [
    "docker",
    "build",
    "--file=Dockerfile",
    "--tag=ttg:0.1.0",
    "--tag=ttg:0123456789ab",
    "--build-arg=VERSION=0.1.0",
    "--build-arg=GIT_COMMIT=0123456789ab",
    "--build-arg=BUILD_DATE=2025-01-02T03:04:05Z",
    ".",
  ]);
  assert.deepEqual(imageTags({ ...build, repository: "ghcr.io/org/ttg" }), [
    "ghcr.io/org/ttg:0.1.0",
    "ghcr.io/org/ttg:0123456789ab",
  ]);
  assert.deepEqual(gitCommitArgv(), ["git", "rev-parse", "--short=12", "HEAD"]);
  assert.equal(buildDate(new Date("2025-01-02T03:04:05.678Z")), "2025-01-02T03:04:05Z");
});

Deno.test("deno task compile with a wrong DENORT_BIN says deno's reason in one line and leaves no empty directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ttg-test-" });
  try {
    await Deno.writeTextFile(`${dir}/tiny.ts`, 'console.log("tiny");\n');
    await Deno.mkdir(`${dir}/kept`);
    const denort = `${dir}/no-such-denort`;
    for (const output of [`${dir}/dist/sub/tiny`, `${dir}/kept/tiny`]) {
      const argv = [Deno.execPath(), "compile", "--no-check", "--output", output, `${dir}/tiny.ts`];
      await assert.rejects(
        () => compileExecutable(argv, { output, denort, cwd: dir }),
        (e: Error) =>
          e.name === "EnvironmentError" &&
          e.message ===
            `deno compile failed: Could not find denort at '${denort}': No such file or directory (os error 2) (DENORT_BIN is ${denort}: point it to the denort of this deno version)`,
      );
    }
    const left = [];
    for await (const entry of Deno.readDir(dir)) left.push(entry.name);
    assert.deepEqual(left.sort(), ["kept", "tiny.ts"], "the directories deno made are removed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task demo and deno task ttg run the coordinator with the heap sizing its workers get", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const flag = `--v8-flags=${WORKER_V8_FLAGS.join(",")}`;
  for (const task of ["demo", "ttg"]) {
    assert.ok(
      String(config.tasks[task]).split(" ").includes(flag),
      `${task}: ${config.tasks[task]}`,
    );
  }
  assert.ok(runWithCompilePermissionsArgv().includes(flag));
});
