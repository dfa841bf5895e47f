/**
 * `ttg dashboard` without a browser, on a real SQLite broker: the JSON API (the sweep map's rule is
 * tests/sweep_map_test.ts),
 * one shared snapshot for any number of clients (the broker's stats calls counted), who may read
 * and act (token, POST, Host, Origin), a broker that fails and comes back, and the real program's
 * start line and its exit code 2 on a bad port or host. The page itself is tested in Chromium in
 * tests/web_dashboard_browser_test.ts.
 */
import "../tasks/node_warnings.ts";
import assert from "node:assert/strict";
import { openBroker } from "../brokers/open.ts";
import { dashboardHandler, serveDashboard } from "../workers/dashboard/server.ts";
import { DashboardHub } from "../workers/dashboard/hub.ts";
import { ASSETS } from "../workers/dashboard/page.ts";
import { planSweep } from "../workers/plan.ts";
import { submitPlan } from "../workers/run.ts";
import { probeBroker } from "./broker_probe.ts";
import { pullAll, resultFor } from "./conformance/support.ts";
import { freePort, readUntil, tempDir, ttg } from "./helpers.ts";

const TOKEN = "test-token-0123456789abcdef";

async function setup(options: { allowActions?: boolean; jobs?: string[] } = {}) {
  const dir = await tempDir();
  const raw = await openBroker({
    backend: "sqlite",
    sqlitePath: `${dir.path}/ttg.db`,
    consumerId: "test",
  });
  for (const jobId of options.jobs ?? ["alpha"]) {
    await submitPlan(raw, planSweep({ jobId, params: 100, chunkSize: 10 }));
  }
  const probe = probeBroker(raw);
  const server = serveDashboard({
    broker: probe.broker,
    host: "127.0.0.1",
    port: 0,
    token: TOKEN,
    allowActions: options.allowActions ?? false,
  });
  return {
    ...probe,
    raw,
    server,
    url: server.url,
    async [Symbol.asyncDispose]() {
      await server.close();
      await raw.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}

async function getJson(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  return { status: response.status, body: await response.json() };
}

Deno.test("GET /api/jobs and /api/jobs/{id}: every job with state, progress, rate, ETA, dead letters, age; the record, series, fleet and dead letters", async () => {
  await using s = await setup({ jobs: ["alpha", "beta"] });
  const [d] = await s.raw.pull({ jobId: "alpha", max: 1, waitMs: 0 });
  await s.raw.ack([{
    delivery: d!,
    result: { value: {}, params: 10, workerId: "w1", durationMs: 1, completedAt: "" },
  }]);
  const list = await getJson(`${s.url}/api/jobs`);
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.jobs.map((j: { job_id: string }) => j.job_id), ["alpha", "beta"]);
  const alpha = list.body.jobs[0];
  assert.equal(alpha.state, "running");
  assert.equal(alpha.progress, 0.1);
  assert.equal(alpha.done, 1);
  assert.equal(alpha.chunks, 10);
  assert.equal(alpha.dead_lettered, 0);
  assert.equal(typeof alpha.age_seconds, "number");
  assert.ok("rate_now" in alpha && "eta_seconds" in alpha);
  assert.equal(list.body.actions, false);
  const one = await getJson(`${s.url}/api/jobs/alpha`);
  assert.equal(one.status, 200);
  assert.equal(one.body.job.record.chunk_size, 10);
  assert.deepEqual(Object.keys(one.body.series), ["at", "depth", "in_flight", "throughput"]);
  assert.deepEqual(one.body.dead_letters, { total: 0, shown: [] });
  const map = await getJson(`${s.url}/api/jobs/alpha/map`);
  assert.equal(map.body.cells, "d".repeat(10) + "w".repeat(90), "100 cells of one parameter");
  assert.equal((await getJson(`${s.url}/api/jobs/nope`)).status, 404);
  assert.equal((await getJson(`${s.url}/api/jobs/a:b`)).status, 404);
  assert.equal((await getJson(`${s.url}/api/nothing`)).status, 404);
});

Deno.test("one snapshot a second serves every client: N parallel clients polling cost at most one stats read per job per second", async () => {
  await using s = await setup({ jobs: ["alpha", "beta", "gamma"] });
  const t0 = performance.now();
  const clients = Array.from({ length: 12 }, async (_, i) => {
    let requests = 0;
    while (performance.now() - t0 < 2500) {
      const path = ["/api/jobs", "/api/jobs/alpha", "/api/jobs/beta/map"][i % 3]!;
      const response = await fetch(`${s.url}${path}`);
      assert.equal(response.status, 200);
      await response.body?.cancel();
      requests++;
    }
    return requests;
  });
  const requests = (await Promise.all(clients)).reduce((a, b) => a + b, 0);
  const seconds = (performance.now() - t0) / 1000;
  assert.ok(requests > 100, `only ${requests} requests were made`);
  for (const job of ["alpha", "beta", "gamma"]) {
    const calls = s.stats.get(job) ?? 0;
    assert.ok(calls >= 1, `${job} was never read`);
    assert.ok(
      calls <= Math.floor(seconds) + 1,
      `${job}: ${calls} stats reads in ${seconds.toFixed(1)} s for ${requests} requests`,
    );
  }
  assert.equal(s.calls.get("results"), 1, "the map of a job that did not change is built once");
});

Deno.test("the sweep map shows as running and retrying only the job's own chunks a fleet worker names, a retry until it is due", async () => {
  await using s = await setup({ jobs: ["alpha", "beta"] });
  const at = (ms: number) => new Date(Date.now() + ms).toISOString();
  await s.raw.fleet.report({
    workerId: "w1",
    host: "h",
    pod: "",
    node: "",
    pid: 1,
    version: "test",
    jobId: "*",
    jobs: ["alpha", "beta"],
    startedAt: at(0),
    state: "idle",
    chunks: 0,
    params: 0,
    inFlight: 2,
    running: ["00005", "00006"],
    runningJobs: ["alpha", "beta"], // 00006 is another job's
    retrying: [
      { jobId: "alpha", chunkId: "00002", until: at(60_000) },
      { jobId: "beta", chunkId: "00003", until: at(60_000) }, // another job's
      { jobId: "alpha", chunkId: "00004", until: at(-1000) }, // due: back in the queue
    ],
    failures: 2,
    timeouts: 0,
    heartbeatMs: 1000,
  });
  const map = await getJson(`${s.url}/api/jobs/alpha/map`);
  // One parameter a cell: chunk 00002 is parameters 20 to 29, chunk 00005 50 to 59.
  const cells = "w".repeat(20) + "y".repeat(10) + "w".repeat(20) + "r".repeat(10) + "w".repeat(40);
  assert.equal(map.body.cells, cells);
  const detail = await getJson(`${s.url}/api/jobs/alpha`);
  assert.deepEqual(detail.body.job.workers.map((w: { running: string[] }) => w.running), [[
    "00005",
  ]]);
  assert.equal(map.body.legend.y, "retrying");
  assert.equal(map.body.counts.retrying, 10);
});

Deno.test("actions: POST with the token in a header and --allow-actions; without the token 401 and nothing changes", async () => {
  await using s = await setup({ allowActions: true });
  const post = (path: string, headers: Record<string, string> = {}, body = "{}") =>
    getJson(`${s.url}/api/jobs/alpha/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body,
    });
  const withToken = { "x-ttg-token": TOKEN };
  assert.equal((await post("cancel")).status, 401);
  assert.equal((await post("cancel", { "x-ttg-token": "wrong-token-0123456789" })).status, 401);
  assert.equal(
    (await getJson(`${s.url}/api/jobs/alpha/cancel?token=${TOKEN}`, { method: "POST" })).status,
    401,
    "a token in the query is no token",
  );
  assert.equal((await getJson(`${s.url}/api/jobs/alpha/cancel`)).status, 405, "GET never acts");
  assert.equal(
    (await post("cancel", { ...withToken, origin: "http://evil.example" })).status,
    403,
  );
  assert.equal(
    (await post("cancel", { ...withToken, "sec-fetch-site": "cross-site" })).status,
    403,
  );
  assert.equal((await s.raw.stats("alpha")).control, "running", "refused requests change nothing");
  const paused = await post("pause", { authorization: `Bearer ${TOKEN}` });
  assert.equal(paused.status, 200);
  assert.deepEqual([paused.body.before, paused.body.after], ["running", "paused"]);
  assert.equal((await post("resume", withToken)).body.after, "running");
  const cancelled = await post("cancel", withToken);
  assert.equal(cancelled.body.cancelled, 10);
  assert.equal((await s.raw.stats("alpha")).control, "cancelled");
  const unknown = await post("dead-letters/replay", withToken, JSON.stringify({ ids: ["999"] }));
  assert.equal(unknown.status, 404);
  assert.equal((await post("dead-letters/purge", withToken, "not json")).status, 400);
  assert.equal((await post("dead-letters/purge", withToken)).body.count, 0);
});

Deno.test("a finished job's pause or cancel is 409 with a sentence, and leaves the job completed", async () => {
  await using s = await setup({ allowActions: true });
  const held = await pullAll(s.raw, "alpha", 10);
  await s.raw.ack(held.map((delivery) => ({ delivery, result: resultFor(delivery) })));
  for (const action of ["pause", "cancel"]) {
    const response = await getJson(`${s.url}/api/jobs/alpha/${action}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-ttg-token": TOKEN },
      body: "{}",
    });
    assert.equal(response.status, 409);
    assert.equal(response.body.error, `Job "alpha" is already completed; nothing to ${action}`);
  }
  assert.equal((await s.raw.stats("alpha")).control, "running");
});

