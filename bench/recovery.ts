/**
 * Recovery after SIGKILL, on any broker whose held chunks the bench can read: a no-op sweep
 * served by 3 `ttg worker` processes (default lease and heartbeat), one of them frozen (SIGSTOP)
 * at ~30% while the chunks it holds are noted, then SIGKILLed; the figure is the seconds from the
 * kill to the last of those chunks completing elsewhere.
 *
 * @module
 */
import type { Broker } from "../brokers/broker.ts";
import { allResults } from "../brokers/results.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { spawnTtg } from "./ttg_process.ts";

/** A broker as the recovery figure needs it. */
export interface KillTarget {
  /** `ttg` flags that name the broker (`--backend …`). */
  readonly flags: readonly string[];
  open(consumerId: string): Promise<Broker>;
  /** Chunk ids that `consumer` holds in `jobId`, read from the broker's own store. */
  held(jobId: string, consumer: string): Promise<Set<string>>;
}

/** Seconds from the SIGKILL to the last of the `held` chunks the killed worker held done. */
export async function recoveryAfterKill(
  target: KillTarget,
  chunks: number,
): Promise<{ seconds: number; held: number }> {
  const jobId = `bench-kill-${crypto.randomUUID().slice(0, 8)}`;
  const common = [...target.flags, "--job-id", jobId];
  const broker = await target.open(`bench-${Deno.pid}`);
  const workers: Deno.ChildProcess[] = [];
  try {
    const size = ["--params", String(chunks * 10), "--chunk-size", "10", "--work-ms", "0"];
    const submitted = await spawnTtg(["submit", ...common, ...size]).output();
    if (!submitted.success) {
      const tail = new TextDecoder().decode(submitted.stderr).slice(-500);
      throw new Error(`ttg submit failed: ${tail}`);
    }
    for (let i = 0; i < 3; i++) {
      const id = [`kill-${i}`, "--idle-timeout", "0", "--log-level", "ERROR"];
      workers.push(spawnTtg(["worker", ...common, "--worker-id", ...id]));
    }
    while ((await broker.stats(jobId)).completed < chunks * 0.3) await sleep(20);
    // Freeze the victim while it holds chunks, note them, then SIGKILL it.
    let held = new Set<string>();
    for (let tries = 0; held.size === 0 && tries < 200; tries++) {
      workers[1]!.kill("SIGSTOP");
      held = await target.held(jobId, "kill-1");
      if (held.size === 0) workers[1]!.kill("SIGCONT");
    }
    workers[1]!.kill("SIGKILL");
    const killedAt = Date.now();
    for (;;) {
      const stats = await broker.stats(jobId);
      if (stats.completed + stats.deadLettered >= chunks) break;
      await sleep(100);
    }
    const done = new Map((await allResults(broker, jobId)).map((r) => [r.chunkId, r.completedAt]));
    const last = Math.max(...[...held].map((id) => Date.parse(done.get(id) ?? "")));
    if (held.size === 0 || !Number.isFinite(last)) {
      throw new Error(`The killed worker held ${held.size} chunks; not all were completed`);
    }
    return { seconds: (last - killedAt) / 1000, held: held.size };
  } finally {
    for (const w of workers) {
      try {
        w.kill("SIGTERM");
      } catch {
        // already gone
      }
    }
    await Promise.all(workers.map((w) => w.output()));
    await broker.reset(jobId).catch(() => {});
    await broker.close();
  }
}
