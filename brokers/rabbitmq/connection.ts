/**
 * The RabbitMQ broker's connection: connecting and reconnecting with the one backoff of brokers
 * (policy.ts `reconnectDelayMs`), one session per connection (session.ts), an admin channel for
 * declarations and probes, and the one translation of amqplib's and the socket's errors.
 *
 * @module
 */
import * as amqp from "amqplib";
import type { Channel, Replies } from "amqplib";
import type { ConnectRetry } from "../broker.ts";
import { reconnectDelayMs } from "../policy.ts";
import { BrokerError, errorMessage, redactUrl, TtgError } from "../../errors.ts";
import { Session } from "./session.ts";
import type { RabbitTarget } from "./target.ts";

export { type PublishOutcome, Session } from "./session.ts";

/** RabbitMQ could not be reached in time (a reconnect is under way); worded by interpretError. */
export class Unreachable extends Error {}

/**
 * Why a RabbitMQ call failed, in a few words: `connection refused`, `access refused: …`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { failureReason } from "./connection.ts";
 * const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
 * assert.equal(failureReason(refused), "connection refused");
 * ```
 */
export function failureReason(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const message = redactUrl(errorMessage(error));
  if (error instanceof Unreachable) return message;
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "host not found";
  if (code === "ETIMEDOUT" || /timed? ?out/i.test(message)) return "connection timed out";
  if (code === "ECONNRESET" || code === "EPIPE") return "connection reset";
  if (code === 403 || /ACCESS[-_]REFUSED/.test(message)) {
    return `access refused (check the user name, password and vhost): ${message}`;
  }
  if (code === 320 || /CONNECTION[-_]FORCED/.test(message)) {
    return "the server closed the connection (it is stopping or restarting)";
  }
  if (/handshake/i.test(message)) return `the server ended the handshake: ${message}`;
  return message;
}

/** Failures that retrying cannot cure: refused credentials, a certificate that does not verify. */
function isPermanent(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  const message = errorMessage(error);
  return code === 403 || code === 530 || /ACCESS[-_]REFUSED|NOT[-_]ALLOWED/.test(message) ||
    /certificate|self[- ]signed|CERT_|unable to verify/i.test(message);
}

/**
 * The one translation of the RabbitMQ broker's native errors into {@linkcode BrokerError}s:
 * `Cannot <action> on RabbitMQ at host:port: <why>` (`connect to` for a connection). Typed errors
 * and invalid arguments pass unchanged.
 */
export function interpretError(error: unknown, action: string, where: string): unknown {
  if (error instanceof TtgError || error instanceof TypeError || error instanceof RangeError) {
    return error;
  }
  const preposition = action === "connect" ? "to" : "on";
  return new BrokerError(
    "UNAVAILABLE",
    `Cannot ${action} ${preposition} RabbitMQ at ${where}: ${failureReason(error)}`,
    { cause: error },
  );
}

/** A channel closed under a call. */
const CHANNEL_ENDED = /Channel ended|Channel closed|channel is closed/i;

/** Called on each new session before operations may use it (re-consume, re-bind). */
export type SessionSetup = (session: Session) => Promise<void>;

/** Declarations and probes on a channel that the server may close (404 on a probe, 406). */
export interface AdminChannels {
  /** Runs `fn` on a live admin channel; a channel the server closed is replaced next time. */
  run<T>(fn: (channel: Channel) => Promise<T>): Promise<T>;
  /** Passive declare: the queue's counts, or null when it does not exist. */
  probe(queue: string): Promise<Replies.AssertQueue | null>;
}

/** The broker's connection, reconnecting with backoff until closed. */
export class RabbitConnection {
  readonly target: RabbitTarget;
  readonly #name: string;
  readonly #setup: SessionSetup;
  readonly #onRetry: ((retry: ConnectRetry) => void) | undefined;
  #session: Session | undefined;
  #generation = 0;
  #waiters = new Set<(session: Session | Error) => void>();
  #closed = false;
  #reconnecting = false;
  #admin: Channel | undefined;
  #adminPending: Promise<Channel> | undefined;
  #adminTurn: Promise<void> = Promise.resolve();
  #timers = new Set<ReturnType<typeof setTimeout>>();

  constructor(
    target: RabbitTarget,
    name: string,
    setup: SessionSetup,
    onRetry?: (retry: ConnectRetry) => void,
  ) {
    this.target = target;
    this.#name = name;
    this.#setup = setup;
    this.#onRetry = onRetry;
  }

  /**
   * Connects the first time, retrying with backoff for up to `connectTimeoutMs`; throws
   * `UNAVAILABLE` with the last reason, once.
   */
  async open(): Promise<void> {
    const deadline = Date.now() + this.target.connectTimeoutMs;
    for (let failures = 1;; failures++) {
      try {
        await this.#connect(Math.max(100, deadline - Date.now()));
        return;
      } catch (error) {
        const delayMs = reconnectDelayMs(failures);
        if (this.#closed || isPermanent(error) || Date.now() + delayMs > deadline) {
          throw interpretError(error, "connect", this.target.where);
        }
        this.#tellRetry(failures, error, delayMs);
        await this.#sleep(delayMs);
      }
    }
  }

