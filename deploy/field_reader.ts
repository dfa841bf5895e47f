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
