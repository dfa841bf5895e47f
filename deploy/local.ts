/**
 * `--target local`: the generated containers as local processes. Each pod a controller would
 * start becomes one process whose argv and environment are taken from the generated object:
 * the image's entrypoint is replaced by a local `ttg` command, Service host names become a
 * local address, Secret references resolve to the generated Secret's value unless an explicit
 * override (the local broker's real credentials) says otherwise, and the downward API and the
 * Job controller's JOB_COMPLETION_INDEX are filled in as Kubernetes would, and paths of the image
 * (the fleet's jobs directory) become local ones. Only the stages of one run are planned
 * (submit, workers, report, and the progress Job a task polls): the exporter and the monitoring
 * objects are `infra`, like the broker, and are not run locally. Pure data; the deploy task
 * runs the processes.
 *
 * @module
 */
import type { IContainer, IEnvVar, IPodSpec } from "kubernetes-models/v1";
import { LABEL } from "./labels.ts";
import type { KubeObject } from "./object.ts";
import { IMAGE_ENTRYPOINT } from "./pod.ts";
import { type Manifest, plain } from "./synth.ts";

/** What a local process stands for. */
export type LocalRole = "submit" | "worker" | "static" | "report";

/** One process to start. */
export interface LocalProcess {
  /** The pod it stands for, e.g. `ttg-worker-0`. */
  readonly name: string;
  readonly role: LocalRole;
  readonly argv: readonly string[];
  /** The container's environment, resolved (the only variables the process gets from it). */
  readonly env: Readonly<Record<string, string>>;
  /** The container's working directory, mapped to a local one; undefined: the runner's. */
  readonly cwd?: string;
}

/**
 * Processes by stage: submit to completion, then the workers together, then the report; the
 * progress Job's process (`ttg status --json`) is run by a task that follows a job.
 */
export interface LocalPlan {
  readonly submit: readonly LocalProcess[];
  readonly workers: readonly LocalProcess[];
  readonly report: readonly LocalProcess[];
  readonly progress: readonly LocalProcess[];
}

/** Options of {@linkcode localPlan}. */
export interface LocalPlanOptions {
  /** What replaces the image's entrypoint, e.g. `["deno", "run", "-A", "workers/cli.ts"]`. */
  readonly entrypoint: readonly string[];
  /**
   * Secret values to use instead of the generated ones, by `"<secret>/<key>"`; `null` leaves
   * the variable unset (a local Redis without a password).
   */
  readonly secretOverrides?: Readonly<Record<string, string | null>>;
  /** Address that Service host names map to. @default "127.0.0.1" */
  readonly localHost?: string;
  /** Value of `spec.nodeName`. @default "local" */
  readonly nodeName?: string;
  /**
   * The metrics port of each process that has one (`TTG_METRICS_PORT`), in place of the
   * generated port: pods each have their own network, local processes share one host.
   * @default the generated port
   */
  readonly metricsPort?: (podName: string) => number;
  /**
   * Directories of the image and the local ones that stand for them (the fleet's jobs directory
   * → the repository): a container's working directory, and an argument that names one exactly,
   * are mapped. @default {}
   */
  readonly paths?: Readonly<Record<string, string>>;
}

interface PodToRun {
  readonly name: string;
  readonly namespace: string;
  readonly spec: IPodSpec;
  readonly extraEnv: Readonly<Record<string, string>>;
  readonly role: LocalRole;
}

const ROLES: readonly LocalRole[] = ["submit", "worker", "static", "report"];

/** The fields of an object's JSON that the mapping reads. */
interface ObjectData {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
  };
  readonly spec?: {
    readonly replicas?: number;
    readonly parallelism?: number;
    readonly completions?: number;
    readonly completionMode?: string;
    readonly template?: { readonly spec?: IPodSpec };
  };
  readonly data?: Readonly<Record<string, string>>;
  readonly stringData?: Readonly<Record<string, string>>;
}

function data(object: KubeObject): ObjectData {
  return plain(object) as ObjectData;
}

function templateSpec(o: ObjectData): IPodSpec {
  const spec = o.spec?.template?.spec;
  if (!spec) {
    throw new TypeError(`Cannot run "${o.metadata?.name}" locally: it has no pod template`);
  }
  return spec;
}

/** The pods a controller object would start. */
function podsOf(object: KubeObject): PodToRun[] {
  const o = data(object);
  const role = o.metadata?.labels?.[LABEL.component] as LocalRole;
  if (!ROLES.includes(role)) return [];
  const name = String(o.metadata?.name);
  const namespace = String(o.metadata?.namespace ?? "default");
  const pod = (podName: string, spec: IPodSpec, extraEnv: Record<string, string> = {}) => ({
    name: podName,
    namespace,
    spec,
    extraEnv,
    role,
  });
  switch (object.kind) {
    case "Pod":
      return [pod(name, o.spec as IPodSpec)];
    case "Deployment":
      return Array.from(
        { length: o.spec?.replicas ?? 1 },
        (_, i) => pod(`${name}-${i}`, templateSpec(o)),
      );
    case "Job": {
      if (o.spec?.completionMode === "Indexed") {
        return Array.from(
          { length: o.spec.completions ?? 1 },
          (_, i) => pod(`${name}-${i}`, templateSpec(o), { JOB_COMPLETION_INDEX: String(i) }),
        );
      }
      const count = o.spec?.parallelism ?? 1;
      return Array.from({ length: count }, (_, i) => pod(`${name}-${i}`, templateSpec(o)));
    }
    default:
      throw new TypeError(
        `Cannot run ${object.kind} "${name}" locally: only Pods, Jobs and Deployments run`,
      );
  }
}

