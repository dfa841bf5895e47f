/**
 * `deno task manifests --backend redis|rabbitmq [--mode queue|static] [--workers N] [--out DIR]
 * [--with-secrets] [--password-file FILE]` prints the generated YAML, or writes one file per
 * object into DIR (prefixed in apply order, so `kubectl apply -f DIR` applies them in order).
 * `--rules` prints the alert rules as a plain Prometheus rules file instead, `--dashboard` the
 * Grafana dashboard's JSON.
 *
 * The broker's password Secret is left out unless asked for: re-applying regenerated YAML must
 * never replace the Secret under a running broker (which keeps the password it started with).
 * `--with-secrets` adds it with a new random password; a password given by `--password-file` or
 * TTG_BROKER_PASSWORD is the same on every run, so its Secret is always included. Which of these
 * happened is one line on stderr; a Secret written to DIR is listed in DIR's `.gitignore`.
 *
 * @module
 */
import "./node_warnings.ts";
import { parseArgs } from "node:util";
import { join } from "node:path";
import type { DeploymentProps } from "../deploy/config.ts";
import type { KubeObject } from "../deploy/object.ts";
import {
  fileName,
  MANIFEST_STAGES,
  objectYaml,
  stageObjects,
  synth,
  toYaml,
  YAML_HEADER,
} from "../deploy/synth.ts";
import { rulesFile } from "../deploy/alerts.ts";
import { dashboardJson } from "../deploy/dashboard.ts";
import { main, UsageError } from "./command.ts";
import {
  CONFIG_FLAGS,
  CONFIG_FLAGS_USAGE,
  FLAG_FOR_FIELD,
  propsFromFlags,
} from "./config_flags.ts";

/** The environment variable that gives the broker's password. */
export const PASSWORD_ENV = "TTG_BROKER_PASSWORD";

const USAGE = `Usage: deno task manifests [--out DIR | --rules | --dashboard] [--with-secrets]
                          [--password-file FILE] [deployment flags]

Prints the Kubernetes objects of a deployment as YAML (or writes them to DIR).
  --out DIR             one file per object, prefixed in apply order
  --rules               the alert rules as a Prometheus rules file (rule_files:), instead
  --dashboard           the Grafana dashboard JSON (deploy/grafana/ttg-dashboard.json), instead
  --with-secrets        include the broker's password Secret, with a new random password
                        (for a new broker only: a running broker keeps the password it started with)
  --password-file FILE  include it with the password in FILE (env ${PASSWORD_ENV}): the same on
                        every run, so re-applying is safe
Without either, the Secret is left out and kubectl apply keeps the one in the cluster.

${CONFIG_FLAGS_USAGE}`;

/** Where the broker password comes from: given (file or env), generated, or nowhere. */
export type PasswordSource =
  | { readonly kind: "given"; readonly from: string; readonly password: string }
  | { readonly kind: "random" }
  | { readonly kind: "none" };

/** The password source of the flags and environment; a given one wins over `--with-secrets`. */
export function passwordSource(
  values: { readonly "with-secrets"?: boolean; readonly "password-file"?: string },
  env: (name: string) => string | undefined,
  readFile: (path: string) => string,
): PasswordSource {
  const file = values["password-file"];
  if (file !== undefined) {
    let text: string;
    try {
      text = readFile(file);
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound
        ? "the file does not exist"
        : (error as Error).message;
      throw new UsageError(`Invalid "--password-file": cannot read "${file}": ${why}`);
    }
    return given("--password-file", text.replace(/\r?\n$/, ""));
  }
  const fromEnv = env(PASSWORD_ENV);
  if (fromEnv) return given(PASSWORD_ENV, fromEnv);
  return values["with-secrets"] ? { kind: "random" } : { kind: "none" };
}

/** A given password, checked here as deploy/config.ts would, but without echoing it. */
function given(from: string, password: string): PasswordSource {
  if (!/^[\x21-\x7e]{12,128}$/.test(password)) {
    throw new UsageError(
      `Invalid ${from}: expected a password of 12 to 128 printable characters without spaces, got ${password.length} characters (not shown)`,
    );
  }
  return { kind: "given", from, password };
}

/** Props with the given password set for both brokers (only the deployed one uses it). */
export function withPassword(props: DeploymentProps, source: PasswordSource): DeploymentProps {
  if (source.kind !== "given") return props;
  return {
    ...props,
    redis: { ...props.redis, password: source.password },
    rabbitmq: { ...props.rabbitmq, password: source.password },
  };
}

