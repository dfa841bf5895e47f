/**
 * Stable text of generated data: keys sorted at every level, so two outputs differ only where
 * the data does; YAML in version 1.1 quoting (as Kubernetes and Prometheus parse it: `"on"`
 * and `"yes"` stay strings), no line folding.
 *
 * @module
 */
import { stringify } from "yaml";

/**
 * A copy of a value with the keys of every object sorted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sortKeys } from "./yaml.ts";
 * assert.equal(
 *   JSON.stringify(sortKeys({ b: 1, a: [{ d: 2, c: 3 }] })),
 *   '{"a":[{"c":3,"d":2}],"b":1}',
 * );
 * ```
 */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return Object.fromEntries(entries.map(([k, v]) => [k, sortKeys(v)]));
  }
  return value;
}

/**
 * One YAML document of plain data, keys sorted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { yamlText } from "./yaml.ts";
 * assert.equal(yamlText({ b: "on", a: 1 }), 'a: 1\nb: "on"\n');
 * ```
 */
export function yamlText(value: unknown): string {
  return stringify(sortKeys(value), { version: "1.1", lineWidth: 0 });
}
