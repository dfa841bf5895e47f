/**
 * The `kubectl` command lines of the deploy, demo and cleanup tasks, as pure argv arrays
 * (tested exactly; the tasks run them). Manifests go in on stdin (`-f -`); objects are found by
 * name or by the label selectors of deploy/labels.ts, never by a broad match.
 *
 * @module
 */
/** Kinds TTG generates, as kubectl resource names, in deletion order (workloads first). */
export const OWNED_KINDS: readonly string[] = [
  "jobs.batch",
  "pods",
  "deployments.apps",
  "statefulsets.apps",
  "services",
  "networkpolicies.networking.k8s.io",
  "configmaps",
  "secrets",
  "persistentvolumeclaims",
];

/** KEDA's kinds (only present where KEDA is installed). */
export const KEDA_KINDS: readonly string[] = [
  "scaledjobs.keda.sh",
  "scaledobjects.keda.sh",
  "triggerauthentications.keda.sh",
];

/** The Prometheus Operator's kinds (only present where the operator's CRDs are installed). */
export const MONITORING_KINDS: readonly string[] = [
  "servicemonitors.monitoring.coreos.com",
  "podmonitors.monitoring.coreos.com",
  "prometheusrules.monitoring.coreos.com",
];

/** `kubectl apply -f -`: the YAML goes in on stdin. */
export function applyArgv(): string[] {
  return ["kubectl", "apply", "-f", "-"];
}

/** The current kubectl context's name. */
export function currentContextArgv(): string[] {
  return ["kubectl", "config", "current-context"];
}

/** A quick reachability check of the current context's API server. */
export function readyzArgv(timeoutSeconds = 5): string[] {
  return ["kubectl", "get", "--raw", "/readyz", `--request-timeout=${timeoutSeconds}s`];
}

/** Whether KEDA's CRDs are installed (prints resource names, empty when not). */
export function kedaResourcesArgv(): string[] {
  return ["kubectl", "api-resources", "--api-group=keda.sh", "--output=name"];
}

/** Whether the Prometheus Operator's CRDs are installed (prints resource names, empty when not). */
export function monitoringResourcesArgv(): string[] {
  return ["kubectl", "api-resources", "--api-group=monitoring.coreos.com", "--output=name"];
}

/** Waits until a StatefulSet's pods (or a Deployment's, with `kind`) are ready. */
export function rolloutStatusArgv(
  name: string,
  namespace: string,
  timeoutSeconds: number,
  kind: "statefulset" | "deployment" = "statefulset",
): string[] {
  return [
    "kubectl",
    "rollout",
    "status",
    `${kind}/${name}`,
    `--namespace=${namespace}`,
    `--timeout=${timeoutSeconds}s`,
  ];
}

/** Waits until a Job has completed. */
export function waitJobCompleteArgv(
  job: string,
  namespace: string,
  timeoutSeconds: number,
): string[] {
  return [
    "kubectl",
    "wait",
    "--for=condition=complete",
    `job/${job}`,
    `--namespace=${namespace}`,
    `--timeout=${timeoutSeconds}s`,
  ];
}

/** Waits until every pod matching a selector has succeeded. */
export function waitPodsSucceededArgv(
  selector: string,
  namespace: string,
  timeoutSeconds: number,
): string[] {
  return [
    "kubectl",
    "wait",
    "--for=jsonpath={.status.phase}=Succeeded",
    "pods",
    `--selector=${selector}`,
    `--namespace=${namespace}`,
    `--timeout=${timeoutSeconds}s`,
  ];
}

/** Prints the logs of a Job's pod. */
export function logsArgv(job: string, namespace: string): string[] {
  return ["kubectl", "logs", `job/${job}`, `--namespace=${namespace}`];
}

/** Prints the logs of every pod matching a selector, each line prefixed with its pod. */
export function logsBySelectorArgv(selector: string, namespace: string): string[] {
  return [
    "kubectl",
    "logs",
    `--selector=${selector}`,
    `--namespace=${namespace}`,
    "--prefix",
    "--tail=-1",
  ];
}

/** Names of the running pods matching a selector, space separated. */
export function podNamesArgv(selector: string, namespace: string): string[] {
  return [
    "kubectl",
    "get",
    "pods",
    `--selector=${selector}`,
    `--namespace=${namespace}`,
    "--field-selector=status.phase=Running",
    "--output=jsonpath={.items[*].metadata.name}",
  ];
}

/** Deletes one Job (and its pods) by name, if it exists, and waits until it is gone. */
export function deleteJobArgv(job: string, namespace: string): string[] {
  return [
    "kubectl",
    "delete",
    "job",
    job,
    `--namespace=${namespace}`,
    "--ignore-not-found",
    "--wait=true",
  ];
}

/** Kills one pod at once (no grace period): the fault of the fault demo. */
export function killPodArgv(pod: string, namespace: string): string[] {
  return [
    "kubectl",
    "delete",
    "pod",
    pod,
    `--namespace=${namespace}`,
    "--grace-period=0",
    "--force",
  ];
}

/** The data of a Secret (base64 values as JSON), or nothing when it does not exist. */
export function getSecretDataArgv(secret: string, namespace: string): string[] {
  return [
    "kubectl",
    "get",
    "secret",
    secret,
    `--namespace=${namespace}`,
    "--ignore-not-found",
    "--output=jsonpath={.data}",
  ];
}

/** The labels of a namespace as JSON, or nothing when it does not exist. */
export function getNamespaceLabelsArgv(namespace: string): string[] {
  return [
    "kubectl",
    "get",
    "namespace",
    namespace,
    "--ignore-not-found",
    "--output=jsonpath={.metadata.labels}",
  ];
}

/** Deletes the objects of some kinds that match a selector, in one namespace or in all. */
export function deleteBySelectorArgv(
  kinds: readonly string[],
  selector: string,
  namespace: string | "all",
): string[] {
  return [
    "kubectl",
    "delete",
    kinds.join(","),
    `--selector=${selector}`,
    namespace === "all" ? "--all-namespaces" : `--namespace=${namespace}`,
    "--ignore-not-found",
    "--wait=true",
  ];
}

/** Lists (kind, namespace, name) of the objects of some kinds that match a selector. */
export function listBySelectorArgv(kinds: readonly string[], selector: string): string[] {
  return [
    "kubectl",
    "get",
    kinds.join(","),
    `--selector=${selector}`,
    "--all-namespaces",
    "--ignore-not-found",
    "--output=custom-columns=KIND:.kind,NAMESPACE:.metadata.namespace,NAME:.metadata.name",
  ];
}

/** Deletes the namespaces TTG created (labelled as ours); `default` never carries our labels. */
export function deleteNamespacesArgv(selector: string): string[] {
  return [
    "kubectl",
    "delete",
    "namespaces",
    `--selector=${selector}`,
    "--ignore-not-found",
    "--wait=true",
  ];
}

/** Forwards `localPort` on this machine to `port` of a Service (until interrupted). */
export function portForwardArgv(
  service: string,
  namespace: string,
  localPort: number,
  port: number,
): string[] {
  return [
    "kubectl",
    "port-forward",
    `service/${service}`,
    `${localPort}:${port}`,
    `--namespace=${namespace}`,
  ];
}

/** Prints one key of a Secret, base64-encoded (decode with `base64 -d`). */
export function secretValueArgv(secret: string, key: string, namespace: string): string[] {
  return [
    "kubectl",
    "get",
    "secret",
    secret,
    `--namespace=${namespace}`,
    `--output=jsonpath={.data.${key}}`,
  ];
}
