/**
 * What the Redis and RabbitMQ StatefulSets share: a non-root pod security context and the
 * labelled data volume claim (its PVC keeps the labels, so cleanup finds it).
 *
 * @module
 */
import type { IStatefulSetSpec } from "kubernetes-models/apps/v1";
import type { IPodSecurityContext } from "kubernetes-models/v1";
import type { BrokerConfig, DeploymentConfig } from "./config.ts";
import { type AppName, labels } from "./labels.ts";

/** Pod security of a broker running as its image's own non-root user. */
export function brokerPodSecurity(uid: number): IPodSecurityContext {
  return {
    fsGroup: uid,
    runAsGroup: uid,
    runAsNonRoot: true,
    runAsUser: uid,
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/** The `data` volume claim template of a broker. */
export function brokerVolumeClaim(
  config: DeploymentConfig,
  broker: BrokerConfig,
  app: AppName,
): NonNullable<IStatefulSetSpec["volumeClaimTemplates"]>[number] {
  return {
    metadata: { name: "data", labels: labels(config, "broker", app) },
    spec: {
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: broker.storage } },
      ...(broker.storageClassName === undefined
        ? {}
        : { storageClassName: broker.storageClassName }),
    },
  };
}