Deno.test("actions are refused (403) without --allow-actions, even with the token", async () => {
  await using s = await setup({ allowActions: false });
  const response = await getJson(`${s.url}/api/jobs/alpha/cancel`, {
    method: "POST",
    headers: { "x-ttg-token": TOKEN },
  });
  assert.equal(response.status, 403);
  assert.match(response.body.error, /--allow-actions/);
  assert.equal((await s.raw.stats("alpha")).control, "running");
});

Deno.test("off loopback every API read needs the token; on loopback a foreign Host is refused; the page and probes need none", async () => {
  await using raw = await openBroker({ backend: "sqlite", sqlitePath: ":memory:" });
  await submitPlan(raw, planSweep({ jobId: "alpha", params: 10, chunkSize: 10 }));
  const hub = new DashboardHub(raw);
  const open = dashboardHandler(hub, { token: TOKEN, loopback: false, allowActions: false });
  const local = dashboardHandler(hub, { token: TOKEN, loopback: true, allowActions: false });
  const request = (path: string, headers: Record<string, string> = {}) =>
    new Request(`http://10.0.0.5:8080${path}`, { headers: { host: "10.0.0.5:8080", ...headers } });
  assert.equal((await open(request("/api/jobs"))).status, 401);
  assert.equal((await open(request("/api/jobs", { "x-ttg-token": TOKEN }))).status, 200);
  for (const path of ["/", "/jobs/alpha", "/assets/app.js", "/healthz", "/readyz"]) {
    const response = await open(request(path));
    assert.equal(response.status, 200, path);
    await response.body?.cancel();
  }
  const page = await open(request("/"));
  assert.match(
    page.headers.get("content-security-policy")!,
    /default-src 'none'; script-src 'self'/,
  );
  assert.doesNotMatch(
    await page.text(),
    /http:\/\/(?!www\.w3\.org)/,
    "no external URL in the page",
  );
  const rebound = await local(request("/api/jobs", { host: "attacker.example:8080" }));
  assert.equal(rebound.status, 403);
  const ok = await local(
    new Request("http://127.0.0.1:8080/api/jobs", { headers: { host: "localhost:8080" } }),
  );
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
});

