/**
 * The RabbitMQ broker's connection: target and credentials, reconnection with backoff, one
 * confirm channel per connection (a "session", whose `generation` fences the deliveries it
 * holds), an admin channel for declarations and probes, and confirmed publishing.
 *
 * @module
 */
import * as amqp from "amqplib";
import type { Channel, ChannelModel, ConfirmChannel, Message, Options, Replies } from "amqplib";
import { BrokerError, ConfigError, errorMessage } from "./errors.ts";
import type { AdminChannels } from "./rabbitmq_topology.ts";

/** TLS settings of an `amqps://` connection (PEM strings). */
export interface RabbitTlsOptions {
  readonly ca?: string | readonly string[];
  readonly cert?: string;
  readonly key?: string;
  readonly passphrase?: string;
  /** Name checked against the server certificate. @default the URL's host */
  readonly servername?: string;
  /** @default true */
  readonly rejectUnauthorized?: boolean;
}

/** Connection options of the RabbitMQ broker. */
export interface RabbitConnectionOptions {
  /**
   * `amqp://user:password@host:port/vhost` or `amqps://…`. Without credentials, guest/guest is
   * used only for localhost, 127.0.0.1 and ::1.
   * @default "amqp://127.0.0.1:5672"
   */
  readonly url?: string;
  /** TLS options for `amqps://`. */
  readonly tls?: RabbitTlsOptions;
  /**
   * AMQP heartbeat: a silent peer is declared dead after about two of these, and its unacked
   * deliveries go back to the queue. This is the RabbitMQ broker's lease, so by default it is half
   * of `leaseMs` (rounded up to whole seconds) when a lease is given, else 5.
   */
  readonly heartbeatSeconds?: number;
  /** The lease the heartbeat follows when `heartbeatSeconds` is not given. */
  readonly leaseMs?: number;
  /** How long to wait for a connection (first connect, and an operation during a reconnect). @default 10000 */
  readonly connectTimeoutMs?: number;
}

/** Where and how to connect. */
export interface RabbitTarget {
  readonly connect: Options.Connect;
  readonly socket: amqp.SocketOptions;
  /** `host:port`, for messages. */
  readonly where: string;
  readonly connectTimeoutMs: number;
}

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

/** Validates the URL and credentials. Throws `ConfigError` naming the field. */
export function rabbitTarget(options: RabbitConnectionOptions): RabbitTarget {
  const raw = options.url ?? "amqp://127.0.0.1:5672";
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw ConfigError.invalid("url", redactUrl(raw), "an amqp:// or amqps:// URL");
  }
  if (url.protocol !== "amqp:" && url.protocol !== "amqps:") {
    throw ConfigError.invalid("url", redactUrl(raw), "an amqp:// or amqps:// URL");
  }
  const host = url.hostname.replace(/^\[|\]$/g, "");
  let username = decodeURIComponent(url.username);
  let password = decodeURIComponent(url.password);
  if (username === "" && password === "") {
    if (!LOCAL_HOSTS.has(host)) {
      throw new ConfigError(
        "url",
        `Missing credentials in the RabbitMQ URL "${
          redactUrl(raw)
        }": guest/guest is only used on localhost`,
      );
    }
    username = "guest";
    password = "guest";
  }
  const port = url.port ? Number(url.port) : url.protocol === "amqps:" ? 5671 : 5672;
  const heartbeat = options.heartbeatSeconds ??
    (options.leaseMs !== undefined && options.leaseMs > 0
      ? Math.max(1, Math.ceil(options.leaseMs / 2000))
      : 5);
  if (!(Number.isInteger(heartbeat) && heartbeat >= 0)) {
    throw ConfigError.invalid("heartbeatSeconds", heartbeat, "a whole number of seconds");
  }
  const vhost = url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : "/";
  const tls = options.tls ?? {};
  return {
    connect: {
      protocol: url.protocol.slice(0, -1),
      hostname: host,
      port,
      username,
      password,
      vhost,
      heartbeat,
      frameMax: 131072,
    },
    socket: url.protocol === "amqps:"
      ? {
        ...(tls.ca ? { ca: tls.ca as string | string[] } : {}),
        ...(tls.cert ? { cert: tls.cert } : {}),
        ...(tls.key ? { key: tls.key } : {}),
        ...(tls.passphrase ? { passphrase: tls.passphrase } : {}),
        ...(tls.servername ? { servername: tls.servername } : {}),
        rejectUnauthorized: tls.rejectUnauthorized ?? true,
        noDelay: true,
      }
      : { noDelay: true },
    where: `${host}:${port}`,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
  };
}

/** The URL with its password replaced by `***`. */
export function redactUrl(raw: string): string {
  return raw.replace(/(\/\/[^:/@]*:)[^@/]*@/, "$1***@");
}

