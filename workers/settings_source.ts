/**
 * Where a setting comes from: its flag, then each of its environment variables in order (TTG's
 * names, then the predecessor's), then its default; each value read and checked once, a bad one
 * a {@linkcode ConfigError} naming the flag or variable and the value.
 *
 * @module
 */
import { ConfigError } from "../errors.ts";

/** Flag values as commander hands them over (strings, booleans or absent). */
export type FlagValues = Readonly<Record<string, string | boolean | undefined>>;
/** Reads one environment variable. */
export type EnvReader = (name: string) => string | undefined;

/** The process environment (needs `--allow-env`); the one place TTG reads it. */
export const processEnv: EnvReader = (name) => {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
};

export interface Source {
  readonly name: string;
  readonly raw: string;
}

export class Resolver {
  readonly #flags: FlagValues;
  readonly #env: EnvReader;
  constructor(flags: FlagValues, env: EnvReader) {
    this.#flags = flags;
    this.#env = env;
  }
  /** First of: the flag, then each env variable in order; undefined when none is set. */
  source(flag: string | null, envNames: readonly string[]): Source | undefined {
    if (flag) {
      const key = flag.replace(/^--/, "").replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
      const value = this.#flags[key];
      if (typeof value === "string") return { name: flag, raw: value };
      if (value === true) return { name: flag, raw: "true" };
    }
    for (const name of envNames) {
      const raw = this.#env(name);
      if (raw !== undefined && raw !== "") return { name, raw };
    }
    return undefined;
  }
  string(flag: string | null, envNames: readonly string[], fallback: string): string {
    return this.source(flag, envNames)?.raw ?? fallback;
  }
  number(
    flag: string | null,
    envNames: readonly string[],
    fallback: number,
    range: { min: number; max: number; integer?: boolean; scale?: number },
  ): number {
    const src = this.source(flag, envNames);
    if (!src) return fallback;
    const value = Number(src.raw.trim());
    const kind = range.integer ? "a whole number" : "a number";
    if (
      src.raw.trim() === "" || !Number.isFinite(value) ||
      (range.integer && !Number.isInteger(value)) || value < range.min || value > range.max
    ) {
      throw ConfigError.invalid(src.name, src.raw, `${kind} from ${range.min} to ${range.max}`);
    }
    return value * (range.scale ?? 1);
  }
  boolean(flag: string | null, envNames: readonly string[], fallback: boolean): boolean {
    const src = this.source(flag, envNames);
    if (!src) return fallback;
    const value = src.raw.trim().toLowerCase();
    if (["true", "1", "yes", "on"].includes(value)) return true;
    if (["false", "0", "no", "off"].includes(value)) return false;
    throw ConfigError.invalid(src.name, src.raw, "true or false");
  }
  choice<T extends string>(
    flag: string | null,
    envNames: readonly string[],
    fallback: T,
    choices: readonly T[],
    normalize: (raw: string) => string = (s) => s.trim().toLowerCase(),
  ): T {
    const src = this.source(flag, envNames);
    if (!src) return fallback;
    const value = normalize(src.raw) as T;
    if (!choices.includes(value)) {
      throw ConfigError.invalid(src.name, src.raw, `one of ${choices.join(", ")}`);
    }
    return value;
  }
}
