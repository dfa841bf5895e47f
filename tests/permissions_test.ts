/**
 * Least-privilege TypeScript jobs: a handler thread gets exactly what its job declares
 * (`defineJob({ permissions })`), its code loading without any, and an undeclared access fails
 * the chunk as unrecoverable with the permission named.
 *
 * @module
 */
import assert from "node:assert/strict";
import { defineJob } from "../jobs/define_job.ts";
import { planSweep } from "../workers/plan.ts";
import { silentLogger } from "../workers/log.ts";
import { ThreadPoolExecutor } from "../workers/thread_pool.ts";
import reach from "./fixtures/reach_job.ts";

const REACH = new URL("./fixtures/reach_job.ts", import.meta.url).href;

function setup() {
  return ThreadPoolExecutor.create({
    moduleUrl: REACH,
    jobName: reach.name,
    size: 1,
    log: silentLogger,
    permissions: reach.permissions,
  });
}

function run(pool: ThreadPoolExecutor, args: Record<string, unknown>) {
  const [task] = planSweep({ jobId: "perm", handler: reach.name, params: 1, chunkSize: 1, args })
    .tasks;
  return pool.execute({
    task: task!,
    attempt: 1,
    workerId: "w",
    timeoutMs: 10_000,
    signal: new AbortController().signal,
  });
}

Deno.test("a handler thread reads the environment variable its job declares, and no other", async () => {
  Deno.env.set("TTG_TEST_GRANTED", "yes");
  await using pool = await setup();
  assert.deepEqual(await run(pool, { env: "TTG_TEST_GRANTED" }).then((o) => o.ok && o.value), {
    env: "yes",
  });
  const denied = await run(pool, { env: "HOME" });
  assert.equal(denied.ok, false);
  assert.equal(!denied.ok && denied.kind, "unrecoverable", "dead-lettered at once, not retried");
  assert.equal(
    !denied.ok && denied.reason,
    'PermissionDenied: job "test.reach" did not declare env access to "HOME" (declare it in defineJob({ permissions: { env: [...] } }))',
  );
});

Deno.test("a job's code loads with no permission at all (mod.ts, a module beside it); a file it reads is denied", async () => {
  await using pool = await setup();
  assert.deepEqual(await run(pool, {}).then((o) => o.ok && o.value), { nothing: "parameter 0" });
  const other = new URL("./fixtures/poison_job.ts", import.meta.url).pathname;
  const denied = await run(pool, { read: other });
  assert.equal(!denied.ok && denied.kind, "unrecoverable");
  assert.match(!denied.ok ? denied.reason : "", new RegExp(`read access to "${other}"`));
});

Deno.test("a fetch the job did not declare is unrecoverable, found through the error's causes", async () => {
  await using pool = await setup();
  const denied = await run(pool, { fetch: "http://127.0.0.1:18181/prices" });
  assert.equal(!denied.ok && denied.kind, "unrecoverable");
  assert.match(
    !denied.ok ? denied.reason : "",
    /^PermissionDenied: job "test.reach" did not declare net access to "127\.0\.0\.1:18181"/,
  );
});

Deno.test("defineJob() rejects a permission it does not know, naming it", () => {
  assert.throws(
    () => defineJob({ name: "x", run: () => 1, permissions: { run: ["ls"] } as never }),
    /Invalid permissions of job "x": unknown permission "run"/,
  );
  assert.throws(
    () => defineJob({ name: "x", run: () => 1, permissions: { net: [""] } }),
    /"net" must be true or a list of non-empty strings/,
  );
});

Deno.test("a job that declares more than the worker process may do fails to load, saying so", async () => {
  // A worker with the compiled binary's narrow write permission, and a job that wants more.
  const script = `
    import { ThreadPoolExecutor } from ${
    JSON.stringify(new URL("../workers/thread_pool.ts", import.meta.url).href)
  };
    import { silentLogger } from ${
    JSON.stringify(new URL("../workers/log.ts", import.meta.url).href)
  };
    try {
      await ThreadPoolExecutor.create({ moduleUrl: ${JSON.stringify(REACH)}, jobName: "test.reach",
        size: 1, log: silentLogger, permissions: { write: ["/etc"] } });
      console.log("started");
    } catch (error) { console.log(error.code, error.message); }`;
  const dir = await Deno.makeTempDir({ prefix: "ttg-perm-" });
  const file = `${dir}/escalate.ts`;
  await Deno.writeTextFile(file, script);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-worker-options", "--allow-read", `--allow-write=${dir}`, file],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output().finally(() => Deno.remove(dir, { recursive: true }));
  const text = new TextDecoder().decode(out.stdout);
  assert.match(text, /^JOB_LOAD Cannot start handler threads for job "test.reach": it declares/);
  assert.match(text, /more than this worker's own permissions allow/);
});
