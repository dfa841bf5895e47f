/**
 * A broker wrapper for tests of what reads a broker: it counts `stats()` calls per job and every
 * call per method, and can be switched to fail every call as an unreachable broker does
 * (`BrokerError` `UNAVAILABLE`).
 *
 * @module
 */
import type { Broker } from "../brokers/broker.ts";
import { BrokerError } from "../errors.ts";

/** A wrapped broker, its counts, and its switch. */
export interface BrokerProbe {
  /** The broker to hand to the code under test. */
  readonly broker: Broker;
  /** `stats()` calls per job id. */
  readonly stats: Map<string, number>;
  /** Calls per method (`results`, `deadLetters.list`, …). */
  readonly calls: Map<string, number>;
  /** While `down` is true, every call but `close` fails. */
  readonly state: { down: boolean };
}

/** Wraps `broker` (its `fleet` and `deadLetters` too). */
export function probeBroker(broker: Broker): BrokerProbe {
  const stats = new Map<string, number>();
  const calls = new Map<string, number>();
  const state = { down: false };
  const wrap = <T extends object>(target: T, prefix = ""): T =>
    new Proxy(target, {
      get(obj, prop) {
        const value = Reflect.get(obj, prop, obj);
        if (prop === "fleet" || prop === "deadLetters") {
          return wrap(value as object, `${String(prop)}.`);
        }
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (state.down && prop !== "close") {
            return Promise.reject(
              new BrokerError("UNAVAILABLE", "Cannot reach the broker: connection refused"),
            );
          }
          const name = `${prefix}${String(prop)}`;
          calls.set(name, (calls.get(name) ?? 0) + 1);
          if (prop === "stats") stats.set(String(args[0]), (stats.get(String(args[0])) ?? 0) + 1);
          return (value as (...a: unknown[]) => unknown).apply(obj, args);
        };
      },
    });
  return { broker: wrap(broker), stats, calls, state };
}