/** The objects the manifests hold and the Secrets among them; Secrets only when a source says. */
export function manifestObjects(
  props: DeploymentProps,
  source: PasswordSource,
): { readonly objects: readonly (KubeObject | null)[]; readonly secrets: readonly KubeObject[] } {
  const all = stageObjects(synth(withPassword(props, source)), MANIFEST_STAGES);
  const secrets = all.filter((o) => o.kind === "Secret");
  // Left-out objects stay as null, so every file keeps its apply-order prefix either way.
  const objects = source.kind === "none" ? all.map((o) => (o.kind === "Secret" ? null : o)) : all;
  return { objects, secrets };
}

/** The one line that says what became of a password Secret. */
export function secretNote(secret: KubeObject, source: PasswordSource): string {
  const name = `Secret "${secret.metadata?.name}"`;
  const data = (secret as { stringData?: Record<string, string> }).stringData ?? {};
  const keys = Object.keys(data).join(", ");
  if (source.kind === "given") return `${name} holds the password from ${source.from}`;
  if (source.kind === "random") {
    return `${name} holds a new random password: apply it to a new broker only (a running broker keeps the password it started with)`;
  }
  return `Left out ${name} (the broker password; keys ${keys}): kubectl apply keeps the one in the cluster; for a new broker add --with-secrets, or give the password with --password-file or ${PASSWORD_ENV}`;
}

/** Adds `files` to DIR/.gitignore (created if missing), each once. */
export async function ignoreFiles(dir: string, files: readonly string[]): Promise<string> {
  const path = join(dir, ".gitignore");
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const have = new Set(text.split("\n").map((l) => l.trim()));
  const add = files.filter((f) => !have.has(f));
  if (add.length > 0) {
    const head = text === ""
      ? "# Kubernetes Secrets with plain-text passwords (deno task manifests): never commit them\n"
      : text.endsWith("\n")
      ? ""
      : "\n";
    await Deno.writeTextFile(path, `${text}${head}${add.join("\n")}\n`);
  }
  return path;
}

/** Parses the task's flags; bad input throws. */
export function parseManifestsArgs(args: readonly string[]) {
  return parseArgs({
    args: [...args],
    options: {
      ...CONFIG_FLAGS,
      out: { type: "string" },
      rules: { type: "boolean" },
      dashboard: { type: "boolean" },
      "with-secrets": { type: "boolean", default: false },
      "password-file": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  }).values;
}

if (import.meta.main) {
  await main(async () => {
    const values = parseManifestsArgs(Deno.args);
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const outputs = (["out", "rules", "dashboard"] as const).filter((k) => values[k] !== undefined);
    if (outputs.length > 1) {
      throw new UsageError(`Cannot combine ${outputs.map((k) => `--${k}`).join(" and ")}`);
    }
    if (values.rules || values.dashboard) {
      const synthesized = synth(propsFromFlags(values));
      if (synthesized.config.mode !== "queue") {
        throw new UsageError(
          `Invalid "--${
            values.rules ? "rules" : "dashboard"
          }": static mode has no queue or workers to watch`,
        );
      }
      const text = values.rules ? rulesFile(synthesized.config) : dashboardJson();
      console.log(text.trimEnd());
      return 0;
    }
    const source = passwordSource(values, (name) => Deno.env.get(name), Deno.readTextFileSync);
    const { objects, secrets } = manifestObjects(propsFromFlags(values), source);
    for (const secret of secrets) console.error(secretNote(secret, source));
    if (!values.out) {
      console.log(toYaml(objects.filter((o) => o !== null)).trimEnd());
      return 0;
    }
    await Deno.mkdir(values.out, { recursive: true });
    const secretFiles: string[] = [];
    for (const [i, object] of objects.entries()) {
      if (object === null) continue;
      const name = fileName(i, object);
      await Deno.writeTextFile(join(values.out, name), YAML_HEADER + objectYaml(object));
      if (object.kind === "Secret") secretFiles.push(name);
      console.log(join(values.out, name));
    }
    if (secretFiles.length > 0) {
      const gitignore = await ignoreFiles(values.out, secretFiles);
      console.error(
        `Warning: ${
          secretFiles.map((f) => join(values.out!, f)).join(", ")
        } holds a password in plain text; ${gitignore} lists it: keep it out of version control`,
      );
    }
    return 0;
  }, FLAG_FOR_FIELD);
}
