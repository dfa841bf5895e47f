/**
 * The local Kind cluster: its config (one control-plane node and three workers by default)
 * and the `kind` command lines that create, delete and load images into it. Commands are
 * pure argv arrays; tasks/cluster.ts runs them.
 *
 * @module
 */
import { Problems } from "./problems.ts";

/** Kind's cluster config (kind.x-k8s.io/v1alpha4), as much of it as TTG uses. */
export interface KindCluster {
  readonly kind: "Cluster";
  readonly apiVersion: "kind.x-k8s.io/v1alpha4";
  readonly name: string;
  readonly nodes: readonly { readonly role: "control-plane" | "worker" }[];
}

/** Props of {@linkcode kindCluster}. */
export interface KindClusterProps {
  /** Cluster name (kubectl context `kind-<name>`). @default "ttg" */
  readonly name?: string;
  /** Worker nodes beside the control plane. @default 3 */
  readonly workerNodes?: number;
}

/** Default cluster name. */
export const DEFAULT_CLUSTER = "ttg";

/**
 * The cluster config; throws a `SynthError`-style `Error` naming the bad field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kindCluster } from "./kind.ts";
 * const cluster = kindCluster();
 * assert.equal(cluster.nodes.length, 4);
 * assert.equal(cluster.nodes[0]?.role, "control-plane");
 * ```
 */
export function kindCluster(props: KindClusterProps = {}): KindCluster {
  const problems = new Problems();
  const name = props.name ?? DEFAULT_CLUSTER;
  const workerNodes = props.workerNodes ?? 3;
  if (!/^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$/.test(name)) {
    problems.add("cluster.name", `expected a DNS label of at most 32 characters, got "${name}"`);
  }
  if (!Number.isInteger(workerNodes) || workerNodes < 0 || workerNodes > 10) {
    problems.add("cluster.workerNodes", `expected an integer from 0 to 10, got ${workerNodes}`);
  }
  if (problems.list.length > 0) {
    throw new RangeError(problems.list.map((p) => `Invalid "${p.field}": ${p.message}`).join("\n"));
  }
  return {
    kind: "Cluster",
    apiVersion: "kind.x-k8s.io/v1alpha4",
    name,
    nodes: [
      { role: "control-plane" },
      ...Array.from({ length: workerNodes }, () => ({ role: "worker" as const })),
    ],
  };
}

/** `kind create cluster`, reading the config from stdin (`--config=-`). */
export function kindCreateArgv(name: string, waitSeconds = 120): string[] {
  return ["kind", "create", "cluster", "--name", name, "--config=-", `--wait=${waitSeconds}s`];
}

/** `kind delete cluster`. */
export function kindDeleteArgv(name: string): string[] {
  return ["kind", "delete", "cluster", "--name", name];
}

/** `kind get clusters` (one name per line). */
export function kindGetClustersArgv(): string[] {
  return ["kind", "get", "clusters"];
}

/** `kind load docker-image`: copies a local image onto every node. */
export function kindLoadImageArgv(image: string, name: string): string[] {
  return ["kind", "load", "docker-image", image, "--name", name];
}