  /** The live session, waiting up to `timeoutMs` for a reconnection. */
  session(timeoutMs = this.target.connectTimeoutMs): Promise<Session> {
    if (this.#closed) return Promise.reject(new Error("the connection is closed"));
    const live = this.#session;
    if (live?.alive) return Promise.resolve(live);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.#waiters.delete(waiter);
        reject(new Unreachable(`not reachable (reconnecting for more than ${timeoutMs} ms)`));
      }, timeoutMs);
      this.#timers.add(timer);
      const waiter = (s: Session | Error) => {
        clearTimeout(timer);
        this.#timers.delete(timer);
        if (s instanceof Error) reject(s);
        else resolve(s);
      };
      this.#waiters.add(waiter);
    });
  }

  /** The current session if it is alive, without waiting. */
  get current(): Session | undefined {
    return this.#session?.alive ? this.#session : undefined;
  }

  /** Declarations and probes, on a channel that may be closed by the server. */
  readonly admin: AdminChannels = {
    run: async <T>(fn: (channel: Channel) => Promise<T>): Promise<T> => {
      // One call at a time: a probe's 404 closes the channel under every call sharing it.
      const previous = this.#adminTurn;
      let done: () => void = () => {};
      this.#adminTurn = new Promise<void>((resolve) => (done = resolve));
      await previous;
      try {
        return await this.#adminCall(fn);
      } finally {
        done();
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
    for (const waiter of [...this.#waiters]) waiter(new Error("the connection is closed"));
    this.#waiters.clear();
    const session = this.#session;
    this.#session = undefined;
    if (session) {
      session.markLost();
      // Closing the channel first flushes what it still has to send (acks written just before
      // close), which a bare connection close may overtake and drop (redeliveries, duplicates).
      await within(session.main.close().catch(() => {}), 2000); // a peer may have gone silent
      await session.model.close().catch(() => {});
      // close() rejects at once when the connection is closing already: wait for its end.
      await within(session.ended, 2000);
    }
  }

  async #adminCall<T>(fn: (channel: Channel) => Promise<T>): Promise<T> {
    for (let tries = 1;; tries++) {
      const channel = await this.#adminChannel();
      try {
        return await fn(channel);
      } catch (error) {
        if (this.#admin === channel) this.#admin = undefined;
        channel.close().catch(() => {});
        // The server closed the channel under the call (the connection is going): once more.
        if (tries < 2 && CHANNEL_ENDED.test(errorMessage(error))) continue;
        throw error;
      }
    }
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

  async #connect(timeoutMs: number): Promise<void> {
    const model = await amqp.connect(this.target.connect, {
      ...this.target.socket,
      timeout: timeoutMs,
      clientProperties: { connection_name: this.#name },
    });
    let session: Session | undefined;
    const lost = () => {
      if (session) this.#lost(session);
    };
    model.on("error", () => {});
    const ended = new Promise<void>((resolve) => model.once("close", () => resolve()));
    model.on("close", lost);
    try {
      const main = await model.createConfirmChannel();
      main.on("error", () => {});
      main.on("close", () => {
        // The confirm channel is the session: without it, drop the connection and start over.
        lost();
        model.close().catch(() => {});
      });
      session = new Session(++this.#generation, model, main, ended);
      if (this.#closed) throw new Error("the connection is closed");
      await this.#setup(session);
      if (!session.alive) throw new Error("the connection was lost while it was set up");
    } catch (error) {
      session?.markLost();
      await model.close().catch(() => {});
      await within(ended, 2000);
      throw error;
    }
    this.#admin = undefined;
    this.#session = session;
    for (const waiter of [...this.#waiters]) waiter(session);
    this.#waiters.clear();
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
      let delayMs = reconnectDelayMs(1);
      for (let failures = 1; !this.#closed; failures++) {
        await this.#sleep(delayMs);
        if (this.#closed) return;
        try {
          await this.#connect(this.target.connectTimeoutMs);
          return;
        } catch (error) {
          delayMs = reconnectDelayMs(failures + 1);
          this.#tellRetry(failures, error, delayMs);
        }
      }
    } finally {
      this.#reconnecting = false;
    }
  }

  #tellRetry(attempt: number, error: unknown, delayMs: number): void {
    try {
      this.#onRetry?.({
        attempt,
        target: `RabbitMQ at ${this.target.where}`,
        reason: failureReason(error),
        delayMs,
      });
    } catch {
      // a listener's failure must not stop the retries
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

/** Waits for `promise`, at most `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([promise, new Promise((resolve) => timer = setTimeout(resolve, ms))]);
  clearTimeout(timer);
}
