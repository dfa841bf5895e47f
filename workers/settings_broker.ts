/**
 * The broker settings: which backend (named, or chosen by the broker URL's scheme), its URL (or
 * host-and-port variables, with default credentials only on localhost), and TLS files (read and
 * checked, only with a rediss:// or amqps:// URL).
 *
 * @module
 */
import { ConfigError, redactUrl } from "../errors.ts";
import type { Resolver, Source } from "./settings_source.ts";

/** Backends `ttg` can use. */
export const BACKENDS = ["sqlite", "redis", "rabbitmq"] as const;
/** One of {@linkcode BACKENDS}. */
export type Backend = typeof BACKENDS[number];

/** RabbitMQ queue types `--rabbitmq-queue-type` accepts. */
export const QUEUE_TYPES = ["classic", "quorum"] as const;
/** One of {@linkcode QUEUE_TYPES}. */
export type QueueType = typeof QUEUE_TYPES[number];

/** Paths of the PEM files for TLS to the broker; "" when unset. */
export interface TlsFiles {
  /** CA bundle that signed the broker's certificate (`--tls-ca`, env TTG_TLS_CA_FILE). */
  readonly ca: string;
  /** Client certificate (`--tls-cert`, env TTG_TLS_CERT_FILE). */
  readonly cert: string;
  /** Client certificate's key (`--tls-key`, env TTG_TLS_KEY_FILE). */
  readonly key: string;
}

/** PEM contents of {@linkcode TlsFiles}, only those that were given. */
export interface TlsPem {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

/** True for loopback host names, where default credentials are acceptable. */
export function isLocalHost(host: string): boolean {
  return LOCAL_HOSTS.has(host.toLowerCase());
}

/** The backend each broker URL scheme names. */
const SCHEME_BACKENDS: Readonly<Record<string, Backend>> = {
  "redis:": "redis",
  "rediss:": "redis",
  "amqp:": "rabbitmq",
  "amqps:": "rabbitmq",
};

/** The URL's scheme with its colon (`"redis:"`), or "" when it is not a URL. */
function schemeOf(raw: string): string {
  try {
    return new URL(raw).protocol;
  } catch {
    return "";
  }
}

/**
 * The backend: the one named (`--backend`, TTG_BACKEND, QUEUE_BACKEND), else the one the broker
 * URL's scheme names (`--broker-url`, TTG_BROKER_URL, then REDIS_URL or AMQP_URL/RABBITMQ_URL),
 * else sqlite. A named backend that disagrees with the `--broker-url` or TTG_BROKER_URL given is
 * a ConfigError naming both, as is a REDIS_URL beside an AMQP_URL with no backend named.
 */
export function backendOf(r: Resolver): Backend {
  const named = r.source("--backend", ["TTG_BACKEND", "QUEUE_BACKEND"]);
  const url = r.source("--broker-url", ["TTG_BROKER_URL"]);
  const scheme = url ? schemeOf(url.raw) : "";
  const ofUrl = SCHEME_BACKENDS[scheme];
  if (named) {
    const backend = r.choice("--backend", ["TTG_BACKEND", "QUEUE_BACKEND"], "sqlite", BACKENDS);
    if (url && (backend === "sqlite" || (ofUrl !== undefined && ofUrl !== backend))) {
      const why = ofUrl
        ? `${
          scheme.startsWith("a") ? "an" : "a"
        } ${scheme}// URL is for backend ${ofUrl}, but ${named.name} is "${named.raw}"`
        : `${named.name} "${named.raw}" takes no broker URL`;
      throw new ConfigError(url.name, `Invalid ${url.name} "${redactUrl(url.raw)}": ${why}`);
    }
    return backend; // a URL that is no broker URL is refused by brokerUrl() below
  }
  if (url) {
    if (ofUrl) return ofUrl;
    throw ConfigError.invalid(
      url.name,
      redactUrl(url.raw),
      "a URL starting with redis://, rediss://, amqp:// or amqps://",
    );
  }
  const redis = r.source(null, ["REDIS_URL"]);
  const amqp = r.source(null, ["AMQP_URL", "RABBITMQ_URL"]);
  if (redis && amqp) {
    throw new ConfigError(
      "--backend",
      `Missing --backend: ${redis.name} and ${amqp.name} are both set, so the URL cannot choose the broker`,
    );
  }
  return redis ? "redis" : amqp ? "rabbitmq" : "sqlite";
}

export function brokerUrl(r: Resolver, backend: Backend): string {
  const explicit = r.source("--broker-url", ["TTG_BROKER_URL"]);
  if (backend === "sqlite") return "";
  if (backend === "redis") {
    const src = explicit ?? r.source(null, ["REDIS_URL"]);
    if (src) return checkUrl(src, ["redis:", "rediss:"]);
    const tls = r.boolean(null, ["REDIS_TLS"], false);
    const host = r.string(null, ["REDIS_HOST"], "127.0.0.1");
    const port = r.number(null, ["REDIS_PORT"], 6379, { min: 1, max: 65535, integer: true });
    const user = r.string(null, ["REDIS_USERNAME"], "");
    const password = r.string(null, ["REDIS_PASSWORD"], "");
    const auth = password ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}@` : "";
    return `${tls ? "rediss" : "redis"}://${auth}${hostPart(host)}:${port}`;
  }
  const src = explicit ?? r.source(null, ["AMQP_URL", "RABBITMQ_URL"]);
  if (src) return checkUrl(src, ["amqp:", "amqps:"]);
  const tls = r.boolean(null, ["RABBITMQ_TLS"], false);
  const host = r.string(null, ["RABBITMQ_HOST"], "127.0.0.1");
  const port = r.number(null, ["RABBITMQ_PORT"], tls ? 5671 : 5672, {
    min: 1,
    max: 65535,
    integer: true,
  });
  const vhost = r.string(null, ["RABBITMQ_VHOST"], "/");
  let user = r.string(null, ["RABBITMQ_USER", "RABBITMQ_DEFAULT_USER"], "");
  let password = r.string(null, ["RABBITMQ_PASSWORD", "RABBITMQ_DEFAULT_PASS"], "");
  if (!user || !password) {
    if (!isLocalHost(host)) {
      throw new ConfigError(
        "RABBITMQ_USER",
        `Missing RABBITMQ_USER/RABBITMQ_PASSWORD for RabbitMQ host "${host}": default credentials are only used on localhost`,
      );
    }
    user ||= "guest";
    password ||= "guest";
  }
  const vhostPart = vhost === "/" ? "" : `/${encodeURIComponent(vhost)}`;
  return `${tls ? "amqps" : "amqp"}://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${
    hostPart(host)
  }:${port}${vhostPart}`;
}

