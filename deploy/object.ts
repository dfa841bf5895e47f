/**
 * What synth needs of a generated object: its type meta, metadata and a `validate()` that
 * throws on a schema error. kubernetes-models classes fit as they are; KEDA's custom resources
 * (deploy/keda.ts) implement it themselves.
 *
 * @module
 */

/** A Kubernetes object ready to be validated and written. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly labels?: { readonly [key: string]: string };
  };
  /** Throws when the object breaks its schema. */
  validate(): void;
}

/** `Kind "name"`, as objects are named in messages. */
export function describe(object: KubeObject): string {
  return `${object.kind} "${object.metadata?.name ?? "?"}"`;
}
