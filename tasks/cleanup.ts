/**
 * `deno task cleanup [--dry-run] [--instance NAME] [--keep-namespace]`: deletes every object
 * TTG's deploy created, found by its labels (managed-by ttg-deploy, part-of ttg), in every
 * namespace, and nothing else. `--dry-run` lists them instead.
 *
 * @module
 */
import "./node_warnings.ts";
import { parseArgs } from "node:util";
import {
  deleteBySelectorArgv,
  deleteNamespacesArgv,
  KEDA_KINDS,
  kedaResourcesArgv,
  listBySelectorArgv,
  MONITORING_KINDS,
  monitoringResourcesArgv,
  OWNED_KINDS,
} from "../deploy/kubectl.ts";
import { ownedSelector } from "../deploy/labels.ts";
import { main, mustRun, run } from "./command.ts";
import { preflight } from "./deploy_cluster.ts";

const USAGE = `Usage: deno task cleanup [--dry-run] [--instance NAME] [--keep-namespace]

Deletes the objects labelled app.kubernetes.io/managed-by=ttg-deploy in every namespace.
  --dry-run          list them, delete nothing
  --instance NAME    only those of one deployment (its --name)
  --keep-namespace   keep the namespaces TTG created`;

/** Options of {@linkcode cleanupCommands}. */
export interface CleanupOptions {
  readonly instance?: string;
  /** KEDA's CRDs are installed. */
  readonly keda: boolean;
  /** The Prometheus Operator's CRDs are installed. @default false */
  readonly monitoring?: boolean;
  readonly dryRun: boolean;
  readonly keepNamespaces: boolean;
}

/** The kubectl commands of a cleanup, in order. */
export function cleanupCommands(options: CleanupOptions): string[][] {
  const selector = ownedSelector(options.instance);
  const kinds = [
    ...(options.keda ? KEDA_KINDS : []),
    ...(options.monitoring ? MONITORING_KINDS : []),
    ...OWNED_KINDS,
  ];
  if (options.dryRun) {
    return [
      listBySelectorArgv(options.keepNamespaces ? kinds : [...kinds, "namespaces"], selector),
    ];
  }
  return [
    deleteBySelectorArgv(kinds, selector, "all"),
    ...(options.keepNamespaces ? [] : [deleteNamespacesArgv(selector)]),
  ];
}

/** Parses the task's flags; bad input throws. */
export function parseCleanupArgs(args: readonly string[]) {
  return parseArgs({
    args: [...args],
    options: {
      "dry-run": { type: "boolean", default: false },
      instance: { type: "string" },
      "keep-namespace": { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  }).values;
}

if (import.meta.main) {
  await main(async () => {
    const values = parseCleanupArgs(Deno.args);
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    await preflight();
    const installed = async (argv: string[]) =>
      (await run(argv, { capture: true })).stdout.trim() !== "";
    const keda = await installed(kedaResourcesArgv());
    const monitoring = await installed(monitoringResourcesArgv());
    for (
      const argv of cleanupCommands({
        instance: values.instance,
        keda,
        monitoring,
        dryRun: values["dry-run"],
        keepNamespaces: values["keep-namespace"],
      })
    ) {
      await mustRun(argv);
    }
    return 0;
  });
}