function hostPart(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

function checkUrl(src: Source, protocols: readonly string[]): string {
  let url: URL;
  try {
    url = new URL(src.raw);
  } catch {
    throw ConfigError.invalid(
      src.name,
      redactUrl(src.raw),
      `a URL starting with ${protocols.join("// or ")}//`,
    );
  }
  if (!protocols.includes(url.protocol)) {
    throw ConfigError.invalid(
      src.name,
      redactUrl(src.raw),
      `a URL starting with ${protocols.join("// or ")}//`,
    );
  }
  return src.raw;
}

const TLS_SOURCES = [
  ["ca", "--tls-ca", "TTG_TLS_CA_FILE"],
  ["cert", "--tls-cert", "TTG_TLS_CERT_FILE"],
  ["key", "--tls-key", "TTG_TLS_KEY_FILE"],
] as const;

export const NO_TLS = { tlsFiles: { ca: "", cert: "", key: "" }, tls: undefined } as const;

/**
 * The TLS files' paths and contents. A file that cannot be read, or any file with a URL that is
 * not rediss:// or amqps:// (which would connect in plain text), is a ConfigError naming it.
 */
export function tlsSettings(
  r: Resolver,
  readFile: (path: string) => string,
  url: string,
): { tlsFiles: TlsFiles; tls: TlsPem | undefined } {
  const files = { ca: "", cert: "", key: "" };
  const pem: { ca?: string; cert?: string; key?: string } = {};
  for (const [field, flag, envName] of TLS_SOURCES) {
    const src = r.source(flag, [envName]);
    if (!src) continue;
    const scheme = url.slice(0, url.indexOf(":"));
    if (scheme !== "rediss" && scheme !== "amqps") {
      throw new ConfigError(
        src.name,
        `Invalid ${src.name} "${src.raw}": TLS files need a rediss:// or amqps:// broker URL, not ${scheme}://`,
      );
    }
    files[field] = src.raw;
    let text: string;
    try {
      text = readFile(src.raw);
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound
        ? "the file does not exist"
        : (error as Error).message;
      throw new ConfigError(src.name, `Invalid ${src.name} "${src.raw}": ${why}`);
    }
    if (!text.includes("-----BEGIN ")) {
      throw ConfigError.invalid(src.name, src.raw, "a PEM file (-----BEGIN …)");
    }
    pem[field] = text;
  }
  if ((files.cert === "") !== (files.key === "")) {
    const given = files.cert ? "--tls-cert" : "--tls-key";
    const missing = files.cert ? "--tls-key" : "--tls-cert";
    throw new ConfigError(
      missing,
      `Missing ${missing}: ${given} needs it (a client certificate and its key go together)`,
    );
  }
  return { tlsFiles: files, tls: Object.keys(pem).length > 0 ? pem : undefined };
}
