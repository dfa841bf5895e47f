/**
 * Reads one props object field by field: applies the default of an absent field, records a
 * problem naming the dotted field of a bad one (and keeps the default, so checking goes on),
 * and flags unknown fields (a typo such as `worker:` is an error, not a silent default).
 *
 * @module
 */
import type { Problems } from "./problems.ts";
import { parseQuantity } from "./quantity.ts";

/** Known field names of each props object, by dotted path (`""` is the top level). */
export type KnownFields = Readonly<Record<string, readonly string[]>>;

/** A DNS label: lower-case letters, digits and '-' (a namespace, a RuntimeClass). */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_LABEL_EXPECTED = "a DNS label (lower-case letters, digits and '-', at most 63)";

/** A label name: an optional DNS-subdomain prefix and `/`, then at most 63 characters. */
const LABEL_NAME =
  /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** A label value: empty, or at most 63 characters starting and ending alphanumeric. */
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** Credentials that must never be generated or accepted. */
export const FORBIDDEN_PASSWORDS: readonly string[] = ["guest", "password", "admin", "redis"];

/** CPU and memory requests and limits, resolved. */
export interface Resources {
  readonly cpuRequest: string;
  readonly cpuLimit: string;
  readonly memoryRequest: string;
  readonly memoryLimit: string;
}

/** Reads and checks fields of one props object, recording problems under dotted paths. */
export class FieldReader {
  readonly #problems: Problems;
  readonly #path: string;
  readonly #data: Readonly<Record<string, unknown>>;
  readonly #known: KnownFields;

  /** Reads `data` found at `path`; fields not listed in `known[path]` are problems. */
  constructor(problems: Problems, path: string, data: unknown, known: KnownFields) {
    this.#problems = problems;
    this.#path = path;
    this.#known = known;
    if (data !== undefined && (typeof data !== "object" || data === null || Array.isArray(data))) {
      problems.add(path, `expected an object, got ${show(data)}`);
      data = undefined;
    }
    this.#data = (data ?? {}) as Record<string, unknown>;
    const fields = known[path] ?? [];
    for (const key of Object.keys(this.#data)) {
      if (!fields.includes(key)) {
        this.#problems.add(this.field(key), `unknown field (expected one of ${fields.join(", ")})`);
      }
    }
  }

  field(key: string): string {
    return this.#path ? `${this.#path}.${key}` : key;
  }

  child(key: string): FieldReader {
    return new FieldReader(this.#problems, this.field(key), this.#data[key], this.#known);
  }

  problem(key: string, message: string): void {
    this.#problems.add(this.field(key), message);
  }

  has(key: string): boolean {
    return this.#data[key] !== undefined;
  }

  /** The value as given, shown for a message (`"pods"`, `3`); for a field that is set. */
  shown(key: string): string {
    return show(this.#data[key]);
  }

  int(key: string, fallback: number, min: number, max: number): number {
    const value = this.#data[key];
    if (value === undefined) return fallback;
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      this.problem(key, `expected an integer from ${min} to ${max}, got ${show(value)}`);
      return fallback;
    }
    return value;
  }

  optionalInt(key: string, min: number, max: number): number | undefined {
    return this.has(key) ? this.int(key, min, min, max) : undefined;
  }

  number(key: string, fallback: number, min: number, max: number): number {
    const value = this.#data[key];
    if (value === undefined) return fallback;
    if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
      this.problem(key, `expected a number from ${min} to ${max}, got ${show(value)}`);
      return fallback;
    }
    return value;
  }

  optionalNumber(key: string, min: number, max: number): number | undefined {
    return this.has(key) ? this.number(key, min, min, max) : undefined;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.#data[key];
    if (value === undefined) return fallback;
    if (typeof value !== "boolean") {
      this.problem(key, `expected true or false, got ${show(value)}`);
      return fallback;
    }
    return value;
  }

  choice<T extends string>(key: string, fallback: T, choices: readonly T[]): T {
    const value = this.#data[key];
    if (value === undefined) return fallback;
    if (typeof value !== "string" || !(choices as readonly string[]).includes(value)) {
      this.problem(key, `expected one of ${choices.join(", ")}, got ${show(value)}`);
      return fallback;
    }
    return value as T;
  }

  string(key: string, fallback: string, pattern: RegExp, expected: string): string {
    return this.optionalString(key, pattern, expected) ?? fallback;
  }

  optionalString(key: string, pattern: RegExp, expected: string): string | undefined {
    const value = this.#data[key];
    if (value === undefined) return undefined;
    if (typeof value !== "string" || !pattern.test(value)) {
      this.problem(key, `expected ${expected}, got ${show(value)}`);
      return undefined;
    }
    return value;
  }

  /** A list of 1 to `max` strings each matching `pattern`, or undefined when absent. */
  optionalStringList(
    key: string,
    max: number,
    pattern: RegExp,
    expected: string,
  ): readonly string[] | undefined {
    const value = this.#data[key];
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || value.length === 0 || value.length > max) {
      this.problem(key, `expected a list of 1 to ${max} ${expected}, got ${show(value)}`);
      return undefined;
    }
    const bad = value.findIndex((v) => typeof v !== "string" || !pattern.test(v));
    if (bad >= 0) {
      this.problem(`${key}[${bad}]`, `expected ${expected}, got ${show(value[bad])}`);
      return undefined;
    }
    return value;
  }

