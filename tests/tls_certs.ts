/**
 * Test certificates made with openssl: a CA and a server certificate for 127.0.0.1 and
 * localhost, for the private TLS brokers the tests start; and the CLI check both TLS brokers
 * share.
 *
 * @module
 */
import assert from "node:assert/strict";
import { computeRange } from "../jobs/sweep.ts";
import { ttg } from "./helpers.ts";

/**
 * `ttg run` of a 300-parameter sweep over the TLS broker at `url` with `--tls-ca caFile` (the CA
 * reaches the coordinator and, through the environment, its workers); without the CA the broker's
 * certificate is refused in one line with exit code 1.
 */
export async function assertSweepNeedsCa(
  backend: "redis" | "rabbitmq",
  url: string,
  caFile: string,
): Promise<void> {
  const sweep = ["--backend", backend, "--params", "300", "--chunk-size", "10", "--json"];
  const run = await ttg(["run", ...sweep, "--tls-ca", caFile], { TTG_BROKER_URL: url });
  assert.equal(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  assert.equal(report.chunks.completed, 30);
  assert.ok(Math.abs(report.aggregate.sum - computeRange(0, 300).sum) < 1e-6);
  const refused = await ttg(["status", "--backend", backend, "--job-id", report.job_id], {
    TTG_BROKER_URL: url,
  });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr.trim(), /^ttg: .*certificate/i);
  assert.equal(refused.stderr.trim().split("\n").length, 1, refused.stderr);
}

/**
 * Writes `ca.crt`, `ca.key`, `server.crt` and `server.key` into `dir` (the server certificate
 * names 127.0.0.1 and localhost); returns the CA's PEM.
 */
export async function makeCertificates(dir: string): Promise<string> {
  const run = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", { args, cwd: dir, stderr: "piped" }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  };
  await Deno.writeTextFile(`${dir}/ext.cnf`, "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  const key = ["-newkey", "rsa:2048", "-nodes", "-keyout"];
  await run(
    "req",
    "-x509",
    ...key,
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "1",
    "-subj",
    "/CN=ttg-ca",
  );
  await run("req", ...key, "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
  await run(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.crt",
    "-days",
    "1",
    "-extfile",
    "ext.cnf",
  );
  return await Deno.readTextFile(`${dir}/ca.crt`);
}
