/**
 * The compiled `ttg` binary and its image: the permissions baked into it, the `deno compile`
 * and `docker build` command lines (pure argv arrays, tested exactly), and the OCI labels.
 *
 * @module
 */
import { WORKER_V8_FLAGS } from "../workers/v8_flags.ts";

/** The CLI entry compiled into `dist/ttg`. */
export const CLI_ENTRY = "workers/cli.ts";
/** Where `deno task compile` writes the binary. */
export const BINARY_PATH = "dist/ttg";

/**
 * The permissions of the compiled worker, each with why it is needed. What is not here is
 * denied: no FFI, no broad writes, no OS information beyond the host name.
 */
export const COMPILE_PERMISSIONS: readonly { readonly flag: string; readonly why: string }[] = [
  { flag: "--allow-net", why: "the broker's host comes from settings at run time" },
  {
    flag: "--allow-env",
    why:
      "settings are read from about forty variables (docs/SETTINGS.md), and npm clients read their own",
  },
  {
    flag: "--allow-read",
    why: "job modules (--job) and the SQLite database can live anywhere the user says",
  },
  { flag: "--allow-write=.ttg", why: "the only files written are the SQLite database under .ttg/" },
  {
    flag: "--allow-run",
    why:
      "`ttg run` starts worker processes of the same binary, whose path is known only at run time",
  },
  { flag: "--allow-sys=hostname", why: "the default worker id is <hostname>-<pid>" },
];

/**
 * Unstable Deno features the binary needs, each with why: handler threads are started with
 * only their job's permissions (Worker `deno.permissions`), unstable in Deno 2.9.
 */
export const UNSTABLE_FLAGS: readonly { readonly flag: string; readonly why: string }[] = [
  {
    flag: "--unstable-worker-options",
    why: "handler threads get only the permissions their job declares (Worker deno.permissions)",
  },
];

/** Options of {@linkcode compileArgv}. */
export interface CompileOptions {
  /** The `deno` executable. @default "deno" */
  readonly deno?: string;
  /** Output path. @default {@linkcode BINARY_PATH} */
  readonly output?: string;
  /** Modules loaded at run time that the graph does not show (Web Worker bodies). */
  readonly include?: readonly string[];
  /** Cross-compilation target, e.g. `x86_64-unknown-linux-gnu`. */
  readonly target?: string;
}

/**
 * `deno compile` of the CLI with {@linkcode COMPILE_PERMISSIONS} and the heap sizing of every ttg
 * process (workers/v8_flags.ts) baked in. deno reads the runtime it
 * embeds from DENORT_BIN when set (otherwise it downloads it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileArgv } from "./binary.ts";
 * const argv = compileArgv({ include: ["workers/handler_thread.ts"] });
 * assert.ok(argv.includes("--include=workers/handler_thread.ts") && argv.at(-1) === "workers/cli.ts");
 * ```
 */
export function compileArgv(options: CompileOptions = {}): string[] {
  return [
    options.deno ?? "deno",
    "compile",
    "--no-prompt",
    ...COMPILE_PERMISSIONS.map((p) => p.flag),
    ...UNSTABLE_FLAGS.map((u) => u.flag),
    `--v8-flags=${WORKER_V8_FLAGS.join(",")}`,
    ...(options.include ?? []).map((path) => `--include=${path}`),
    ...(options.target ? [`--target=${options.target}`] : []),
    `--output=${options.output ?? BINARY_PATH}`,
    CLI_ENTRY,
  ];
}

/** The `deno run` equivalent of the compiled binary (same permissions), for tests and local use. */
export function runWithCompilePermissionsArgv(deno = "deno"): string[] {
  return [
    deno,
    "run",
    "--no-prompt",
    ...COMPILE_PERMISSIONS.map((p) => p.flag),
    ...UNSTABLE_FLAGS.map((u) => u.flag),
    `--v8-flags=${WORKER_V8_FLAGS.join(",")}`,
    CLI_ENTRY,
  ];
}

/**
 * Web Worker modules referenced as `new Worker(new URL("./x.ts", import.meta.url)…)`, or as a
 * `…WORKER_BODY = new URL("./x.ts", import.meta.url)` constant (a body that a generated root
 * module imports), in a source text; `deno compile` must `--include` them.
 */
export function workerModules(source: string, dir: string): string[] {
  const found = new Set<string>();
  const pattern =
    /(?:new\s+Worker\(|[A-Z_]*WORKER_BODY\s*=)\s*new\s+URL\(\s*["'](\.{1,2}\/[^"']+)["']\s*,\s*import\.meta\.url\s*\)/g;
  for (const match of source.matchAll(pattern)) {
    found.add(normalize(`${dir}/${match[1]}`));
  }
  return [...found].sort();
}

function normalize(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "..") out.pop();
    else if (part !== "." && part !== "") out.push(part);
  }
  return out.join("/");
}

/** What the image is built from. */
export interface ImageBuild {
  /** Image repository. @default "ttg" */
  readonly repository?: string;
  /** deno.json `version`. */
  readonly version: string;
  /** Short git commit. */
  readonly gitCommit: string;
  /** ISO 8601 build time. */
  readonly buildDate: string;
  /** @default "docker" */
  readonly docker?: string;
}

/** The tags an image gets: its version and its git commit. */
export function imageTags(build: ImageBuild): string[] {
  const repository = build.repository ?? "ttg";
  return [`${repository}:${build.version}`, `${repository}:${build.gitCommit}`];
}

/**
 * `docker build` of the Dockerfile, tagged with the version and the commit; the build args
 * become OCI labels.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dockerBuildArgv } from "./binary.ts";
 * const argv = dockerBuildArgv({
 *   version: "0.1.0",
 *   gitCommit: "abc1234",
 *   buildDate: "2025-01-01T00:00:00Z",
 * });
 * assert.ok(argv.includes("--tag=ttg:0.1.0"));
 * assert.ok(argv.includes("--tag=ttg:abc1234"));
 * ```
 */
export function dockerBuildArgv(build: ImageBuild): string[] {
  return [
    build.docker ?? "docker",
    "build",
    "--file=Dockerfile",
    ...imageTags(build).map((tag) => `--tag=${tag}`),
    `--build-arg=VERSION=${build.version}`,
    `--build-arg=GIT_COMMIT=${build.gitCommit}`,
    `--build-arg=BUILD_DATE=${build.buildDate}`,
    ".",
  ];
}
