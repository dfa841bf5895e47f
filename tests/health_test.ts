/**
 * A worker's `/healthz` and `/readyz` (what Kubernetes' probes ask) while its broker misbehaves:
 * a frozen redis-server (SIGSTOP) leaves the worker's heartbeat waiting, so it is neither alive nor
 * ready until the server goes on; a killed one makes it unready until the server is back.
 */
import assert from "node:assert/strict";
import { freePort, spawnTtg, ttg, until } from "./helpers.ts";
import { PrivateRedis } from "./servers.ts";
import { privateServerProblem } from "./servers.ts";

async function probe(port: number, path: "/healthz" | "/readyz") {
  try {
    const response = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: response.status, text: (await response.text()).trim() };
  } catch (error) {
    return { status: 0, text: String(error) };
  }
}

/** Waits until `path` answers `status`, and returns its text. */
function answers(port: number, path: "/healthz" | "/readyz", status: number, what: string) {
  return until(
    async () => {
      const r = await probe(port, path);
      return r.status === status ? r.text : undefined;
    },
    30_000,
    `${path} to answer ${status} (${what})`,
  );
}

Deno.test({
  name:
    "/healthz and /readyz: a frozen broker makes the worker neither alive nor ready, a killed one unready, until it is back",
  ignore: privateServerProblem("redis") !== undefined,
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using redis = await PrivateRedis.start({ aof: true }); // its data survives the kill
    const job = ["--broker-url", redis.url, "--job-id", "health"];
    // Chunks of 10 × 20 ms that keep the worker busy for longer than the test.
    const submit = await ttg(["submit", ...job, "--params", "40000", "--work-ms", "20"]);
    assert.equal(submit.code, 0, submit.stderr);
    const port = freePort();
    const worker = spawnTtg(
      ["worker", ...job, "--metrics-port", String(port), "--heartbeat-ms", "200"],
    );
    const output = worker.output();
    try {
      await answers(port, "/readyz", 200, "a worker at work");
      assert.equal((await probe(port, "/healthz")).status, 200);

      redis.signal("SIGSTOP");
      const stale = await answers(port, "/healthz", 503, "the broker frozen");
      assert.match(stale, /^no heartbeat for \d+ ms$/);
      assert.equal((await probe(port, "/readyz")).status, 503);
      redis.signal("SIGCONT");
      await answers(port, "/healthz", 200, "the broker going on");
      await answers(port, "/readyz", 200, "the broker going on");

      await redis.kill("SIGKILL");
      await answers(port, "/readyz", 503, "the broker killed");
      await redis.startAgain();
      await answers(port, "/readyz", 200, "the broker back");
    } catch (error) {
      try {
        worker.kill("SIGKILL");
      } catch { /* exited */ }
      const { code, stderr } = await output;
      const tail = new TextDecoder().decode(stderr).split("\n").slice(-8).join("\n");
      throw new Error(`${(error as Error).message}; the worker (exit ${code}) said:\n${tail}`);
    } finally {
      redis.signal("SIGCONT");
    }
    worker.kill("SIGTERM");
    assert.equal((await output).code, 0, "a worker drained by SIGTERM exits 0");
  },
});
