/**
 * The `ttg` commands that watch a broker: `monitor` (a live terminal view, plain lines, or JSON),
 * `exporter` (the queue-level Prometheus gauges of every job, from one place) and `dashboard`
 * (a web page of every job, with actions behind a token).
 *
 * @module
 */
import type { Command } from "commander";
import { ConfigError, errorMessage } from "../../errors.ts";
import { withBroker } from "../broker_for.ts";
import { resolveDashboardSettings, resolveSettings } from "../settings.ts";
import { brokerFlags, type Flags, logFor, print, stopSignal } from "./flags.ts";

/** Reads a number of seconds from a flag; one line naming it when it is not one in range. */
function seconds(flag: string, raw: unknown, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (typeof raw !== "string" || raw.trim() === "" || !(value >= min && value <= max)) {
    throw ConfigError.invalid(flag, raw, `a number of seconds from ${min} to ${max}`);
  }
  return value;
}

/**
 * Adds `monitor`, `exporter` and `dashboard` to `program`; each action imports its view when it
 * runs, so that no other command (a worker least of all) carries the dashboard or the monitor.
 */
export function registerWatchCommands(program: Command): void {
  brokerFlags(
    program.command("monitor").description(
      "watch running jobs live: progress, counters, throughput, ETA, queue trend and fleet",
    ),
  )
    .option("--all", "every job on the broker (default: the job of --job-id)")
    .option("--interval <seconds>", "between redraws (default 1)")
    .option("--once", "print one snapshot and exit")
    .option("--json", "print JSON: one object per interval (with --once, one)")
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags);
      const intervalMs = seconds("--interval", flags.interval, 1, 0.1, 3600) * 1000;
      const { monitor } = await import("../watch/monitor.ts");
      using stop = stopSignal();
      const encoder = new TextEncoder();
      await withBroker(settings, (broker) =>
        monitor({
          broker,
          selection: flags.all ? { all: true } : { jobId: settings.jobId },
          intervalMs,
          once: flags.once === true,
          json: flags.json === true,
          tty: Deno.stdout.isTerminal(),
          write: (text) => Deno.stdout.writeSync(encoder.encode(text)),
          columns: () => {
            try {
              return Deno.consoleSize().columns;
            } catch {
              return 100;
            }
          },
          signal: stop.signal,
        }));
    });

  brokerFlags(
    program.command("exporter").description(
      "serve the queue gauges of every job on the broker for Prometheus (/metrics, /healthz, /readyz)",
    ),
  )
    .option("--metrics-port <port>", "port to serve on (default 9464; env TTG_METRICS_PORT)")
    .option("--host <host>", "address to listen on (default 0.0.0.0)")
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags);
      const port = settings.metricsPort || 9464;
      const log = logFor(settings);
      using stop = stopSignal();
      const [{ createExporter }, { serveEndpoints }] = await Promise.all([
        import("../watch/exporter.ts"),
        import("../metrics_server.ts"),
      ]);
      await withBroker(settings, async (broker) => {
        const exporter = createExporter(broker);
        const server = serveEndpoints({
          metrics: async () => ({
            text: await exporter.metrics(),
            contentType: exporter.registry.contentType,
          }),
          notAlive: () => undefined,
          notReady: () => exporter.notReady(),
        }, {
          port,
          ...(typeof flags.host === "string" ? { hostname: flags.host } : {}),
          log,
          required: true,
        });
        log.info("RUNNING", { metrics_port: server.port, backend: settings.backend });
        // The one standing process of a broker also applies retention to finished jobs.
        const retain = () =>
          broker.retention.apply().then(
            ({ expired }) => expired.forEach((id) => log.info("Job expired", { job_id: id })),
            (error) => log.warn("Applying retention failed", { error: errorMessage(error) }),
          );
        void retain();
        const retention = setInterval(retain, 60_000);
        await new Promise<void>((resolve) =>
          stop.signal.addEventListener("abort", () => resolve())
        );
        clearInterval(retention);
        await server.close();
        log.info("STOPPED");
      });
    });

  // ttg dashboard: the web page of every job of the broker (workers/dashboard/).
  brokerFlags(
    program.command("dashboard").description(
      "serve a live web page of the broker's jobs: progress, charts, fleet, sweep map, dead letters",
    ),
  )
    .option("--port <port>", "port to listen on; 0 picks a free one (default 8080)")
    .option("--host <host>", "address to listen on (default 127.0.0.1; others need the token)")
    .option("--allow-actions", "serve cancel, pause, resume, replay and purge (with the token)")
    .option(
      "--token <token>",
      "the token; generated and printed if unset (default: generated; env TTG_DASHBOARD_TOKEN)",
    )
    .action(async (flags: Flags) => {
      const settings = resolveSettings(flags);
      const dashboard = resolveDashboardSettings(flags);
      const { runDashboard } = await import("../dashboard/server.ts");
      using stop = stopSignal();
      await runDashboard(settings, dashboard, { signal: stop.signal, print });
    });
}
