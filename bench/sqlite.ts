/**
 * SQLite section: the end-to-end no-op sweep through `ttg run` beside the raw claim cycle of
 * node:sqlite measured in the same run (batched inserts, then UPDATE … RETURNING claims of 100
 * and deletes, one connection, WAL), and the recovery after a worker's SIGKILL (recovery.ts).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { openSqliteBroker } from "../brokers/sqlite/sqlite.ts";
import { peakRssMb, runSweepBench } from "./e2e.ts";
import { type KillTarget, recoveryAfterKill } from "./recovery.ts";
import type { BenchRow } from "./table.ts";

/** The raw cycle: entries per second over insert and claim+delete phases. */
export function rawSqliteCycle(path: string, entries: number): number {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  db.exec("CREATE TABLE q (id INTEGER PRIMARY KEY, body TEXT NOT NULL, owner TEXT, lease INTEGER)");
  const insert = db.prepare("INSERT INTO q (body) VALUES (?)");
  const claim = db.prepare(
    "UPDATE q SET owner = 'raw', lease = ? WHERE id IN (SELECT id FROM q WHERE owner IS NULL ORDER BY id LIMIT 100) RETURNING id",
  );
  const body = JSON.stringify({ jobId: "raw", chunkId: "00000", start: 0, end: 10 });
  const t0 = performance.now();
  for (let i = 0; i < entries; i += 100) {
    db.exec("BEGIN");
    for (let j = i; j < Math.min(entries, i + 100); j++) insert.run(body);
    db.exec("COMMIT");
  }
  for (;;) {
    db.exec("BEGIN");
    const rows = claim.all(Date.now()) as { id: number }[];
    if (rows.length) db.exec(`DELETE FROM q WHERE id IN (${rows.map((r) => r.id).join(",")})`);
    db.exec("COMMIT");
    if (rows.length === 0) break;
  }
  const seconds = (performance.now() - t0) / 1000;
  db.close();
  return entries / seconds;
}

/** The database at `path` as the recovery figure needs it (held chunks: its leased rows). */
function sqliteKillTarget(path: string): KillTarget {
  return {
    flags: ["--backend", "sqlite", "--sqlite-path", path],
    open: (consumerId) => openSqliteBroker({ path, consumerId }),
    held(jobId, consumer) {
      const db = new DatabaseSync(path, { readOnly: true });
      try {
        const rows = db.prepare(
          "SELECT chunk_id FROM tasks WHERE job_id = ? AND consumer = ? AND state = 'leased'",
        ).all(jobId, consumer) as { chunk_id: string }[];
        return Promise.resolve(new Set(rows.map((r) => r.chunk_id)));
      } finally {
        db.close();
      }
    },
  };
}

/** Runs the SQLite section. */
export async function benchSqlite(options: { chunks: number }): Promise<BenchRow[]> {
  const dir = await Deno.makeTempDir({ prefix: "ttg-bench-sqlite-" });
  try {
    const raw = rawSqliteCycle(`${dir}/raw.db`, options.chunks);
    const report = await runSweepBench({
      backend: "sqlite",
      chunks: options.chunks,
      extraArgs: ["--sqlite-path", `${dir}/ttg.db`, "--batch", "256"],
    });
    const recovery = await recoveryAfterKill(
      sqliteKillTarget(`${dir}/kill.db`),
      Math.min(Math.max(options.chunks, 20_000), 50_000),
    );
    return [
      {
        section: "sqlite",
        figure: `no-op sweep, ${options.chunks} chunks × 10, 3 workers`,
        value: report.chunks_per_second,
        unit: "chunks/s",
        rawLimit: raw,
      },
      { section: "sqlite", figure: "worker peak RSS", value: peakRssMb(report), unit: "MB" },
      {
        section: "sqlite",
        figure: `SIGKILL → last of its ${recovery.held} chunks done elsewhere (defaults)`,
        value: recovery.seconds,
        unit: "s",
      },
    ];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