Deno.test("a broker that fails is 'Broker unreachable' (503, asked once per interval however many ask); the dashboard recovers when it answers", async () => {
  await using s = await setup();
  assert.equal((await getJson(`${s.url}/api/jobs`)).status, 200);
  s.state.down = true;
  await new Promise((r) => setTimeout(r, 1100));
  const failing = await Promise.all(
    Array.from({ length: 10 }, () => getJson(`${s.url}/api/jobs/alpha`)),
  );
  for (const f of failing) {
    assert.equal(f.status, 503);
    assert.match(f.body.error, /^Broker unreachable: Cannot reach the broker/);
  }
  const ready = await fetch(`${s.url}/readyz`);
  assert.equal(ready.status, 503);
  await ready.body?.cancel();
  s.state.down = false;
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal((await getJson(`${s.url}/api/jobs/alpha`)).status, 200);
});

Deno.test("ttg dashboard: a bad port, a port in use, a host it cannot listen on or a short token is one line and exit 2", async () => {
  await using dir = await tempDir();
  const base = ["dashboard", "--sqlite-path", `${dir.path}/ttg.db`];
  using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const cases: [string[], RegExp][] = [
    [["--port", "70000"], /^ttg: Invalid --port "70000": expected a whole number from 0 to 65535$/],
    [
      ["--port", String(busy.addr.port)],
      /^ttg: Invalid --port "\d+": 127\.0\.0\.1:\d+ is already in use$/,
    ],
    [["--host", "not a host!"], /^ttg: Invalid --host "not a host!": expected a host name/],
    [["--host", "10.255.255.1"], /^ttg: Invalid --host "10\.255\.255\.1": cannot listen there/],
    [["--token", "short"], /^ttg: Invalid --token: expected 16 to 256 letters/],
  ];
  for (const [flags, message] of cases) {
    const out = await ttg([...base, ...flags]);
    assert.equal(out.code, 2, `${flags.join(" ")}: ${out.stderr}`);
    const lines = out.stderr.trim().split("\n");
    assert.equal(lines.length, 1, out.stderr);
    assert.match(lines[0]!, message);
  }
});