  dnsLabel(key: string, fallback: string): string {
    return this.optionalDnsLabel(key) ?? fallback;
  }

  optionalDnsLabel(key: string): string | undefined {
    return this.optionalString(key, DNS_LABEL, DNS_LABEL_EXPECTED);
  }

  quantity(key: string, fallback: string, kind: "cpu" | "memory"): string {
    const value = this.#data[key];
    if (value === undefined) return fallback;
    if (typeof value !== "string" || parseQuantity(value) === undefined) {
      const example = kind === "cpu" ? '"500m" or "1"' : '"256Mi" or "1Gi"';
      this.problem(key, `expected a Kubernetes quantity such as ${example}, got ${show(value)}`);
      return fallback;
    }
    return value;
  }

  resources(key: string, fallback: Resources): Resources {
    const r = this.child(key);
    const resources = {
      cpuRequest: r.quantity("cpuRequest", fallback.cpuRequest, "cpu"),
      cpuLimit: r.quantity("cpuLimit", fallback.cpuLimit, "cpu"),
      memoryRequest: r.quantity("memoryRequest", fallback.memoryRequest, "memory"),
      memoryLimit: r.quantity("memoryLimit", fallback.memoryLimit, "memory"),
    };
    for (const what of ["cpu", "memory"] as const) {
      const request = resources[`${what}Request`];
      const limit = resources[`${what}Limit`];
      if ((parseQuantity(request) ?? 0) > (parseQuantity(limit) ?? Infinity)) {
        r.problem(`${what}Request`, `expected at most the limit "${limit}", got "${request}"`);
      }
    }
    return resources;
  }

  /**
   * A map of Kubernetes labels (`{ release: "prom" }`): each key a label name with an optional
   * DNS prefix, each value at most 63 characters; `reserved` keys are refused (they are ours).
   */
  labelMap(key: string, reserved: readonly string[] = []): Readonly<Record<string, string>> {
    const value = this.#data[key];
    if (value === undefined) return {};
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.problem(key, `expected an object of label names and values, got ${show(value)}`);
      return {};
    }
    const map: Record<string, string> = {};
    for (const [name, text] of Object.entries(value)) {
      const field = `${key}.${name}`;
      if (!LABEL_NAME.test(name) || name.split("/")[0]!.length > 253) {
        this.problem(field, "expected a label name such as release or example.com/team");
      } else if (reserved.includes(name)) {
        this.problem(field, "expected a label TTG does not set itself");
      } else if (typeof text !== "string" || !LABEL_VALUE.test(text)) {
        this.problem(field, `expected a label value (at most 63 characters), got ${show(text)}`);
      } else {
        map[name] = text;
      }
    }
    return map;
  }

  password(key: string, random: () => string): string {
    const given = this.optionalString(
      key,
      /^[\x21-\x7e]{12,128}$/,
      "12 to 128 printable characters",
    );
    if (given !== undefined && FORBIDDEN_PASSWORDS.includes(given.toLowerCase())) {
      this.problem(key, "expected a non-default password");
    }
    return given ?? random();
  }
}

/** A value as quoted in problem messages. */
export function show(value: unknown): string {
  if (typeof value === "string") return `"${value}"`;
  if (typeof value === "object" && value !== null) {
    return Array.isArray(value) ? "an array" : "an object";
  }
  return String(value);
}
