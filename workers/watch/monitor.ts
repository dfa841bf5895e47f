/**
 * `ttg monitor`: a live view of running jobs. On a terminal the screen is redrawn in place (the
 * alternate screen, so Ctrl-C leaves the terminal as it was); off a terminal one plain line per
 * job per interval; `--json` one JSON object per interval (`--once`: one, then exit). A broker
 * that goes away is shown as unreachable and watched again once it answers.
 *
 * @module
 */
import type { Broker } from "../../brokers/broker.ts";
import { ConfigError, errorMessage, TtgError } from "../../errors.ts";
import { History } from "./history.ts";
import { renderPlain, renderScreen, snapshotJson } from "./render.ts";
import { type JobSelection, readSnapshot, type Snapshot } from "./snapshot.ts";
import { waitOrAbort } from "../../brokers/wait.ts";

/** Options of {@linkcode monitor}. */
export interface MonitorOptions {
  readonly broker: Broker;
  readonly selection: JobSelection;
  /** Between two redraws. */
  readonly intervalMs: number;
  /** Print one snapshot and return. */
  readonly once: boolean;
  readonly json: boolean;
  /** Redraw in place (a terminal) rather than print lines. */
  readonly tty: boolean;
  /** Writes text to the terminal or log (stdout). */
  readonly write: (text: string) => void;
  /** The terminal's width. */
  readonly columns: () => number;
  /** Ends the watch (Ctrl-C). */
  readonly signal: AbortSignal;
}

const ENTER = "\x1b[?1049h\x1b[?25l";
const LEAVE = "\x1b[?25h\x1b[?1049l";
const HOME = "\x1b[H\x1b[2J";

/** Watches until `signal` aborts (or once). */
export async function monitor(o: MonitorOptions): Promise<void> {
  const history = new History();
  const first = await readFirst(o);
  history.add(first);
  if (o.once) {
    o.write(o.json ? JSON.stringify(snapshotJson(first, o.broker.backend)) + "\n" : show(first));
    return;
  }
  if (o.tty && !o.json) o.write(ENTER);
  try {
    let snapshot = first;
    let note: string | undefined;
    for (;;) {
      o.write(
        o.json
          ? JSON.stringify(snapshotJson(snapshot, o.broker.backend)) + "\n"
          : show(snapshot, note),
      );
      await waitOrAbort(o.intervalMs, o.signal);
      if (o.signal.aborted) return;
      try {
        snapshot = await readSnapshot(o.broker, o.selection);
        history.add(snapshot);
        note = undefined;
      } catch (error) {
        if (error instanceof TtgError && error.code === "NOT_FOUND") throw error;
        note = `broker unreachable, retrying (${errorMessage(error)})`;
        if (!o.tty || o.json) o.write(`${new Date().toISOString()} ${note}\n`);
      }
    }
  } finally {
    if (o.tty && !o.json) o.write(LEAVE);
  }

  function show(snapshot: Snapshot, note?: string): string {
    if (!o.tty) return renderPlain(snapshot, history).map((l) => l + "\n").join("");
    const lines = renderScreen(snapshot, history, {
      width: o.columns(),
      backend: o.broker.backend,
      ...(note ? { note } : {}),
    });
    return (o.once ? "" : HOME) + lines.join("\n") + "\n";
  }
}

/** The first snapshot; a job id that names no job is bad input (exit 2). */
async function readFirst(o: MonitorOptions): Promise<Snapshot> {
  try {
    return await readSnapshot(o.broker, o.selection);
  } catch (error) {
    if (error instanceof TtgError && error.code === "NOT_FOUND" && "jobId" in o.selection) {
      throw ConfigError.invalid("--job-id", o.selection.jobId, "the id of a job on this broker");
    }
    throw error;
  }
}
