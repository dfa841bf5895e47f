/**
 * What the custom resources TTG generates share (KEDA's in deploy/keda.ts, the Prometheus
 * Operator's in deploy/monitoring.ts): they are not in kubernetes-models, so each is a small
 * typed class whose `validate()` collects its problems with these helpers and throws once.
 *
 * @module
 */

/** Object metadata of a custom resource. */
export interface CustomResourceMetadata {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** A DNS subdomain (object names). */
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Problems of a custom resource's name and namespace. */
export function metadataProblems(metadata: CustomResourceMetadata): string[] {
  const problems: string[] = [];
  if (!DNS_SUBDOMAIN.test(metadata.name)) {
    problems.push(`metadata.name "${metadata.name}" is not a DNS subdomain`);
  }
  if (!DNS_SUBDOMAIN.test(metadata.namespace)) {
    problems.push(`metadata.namespace "${metadata.namespace}" is not a DNS name`);
  }
  return problems;
}

/** `spec.<field> must be a whole number` for each count (replicas, intervals) that is not one. */
export function wholeNumberProblems(counts: Readonly<Record<string, number>>): string[] {
  return Object.entries(counts).flatMap(([field, value]) =>
    Number.isInteger(value) && value >= 0
      ? []
      : [`spec.${field} must be a whole number, got ${value}`]
  );
}

/** Throws `<kind> is invalid: <problem>; <problem>` when there is any. */
export function throwIfAny(kind: string, problems: readonly string[]): void {
  if (problems.length > 0) throw new Error(`${kind} is invalid: ${problems.join("; ")}`);
}