/**
 * Expands Kubernetes `$(VAR)` references to variables defined earlier (`$$(` escapes), as the
 * kubelet does for env values, command and args.
 */
export function expandReferences(text: string, env: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (match, name?: string) => {
    if (match === "$$") return "$";
    return name !== undefined && name in env ? env[name]! : match;
  });
}

/**
 * The processes of the generated objects.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { synth } from "./synth.ts";
 * import { localPlan } from "./local.ts";
 * const { manifests } = synth({ backend: "redis" }, { randomSecret: () => "s".repeat(32) });
 * const plan = localPlan(manifests, {
 *   entrypoint: ["deno", "run", "-A", "workers/cli.ts"],
 *   secretOverrides: { "ttg-redis-auth/password": null },
 * });
 * assert.equal(plan.workers.length, 3);
 * assert.equal(plan.workers[0]?.env.REDIS_HOST, "127.0.0.1");
 * assert.ok(!("REDIS_PASSWORD" in plan.workers[0]!.env));
 * ```
 */
export function localPlan(manifests: readonly Manifest[], options: LocalPlanOptions): LocalPlan {
  const objects = manifests.map((m) => m.object);
  const secrets = new Map<string, Record<string, string>>();
  const hosts = new Set<string>();
  for (const object of objects) {
    const o = data(object);
    const name = String(o.metadata?.name);
    const ns = String(o.metadata?.namespace ?? "default");
    if (object.kind === "Secret") {
      const decoded = Object.fromEntries(
        Object.entries((o.data ?? {}) as Record<string, string>).map(([k, v]) => [k, atob(v)]),
      );
      secrets.set(`${ns}/${name}`, { ...decoded, ...o.stringData });
    }
    if (object.kind === "Service") {
      for (
        const host of [
          name,
          `${name}.${ns}`,
          `${name}.${ns}.svc`,
          `${name}.${ns}.svc.cluster.local`,
        ]
      ) {
        hosts.add(host);
      }
    }
  }
  const localHost = options.localHost ?? "127.0.0.1";
  const overrides = options.secretOverrides ?? {};
  const mapHost = (value: string): string => {
    if (hosts.has(value)) return localHost;
    const [host, port] = value.split(":");
    return port !== undefined && hosts.has(host!) && /^\d+$/.test(port)
      ? `${localHost}:${port}`
      : value;
  };

  const paths = options.paths ?? {};
  const mapPath = (value: string): string => Object.hasOwn(paths, value) ? paths[value]! : value;

  const envOf = (pod: PodToRun, container: IContainer): Record<string, string> => {
    const env: Record<string, string> = {};
    for (const variable of (container.env ?? []) as IEnvVar[]) {
      const value = resolveVariable(pod, variable);
      if (value !== null) env[variable.name] = mapHost(expandReferences(value, env));
    }
    if (options.metricsPort && "TTG_METRICS_PORT" in env) {
      env.TTG_METRICS_PORT = String(options.metricsPort(pod.name));
    }
    return { ...env, ...pod.extraEnv };
  };
  const resolveVariable = (pod: PodToRun, variable: IEnvVar): string | null => {
    if (variable.value !== undefined) return variable.value;
    const secretRef = variable.valueFrom?.secretKeyRef;
    if (secretRef) {
      const key = `${secretRef.name}/${secretRef.key}`;
      if (key in overrides) return overrides[key] ?? null;
      const value = secrets.get(`${pod.namespace}/${secretRef.name}`)?.[secretRef.key];
      if (value === undefined) {
        throw new TypeError(
          `Cannot resolve ${variable.name} of "${pod.name}": Secret key "${key}" is not generated`,
        );
      }
      return value;
    }
    const fieldPath = variable.valueFrom?.fieldRef?.fieldPath;
    if (fieldPath) {
      const fields: Record<string, string> = {
        "metadata.name": pod.name,
        "metadata.namespace": pod.namespace,
        "spec.nodeName": options.nodeName ?? "local",
        "status.podIP": localHost,
      };
      const value = fields[fieldPath];
      if (value === undefined) {
        throw new TypeError(
          `Cannot resolve ${variable.name} of "${pod.name}": field "${fieldPath}"`,
        );
      }
      return value;
    }
    throw new TypeError(`Cannot resolve ${variable.name} of "${pod.name}": unsupported source`);
  };

  const toProcess = (pod: PodToRun): LocalProcess => {
    const container = pod.spec.containers[0];
    if (!container || pod.spec.containers.length !== 1) {
      throw new TypeError(`Cannot run "${pod.name}" locally: expected one container`);
    }
    const env = envOf(pod, container);
    const command = container.command ?? [...IMAGE_ENTRYPOINT];
    const mapped = command.length === IMAGE_ENTRYPOINT.length &&
        command.every((c, i) => c === IMAGE_ENTRYPOINT[i])
      ? [...options.entrypoint]
      : command.map((c) => expandReferences(c, env));
    const args = (container.args ?? []).map((a) => mapPath(expandReferences(a, env)));
    return {
      name: pod.name,
      role: pod.role,
      argv: [...mapped, ...args],
      env,
      ...(container.workingDir === undefined ? {} : { cwd: mapPath(container.workingDir) }),
    };
  };

  const processes = (stages: readonly Manifest["stage"][]) =>
    manifests.filter((m) => stages.includes(m.stage)).flatMap((m) => podsOf(m.object)).map(
      toProcess,
    );
  return {
    submit: processes(["submit"]),
    workers: processes(["workers"]),
    report: processes(["report"]),
    progress: processes(["progress"]),
  };
}
