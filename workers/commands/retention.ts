/**
 * `ttg retention`: shows or sets the broker-wide default time to live of finished jobs, and
 * applies retention once (fleet workers and `ttg exporter` apply it every minute on their own).
 *
 * @module
 */
import type { Command } from "commander";
import { ConfigError } from "../../errors.ts";
import { formatTtl, parseDuration } from "../duration.ts";
import { withBroker } from "../broker_for.ts";
import { resolveSettings } from "../settings.ts";
import { brokerFlags, type Flags, print } from "./flags.ts";

/** `--default`: a duration, or `none` to keep jobs without a time to live of their own. */
function defaultFlag(raw: unknown): number | null | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw === "string" && raw.trim().toLowerCase() === "none") return null;
  const seconds = typeof raw === "string" ? parseDuration(raw) : undefined;
  if (seconds === undefined || seconds < 1) {
    throw ConfigError.invalid("--default", raw, "a duration such as 7d, 12h or 3600, or none");
  }
  return seconds;
}

/** Adds `retention` to `program`. */
export function registerRetentionCommand(program: Command): void {
  brokerFlags(
    program.command("retention").description(
      "show or set how long finished jobs are kept, and delete the ones whose time has come",
    ),
  )
    .option(
      "--default <duration>",
      "the broker-wide time to live of finished jobs without their own --ttl, or none (default: unchanged)",
    )
    .option("--json", "print as JSON")
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags);
      const wanted = defaultFlag(flags.default);
      await withBroker(settings, async (broker) => {
        if (wanted !== undefined) await broker.retention.setDefaultTtl(wanted);
        const ttl = await broker.retention.defaultTtl();
        const { expired, marked } = await broker.retention.apply();
        if (flags.json) {
          return print(JSON.stringify({ default_ttl_seconds: ttl, expired, marked }));
        }
        print(
          ttl === null
            ? `Finished jobs without their own --ttl are kept on ${settings.backend} until ttg reset`
            : `Finished jobs without their own --ttl are kept ${
              formatTtl(ttl)
            } on ${settings.backend}`,
        );
        for (const id of expired) print(`Job "${id}" expired: its data was deleted`);
      });
    });
}