Deno.test("ttg dashboard prints its URL with a generated token and serves the page and its files with no read outside its database's folder, then stops on SIGTERM", async () => {
  await using dir = await tempDir();
  const port = freePort();
  // The page's files are compiled in: the program may read nothing but its database's folder.
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      "--allow-net",
      "--allow-env",
      "--allow-sys=hostname",
      `--allow-read=${dir.path}`,
      `--allow-write=${dir.path}`,
      new URL("../workers/cli.ts", import.meta.url).pathname,
      "dashboard",
      "--sqlite-path",
      `${dir.path}/ttg.db`,
      "--port",
      String(port),
    ],
    cwd: dir.path,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const printed = await readUntil(reader, () => true, {
    timeoutMs: 60_000,
    what: "ttg dashboard's first line",
  });
  const match = /at (http:\/\/127\.0\.0\.1:(\d+))\/\?token=([A-Za-z0-9_-]{32})$/.exec(printed);
  assert.ok(match, printed);
  assert.equal(Number(match[2]), port);
  const page = await fetch(`${match[1]}/`);
  assert.match(await page.text(), /<script type="module" src="\/assets\/app\.js">/);
  for (const [path, asset] of ASSETS) {
    const served: Response = await fetch(`${match[1]}${path}`);
    assert.equal(served.status, 200, path);
    assert.equal(served.headers.get("content-type"), asset.type);
    assert.equal(await served.text(), asset.body);
  }
  const response = await fetch(`${match[1]}/api/jobs/x/cancel`, {
    method: "POST",
    headers: { "x-ttg-token": match[3]! },
  });
  assert.equal(response.status, 403, "actions are off by default");
  await response.body?.cancel();
  child.kill("SIGTERM");
  const status = await child.status;
  // Cancelling the reader cancels the piped stdout behind it (pipeThrough holds its lock).
  await reader.cancel();
  await child.stderr.cancel();
  assert.equal(status.code, 0);
});
