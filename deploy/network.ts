/**
 * The namespace and the NetworkPolicy that lets only TTG pods of this instance (and the KEDA
 * operator, when it scales on the broker's queues) reach the broker's ports.
 *
 * @module
 */
import { type INetworkPolicyPort, NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { Namespace } from "kubernetes-models/v1";
import type { DeploymentConfig } from "./config.ts";
import { LABEL, labels, names, PART_OF, selectorLabels } from "./labels.ts";
import { amqpPort, managementPort, PORTS } from "./pod.ts";

/**
 * The namespace, labelled as ours; none for `default` or a namespace that already exists and is
 * not ours (`createNamespace: false`): cleanup deletes the namespaces that carry our labels.
 */
export function namespaceObjects(config: DeploymentConfig): Namespace[] {
  if (!config.createNamespace) return [];
  return [
    new Namespace({ metadata: { name: config.namespace, labels: labels(config, "namespace") } }),
  ];
}

/**
 * Ingress to the broker pods: TTG pods of this instance, plus the KEDA operator when it reads
 * the broker (queue mode; a fleet's ScaledObject reads Prometheus instead).
 */
export function brokerNetworkPolicy(config: DeploymentConfig): NetworkPolicy {
  const tcp = (port: number): INetworkPolicyPort => ({ port, protocol: "TCP" });
  const ports = config.backend === "redis"
    ? [tcp(PORTS.redis)]
    : [tcp(amqpPort(config)), tcp(managementPort(config))];
  const ttgPods = {
    podSelector: { matchLabels: { [LABEL.partOf]: PART_OF, [LABEL.instance]: config.name } },
  };
  const kedaOperator = {
    namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": config.keda.namespace } },
  };
  return new NetworkPolicy({
    metadata: {
      name: names(config).networkPolicy,
      namespace: config.namespace,
      labels: labels(config, "network-policy"),
    },
    spec: {
      podSelector: { matchLabels: selectorLabels(config, "broker", config.backend) },
      policyTypes: ["Ingress"],
      ingress: [{
        from: config.keda.enabled && config.mode === "queue" ? [ttgPods, kedaOperator] : [ttgPods],
        ports,
      }],
    },
  });
}
