/**
 * The workers' Prometheus metrics, for real: `ttg worker --metrics-port` processes serving a job,
 * their exposition linted by `promtool check metrics`, and a real Prometheus (Debian's package)
 * scraping them: the completed counter summed over the workers equals the job's chunks.
 */
import assert from "node:assert/strict";
import { openBroker } from "../brokers/open.ts";
import { freePort, spawnTtg, tempDir, ttg, until, waitUntilListening } from "./helpers.ts";
import { required } from "./targets.ts";

function tool(name: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
    } catch { /* not here */ }
  }
  return undefined;
}

const prometheus = tool("prometheus");
const promtool = tool("promtool");
const missing = !prometheus || !promtool
  ? "prometheus and promtool are not installed (apt-get install -y prometheus)"
  : undefined;
const skip = missing && !required("promtool") ? missing : undefined;

async function text(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

/** Starts a Prometheus that scrapes `targets` every second; resolves with its base URL. */
async function startPrometheus(dir: string, targets: readonly string[]) {
  const port = freePort();
  const config = `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ttg\n` +
    `    static_configs:\n      - targets: [${targets.map((t) => `"${t}"`).join(", ")}]\n`;
  await Deno.writeTextFile(`${dir}/prometheus.yml`, config);
  const child = new Deno.Command(prometheus!, {
    args: [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitUntilListening(port, { timeoutMs: 30_000 });
  return { url: `http://127.0.0.1:${port}`, child };
}

async function query(base: string, promql: string): Promise<number | undefined> {
  const { body } = await text(`${base}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const reply = JSON.parse(body) as { data?: { result?: { value: [number, string] }[] } };
  const value = reply.data?.result?.[0]?.value[1];
  return value === undefined ? undefined : Number(value);
}

/** Waits until Prometheus answers `promql` with `expected` (its scrapes lag), and returns it. */
function answered(base: string, promql: string, expected: number, what: string): Promise<number> {
  return until(
    async () => {
      const value = await query(base, promql);
      return value === expected ? value : undefined;
    },
    30_000,
    what,
  );
}

/** Fails unless `promtool check metrics` accepts `exposition` (with its complaints if not). */
async function assertPromtoolAccepts(exposition: string, what: string): Promise<void> {
  const lint = new Deno.Command(promtool!, {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = lint.stdin.getWriter();
  await writer.write(new TextEncoder().encode(exposition));
  await writer.close();
  const linted = await lint.output();
  const said = new TextDecoder().decode(linted.stdout) + new TextDecoder().decode(linted.stderr);
  assert.ok(linted.success, `promtool check metrics of ${what}: ${said}`);
}

Deno.test({
  name:
    `worker and exporter metrics: promtool accepts both expositions, and a real Prometheus sums ttg_chunks_completed_total over the workers to the job's chunks and reads the exporter's queue gauges${
      skip ? ` (skipped: ${skip})` : ""
    }`,
  ignore: skip !== undefined,
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    if (missing) throw new Error(`${missing}, and this run requires promtool`);
    await using dir = await tempDir();
    const base = ["--sqlite-path", `${dir.path}/ttg.db`, "--job-id", "metrics"];
    const submit = await ttg(["submit", ...base, "--params", "2000", "--chunk-size", "10"]
      .concat(["--work-ms", "2"]));
    assert.equal(submit.code, 0, submit.stderr);
    const ports = [freePort(), freePort()];
    const workers = ports.map((port, i) =>
      spawnTtg([
        "worker",
        ...base,
        "--worker-id",
        `m${i}`,
        "--metrics-port",
        String(port),
        "--idle-timeout",
        "0",
      ])
    );
    const exporterPort = freePort();
    const exporter = spawnTtg([
      "exporter",
      "--sqlite-path",
      `${dir.path}/ttg.db`,
      "--metrics-port",
      String(exporterPort),
      "--host",
      "127.0.0.1",
    ]);
    const server = await startPrometheus(
      dir.path,
      [...ports, exporterPort].map((p) => `127.0.0.1:${p}`),
    );
    const observer = await openBroker({
      backend: "sqlite",
      sqlitePath: `${dir.path}/ttg.db`,
      consumerId: "observer",
    });
    try {
      for (const port of ports) await waitUntilListening(port, { timeoutMs: 20_000 });
      const health = await text(`http://127.0.0.1:${ports[0]}/healthz`);
      const ready = await text(`http://127.0.0.1:${ports[0]}/readyz`);
      assert.deepEqual([health.status, ready.status], [200, 200], `${health.body} ${ready.body}`);
      const exposition = await text(`http://127.0.0.1:${ports[0]}/metrics`);
      await Deno.writeTextFile(`${dir.path}/metrics.txt`, exposition.body);
      await assertPromtoolAccepts(exposition.body, "a worker's /metrics");
      for (
        const name of [
          "ttg_chunks_completed_total",
          "ttg_chunks_timed_out_total",
          "ttg_chunk_duration_seconds_bucket",
          'ttg_broker_operation_duration_seconds_bucket{le="0.0005",job_id="metrics",backend="sqlite",worker="m0",operation="pull"}',
          "ttg_chunks_in_flight",
          "process_resident_memory_bytes",
        ]
      ) assert.ok(exposition.body.includes(name), `${name} is not exposed`);
      await until(
        async () => (await observer.stats("metrics")).completed === 200 || undefined,
        60_000,
        "the job to complete",
      );
      const summed = await answered(
        server.url,
        'sum(ttg_chunks_completed_total{job_id="metrics"})',
        200,
        "Prometheus to scrape the final counters",
      );
      assert.equal(summed, 200);
      const perWorker = await query(
        server.url,
        'count(ttg_chunks_completed_total{job_id="metrics"})',
      );
      assert.equal(perWorker, 2, "one series per worker");
      // The exporter's exposition passes the same lint, and Prometheus reads its queue gauges.
      await waitUntilListening(exporterPort, { timeoutMs: 20_000 });
      const queue = await text(`http://127.0.0.1:${exporterPort}/metrics`);
      await assertPromtoolAccepts(queue.body, "the exporter's /metrics");
      const completed = await answered(
        server.url,
        'sum(ttg_queue_completed{job_id="metrics"})',
        200,
        "Prometheus to scrape the exporter's ttg_queue_completed",
      );
      assert.equal(completed, 200);
    } finally {
      for (const worker of [...workers, exporter]) worker.kill("SIGTERM");
      await Promise.all([...workers, exporter].map((w) => w.output()));
      server.child.kill("SIGTERM");
      await server.child.status;
      await observer.close();
    }
  },
});

Deno.test("a metrics port already in use is one warning: the worker works without its endpoints; the exporter exits 2 with one line", async () => {
  await using dir = await tempDir();
  const base = ["--sqlite-path", `${dir.path}/ttg.db`, "--job-id", "busyport"];
  await ttg(["submit", ...base, "--params", "100", "--chunk-size", "10"]);
  const taken = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    const out = await ttg([
      "worker",
      ...base,
      "--metrics-port",
      String(port),
      "--idle-timeout",
      "0.5",
      "--report-json",
    ]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(JSON.parse(out.stdout.trim().split("\n").pop()!).chunks, 10);
    const warnings = out.stderr.split("\n").filter((l) => /Cannot serve metrics/.test(l));
    assert.equal(warnings.length, 1, out.stderr);
    assert.match(warnings[0]!, /AddrInUse|in use/i);
    // The exporter exists to serve them: it refuses the port in one line instead.
    const exporter = await ttg(["exporter", "--sqlite-path", `${dir.path}/ttg.db`]
      .concat(["--metrics-port", String(port), "--host", "127.0.0.1"]));
    assert.deepEqual([exporter.code, exporter.stderr.trim().split("\n").length], [2, 1]);
    assert.match(exporter.stderr, /Invalid --metrics-port "\d+": expected a port .* can listen on/);
  } finally {
    taken.close();
  }
});