/** Translates an amqplib or socket error into a {@linkcode BrokerError} (the one place). */
export function interpretError(error: unknown, action: string, where: string): Error {
  if (error instanceof BrokerError || error instanceof TypeError || error instanceof RangeError) {
    return error;
  }
  if (error instanceof ConfigError) return error;
  const message = errorMessage(error);
  const code = (error as { code?: unknown })?.code;
  if (code === "ECONNREFUSED") {
    return new BrokerError(
      "UNAVAILABLE",
      `Cannot ${action}: RabbitMQ at ${where} refused the connection`,
      {
        cause: error,
      },
    );
  }
  if (code === 403 || /ACCESS[-_]REFUSED/.test(message)) {
    return new BrokerError(
      "UNAVAILABLE",
      `Cannot ${action}: RabbitMQ at ${where} refused access: ${message}`,
      {
        cause: error,
      },
    );
  }
  return new BrokerError("UNAVAILABLE", `Cannot ${action}: ${message}`, { cause: error });
}

/** How a confirmed publish ended. */
export type PublishOutcome = "ack" | "nack" | "returned";

/**
 * One connection and its confirm channel. Deliveries received on it are acknowledged on it; when
 * it dies, RabbitMQ requeues them and every delivery of this `generation` becomes a zombie.
 */
export class Session {
  readonly generation: number;
  readonly model: ChannelModel;
  readonly main: ConfirmChannel;
  #alive = true;
  #seq = 0;
  /** Message ids RabbitMQ returned as unroutable, with how many times. */
  #returned = new Map<string, number>();
  #lostHandlers: (() => void)[] = [];

  constructor(generation: number, model: ChannelModel, main: ConfirmChannel) {
    this.generation = generation;
    this.model = model;
    this.main = main;
    main.on("return", (message: Message) => {
      const id = String(message.properties.messageId ?? "");
      this.#returned.set(id, (this.#returned.get(id) ?? 0) + 1);
    });
  }

  /** False once the connection or its channel closed. */
  get alive(): boolean {
    return this.#alive;
  }

  /** Runs `fn` (synchronously) when the session dies. */
  onLost(fn: () => void): void {
    if (!this.#alive) fn();
    else this.#lostHandlers.push(fn);
  }

  /** @internal Called by the connection when the session died. */
  markLost(): void {
    if (!this.#alive) return;
    this.#alive = false;
    for (const fn of this.#lostHandlers.splice(0)) {
      try {
        fn();
      } catch {
        // a handler's failure must not stop the others
      }
    }
  }

  /**
   * Publishes a persistent, mandatory message and resolves when RabbitMQ confirmed it (`ack`),
   * refused it (`nack`, e.g. a full `reject-publish` queue) or could not route it (`returned`).
   * Rejects when the channel closed first.
   */
  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish = {},
  ): Promise<PublishOutcome> {
    const id = options.messageId ?? `ttg-${++this.#seq}`;
    return new Promise((resolve, reject) => {
      try {
        this.main.publish(exchange, routingKey, content, {
          persistent: true,
          mandatory: true,
          contentType: "application/json",
          ...options,
          messageId: id,
        }, (err) => {
          // RabbitMQ sends basic.return before the confirm of the same message.
          const returned = this.#returned.get(id);
          if (returned) {
            if (returned > 1) this.#returned.set(id, returned - 1);
            else this.#returned.delete(id);
            return resolve("returned");
          }
          if (!err) return resolve("ack");
          if (/nacked/.test(errorMessage(err))) return resolve("nack");
          reject(err);
        });
      } catch (error) {
        reject(error);
      }
    });
  }
}

/** Called on each new session before operations may use it (re-consume, re-bind). */
export type SessionSetup = (session: Session) => Promise<void>;

/** The broker's connection, reconnecting with backoff until closed. */
export class RabbitConnection {
  readonly target: RabbitTarget;
  readonly #name: string;
  readonly #setup: SessionSetup;
  #session: Session | undefined;
  #generation = 0;
  #waiters: ((session: Session | Error) => void)[] = [];
  #closed = false;
  #reconnecting = false;
  #admin: Channel | undefined;
  #adminPending: Promise<Channel> | undefined;
  #timers = new Set<ReturnType<typeof setTimeout>>();

  constructor(target: RabbitTarget, name: string, setup: SessionSetup) {
    this.target = target;
    this.#name = name;
    this.#setup = setup;
  }

  /** Connects the first time, retrying for up to `connectTimeoutMs`; throws `UNAVAILABLE`. */
  async open(): Promise<void> {
    const deadline = Date.now() + this.target.connectTimeoutMs;
    for (let attempt = 0;; attempt++) {
      try {
        await this.#connect();
        return;
      } catch (error) {
        if (Date.now() + backoffMs(attempt) > deadline || this.#closed) {
          throw interpretError(
            error,
            `connect to RabbitMQ at ${this.target.where}`,
            this.target.where,
          );
        }
        await this.#sleep(backoffMs(attempt));
      }
    }
  }

