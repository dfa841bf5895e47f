/**
 * `deno task image [--repository ttg] [--load-kind] [--cluster ttg] [--dry-run]`: builds the
 * Dockerfile (deno compile in a builder stage, the binary on distroless) and tags the image
 * with the project version and the git commit; the build args become OCI labels.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { dockerBuildArgv, type ImageBuild, imageTags } from "../deploy/binary.ts";
import { DEFAULT_CLUSTER, kindLoadImageArgv } from "../deploy/kind.ts";
import { main, mustRun, REPO_ROOT, run, shellQuote } from "./command.ts";
import { PROJECT_VERSION } from "./config_flags.ts";

const USAGE =
  `Usage: deno task image [--repository ttg] [--load-kind] [--cluster ${DEFAULT_CLUSTER}] [--dry-run]

  --repository   image repository (default ttg); tags <repository>:<version> and :<git commit>
  --load-kind    also load <repository>:<version> into the Kind cluster
  --cluster      Kind cluster for --load-kind (default ${DEFAULT_CLUSTER})
  --dry-run      print the docker (and kind) commands instead of running them`;

/** `git rev-parse`: the short commit the image is built from. */
export function gitCommitArgv(): string[] {
  return ["git", "rev-parse", "--short=12", "HEAD"];
}

/** The build time as OCI wants it (RFC 3339, seconds). */
export function buildDate(now: Date = new Date()): string {
  return now.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Parses the task's flags; bad input throws. */
export function parseImageArgs(args: readonly string[]) {
  return parseArgs({
    args: [...args],
    options: {
      repository: { type: "string", default: "ttg" },
      "load-kind": { type: "boolean", default: false },
      cluster: { type: "string", default: DEFAULT_CLUSTER },
      "dry-run": { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  }).values;
}

if (import.meta.main) {
  await main(async () => {
    const values = parseImageArgs(Deno.args);
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const commit = await run(gitCommitArgv(), { cwd: REPO_ROOT, capture: true });
    const build: ImageBuild = {
      repository: values.repository,
      version: PROJECT_VERSION,
      gitCommit: commit.code === 0 ? commit.stdout.trim() : "unknown",
      buildDate: buildDate(),
    };
    const commands = [
      dockerBuildArgv(build),
      ...(values["load-kind"]
        ? imageTags(build).slice(0, 1).map((t) => kindLoadImageArgv(t, values.cluster))
        : []),
    ];
    if (values["dry-run"]) {
      for (const argv of commands) console.log(shellQuote(argv));
      return 0;
    }
    for (const argv of commands) await mustRun(argv, { cwd: REPO_ROOT });
    console.log(`Built ${imageTags(build).join(", ")}`);
    return 0;
  });
}
