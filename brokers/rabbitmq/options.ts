/**
 * The options of the RabbitMQ broker beyond every broker's own (options.ts): where it connects,
 * the prefix of its names, its task queues' type and prefetch window, checked in one place.
 *
 * @module
 */
import type { PartialBrokerOptions } from "../broker.ts";
import { assertJobId } from "../task.ts";
import type { RabbitConnectionOptions } from "./target.ts";
import type { QueueType } from "./topology.ts";

/** Options of `openRabbitBroker`. */
export type RabbitBrokerOptions =
  & RabbitConnectionOptions
  & {
    /**
     * Prefix of every queue and exchange name. The job whose id equals it uses the predecessor's
     * names (`ttg.tasks`, `ttg.results`, …); other jobs use `<prefix>.<jobId>.tasks`, ….
     * @default "ttg"
     */
    readonly namePrefix?: string;
    /** Task queues of namespaced jobs: classic (with priorities) or quorum. @default "classic" */
    readonly queueType?: QueueType;
    /** Fixed prefetch window per job; by default twice the largest `max` a pull asked for. */
    readonly prefetch?: number;
  }
  & PartialBrokerOptions;

/** The RabbitMQ options checked, with defaults, and the rest (every broker's options). */
export function rabbitOptions(options: RabbitBrokerOptions): {
  readonly namePrefix: string;
  readonly queueType: QueueType;
  readonly prefetch: number | undefined;
  readonly rest: PartialBrokerOptions;
} {
  const { namePrefix = "ttg", queueType = "classic", prefetch, ...rest } = options;
  assertJobId(namePrefix);
  if (queueType !== "classic" && queueType !== "quorum") {
    throw new TypeError(`Invalid queueType "${queueType}": expected classic or quorum`);
  }
  if (prefetch !== undefined && !(Number.isInteger(prefetch) && prefetch > 0)) {
    throw new RangeError(`Invalid prefetch "${prefetch}": expected a whole number above 0`);
  }
  return { namePrefix, queueType, prefetch, rest };
}
