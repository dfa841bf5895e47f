/**
 * A session of the RabbitMQ broker: one connection and its confirm channel, whose `generation`
 * fences the deliveries it holds, and confirmed publishing on it.
 *
 * @module
 */
import type { ChannelModel, ConfirmChannel, Message, Options } from "amqplib";
import { errorMessage } from "../../errors.ts";

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
  /** Resolves once the connection has closed (its heartbeat timers are cleared then). */
  readonly ended: Promise<void>;
  #alive = true;
  #seq = 0;
  /** Message ids RabbitMQ returned as unroutable, with how many times. */
  #returned = new Map<string, number>();
  #lostHandlers: (() => void)[] = [];

  constructor(
    generation: number,
    model: ChannelModel,
    main: ConfirmChannel,
    ended: Promise<void>,
  ) {
    this.generation = generation;
    this.model = model;
    this.main = main;
    this.ended = ended;
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
    // A basic.return is matched to its publish by message id (no header: headers cost every
    // message bytes and time); of several publishes with one id, the first confirmed takes it.
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