  /** The live session, waiting up to `timeoutMs` for a reconnection; throws `UNAVAILABLE`. */
  session(timeoutMs = this.target.connectTimeoutMs): Promise<Session> {
    if (this.#closed) return Promise.reject(closedError());
    const live = this.#session;
    if (live?.alive) return Promise.resolve(live);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(
          new BrokerError(
            "UNAVAILABLE",
            `Cannot reach RabbitMQ at ${this.target.where}: reconnecting for more than ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.#timers.add(timer);
      const waiter = (s: Session | Error) => {
        clearTimeout(timer);
        this.#timers.delete(timer);
        if (s instanceof Error) reject(s);
        else resolve(s);
      };
      this.#waiters.push(waiter);
    });
  }

  /** The current session if it is alive, without waiting. */
  get current(): Session | undefined {
    return this.#session?.alive ? this.#session : undefined;
  }

  /** Declarations and probes, on a channel that may be closed by the server. */
  readonly admin: AdminChannels = {
    run: async <T>(fn: (channel: Channel) => Promise<T>): Promise<T> => {
      const channel = await this.#adminChannel();
      try {
        return await fn(channel);
      } catch (error) {
        if (this.#admin === channel) this.#admin = undefined;
        channel.close().catch(() => {});
        throw error;
      }
    },
    probe: async (queue: string): Promise<Replies.AssertQueue | null> => {
      try {
        return await this.admin.run((ch) => ch.checkQueue(queue));
      } catch (error) {
        if (/404|NOT[-_]FOUND/.test(errorMessage(error))) return null;
        throw error;
      }
    },
  };

  /** Opens a short-lived channel (snapshot reads, census); the caller closes it. */
  async channel(): Promise<Channel> {
    const session = await this.session();
    const channel = await session.model.createChannel();
    channel.on("error", () => {});
    return channel;
  }

  /** Closes the connection for good; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const waiter of this.#waiters.splice(0)) waiter(closedError());
    const session = this.#session;
    this.#session = undefined;
    if (session) {
      session.markLost();
      // Closing the channel first flushes what it still has to send (acks written just before
      // close), which a bare connection close may overtake and drop (redeliveries, duplicates).
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        session.main.close().catch(() => {}),
        new Promise((resolve) => timer = setTimeout(resolve, 2000)), // a peer that went silent
      ]);
      clearTimeout(timer);
      await session.model.close().catch(() => {});
    }
  }

  /** Drops the connection as if the network failed (the broker requeues what it held). */
  async abort(): Promise<void> {
    const session = this.#session;
    if (!session) return;
    await session.model.close().catch(() => {});
  }

  async #adminChannel(): Promise<Channel> {
    if (this.#admin) return this.#admin;
    this.#adminPending ??= (async () => {
      const session = await this.session();
      const channel = await session.model.createChannel();
      channel.on("error", () => {});
      channel.on("close", () => {
        if (this.#admin === channel) this.#admin = undefined;
      });
      this.#admin = channel;
      return channel;
    })().finally(() => (this.#adminPending = undefined));
    return await this.#adminPending;
  }

  async #connect(): Promise<void> {
    const model = await amqp.connect(this.target.connect, {
      ...this.target.socket,
      clientProperties: { connection_name: this.#name },
    });
    let session: Session | undefined;
    const lost = () => {
      if (session) this.#lost(session);
    };
    model.on("error", () => {});
    model.on("close", lost);
    try {
      const main = await model.createConfirmChannel();
      main.on("error", () => {});
      main.on("close", () => {
        // The confirm channel is the session: without it, drop the connection and start over.
        lost();
        model.close().catch(() => {});
      });
      session = new Session(++this.#generation, model, main);
      if (this.#closed) throw closedError();
      await this.#setup(session);
      if (!session.alive) throw new Error("connection lost during setup");
    } catch (error) {
      await model.close().catch(() => {});
      throw error;
    }
    this.#admin = undefined;
    this.#session = session;
    for (const waiter of this.#waiters.splice(0)) waiter(session);
  }

  #lost(session: Session): void {
    session.markLost();
    if (this.#session !== session) return;
    this.#session = undefined;
    this.#admin = undefined;
    if (!this.#closed) void this.#reconnect();
  }

  async #reconnect(): Promise<void> {
    if (this.#reconnecting) return;
    this.#reconnecting = true;
    try {
      for (let attempt = 0; !this.#closed; attempt++) {
        await this.#sleep(backoffMs(attempt));
        if (this.#closed) return;
        try {
          await this.#connect();
          return;
        } catch {
          // keep trying with a longer delay
        }
      }
    } finally {
      this.#reconnecting = false;
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        resolve();
      }, ms);
      this.#timers.add(timer);
    });
  }
}

/** Reconnect delay: 100 ms doubling to 3 s, with ±20 % jitter. */
export function backoffMs(attempt: number): number {
  const base = Math.min(3000, 100 * 2 ** attempt);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

function closedError(): BrokerError {
  return new BrokerError("CLOSED", "Cannot use the RabbitMQ broker: it is closed");
}
