/**
 * Test certificates made with openssl: a CA and a server certificate for 127.0.0.1 and
 * localhost, for the private TLS brokers the tests start.
 *
 * @module
 */

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
