/**
 * `deno task cluster up|down|config [--name ttg] [--worker-nodes 3] [--image ttg:<version>]
 * [--no-load]`: create the Kind cluster from the generated config (one control plane, three
 * workers) and load the TTG image into it; delete it; or print its config.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import {
  DEFAULT_CLUSTER,
  kindCluster,
  kindCreateArgv,
  kindDeleteArgv,
  kindGetClustersArgv,
  kindLoadImageArgv,
} from "../deploy/kind.ts";
import { EnvironmentError, firstLine, main, mustRun, run, UsageError } from "./command.ts";
import { PROJECT_VERSION } from "./config_flags.ts";

const USAGE =
  `Usage: deno task cluster up|down|config [--name ${DEFAULT_CLUSTER}] [--worker-nodes 3]
                         [--image ttg:${PROJECT_VERSION}] [--no-load]

  up       create the Kind cluster (kubectl context kind-<name>) and load the image into it
  down     delete the Kind cluster
  config   print the Kind cluster config`;

/** The Kind config YAML of a cluster. */
export function kindConfigYaml(name: string, workerNodes: number): string {
  return stringify(kindCluster({ name, workerNodes }), { version: "1.1" });
}

/** Parses the task's arguments: its action (undefined with --help) and flags; bad input throws. */
export function parseClusterArgs(args: readonly string[]) {
  const { values, positionals } = parseArgs({
    args: [...args],
    options: {
      name: { type: "string", default: DEFAULT_CLUSTER },
      "worker-nodes": { type: "string", default: "3" },
      image: { type: "string", default: `ttg:${PROJECT_VERSION}` },
      "no-load": { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: true,
  });
  const action = positionals[0];
  if (values.help) return { values, action: undefined };
  if (positionals.length !== 1 || (action !== "up" && action !== "down" && action !== "config")) {
    throw new UsageError(`Invalid command "${positionals.join(" ")}": expected up, down or config`);
  }
  return { values, action };
}

if (import.meta.main) {
  await main(async () => {
    const { values, action } = parseClusterArgs(Deno.args);
    if (action === undefined) {
      console.log(USAGE);
      return 0;
    }
    const name = values.name;
    const config = kindConfigYaml(name, Number(values["worker-nodes"]));
    if (action === "config") {
      console.log(config.trimEnd());
      return 0;
    }
    if (action === "down") {
      await mustRun(kindDeleteArgv(name));
      return 0;
    }
    const existing = (await mustRun(kindGetClustersArgv(), { capture: true })).stdout.split("\n");
    if (existing.includes(name)) {
      console.log(`Kind cluster "${name}" already exists (kubectl context kind-${name})`);
    } else {
      await mustRun(kindCreateArgv(name), { stdin: config });
    }
    if (!values["no-load"]) {
      const load = await run(kindLoadImageArgv(values.image, name), { capture: true });
      if (load.code !== 0) {
        throw new EnvironmentError(
          `Cannot load image "${values.image}" into Kind: ${
            firstLine(load.stderr)
          } (build it with \`deno task image\`)`,
        );
      }
      console.log(`Loaded image "${values.image}" into Kind cluster "${name}"`);
    }
    return 0;
  });
}
