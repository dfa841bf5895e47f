// deno-lint-ignore-file no-explicit-any -- tests walk the generated objects as plain JSON
/**
 * deploy/'s `job.command`: validated like every field, written as TTG_CMD (a JSON argv) on the
 * worker and submit containers, and read back by workers/settings.ts as the same argv.
 *
 * @module
 */
import "../tasks/node_warnings.ts";
import assert from "node:assert/strict";
import { resolveConfig } from "../deploy/config.ts";
import { plain, synth } from "../deploy/synth.ts";
import { resolveSettings } from "../workers/settings.ts";

const SECRET = "golden-not-a-real-secret-0001";
const COMMAND = ["python3", "/app/sim.py", "--fast"];

function envOf(objects: Record<string, any>[], name: string): Record<string, string> {
  const object = objects.find((o) => o.metadata.name === name)!;
  const container = object.spec.template.spec.containers[0];
  return Object.fromEntries(
    (container.env as { name: string; value?: string }[]).map((e) => [e.name, e.value ?? ""]),
  );
}

Deno.test("job.command sets TTG_CMD on the worker and submit containers; settings read the same argv", () => {
  const { manifests } = synth({ backend: "redis", job: { command: COMMAND } }, {
    randomSecret: () => SECRET,
  });
  const objects = manifests.map((m) => plain(m.object)) as Record<string, any>[];
  for (const name of ["ttg-worker", "ttg-submit"]) {
    const env = envOf(objects, name);
    assert.equal(env.TTG_CMD, JSON.stringify(COMMAND), name);
    assert.deepEqual(resolveSettings({}, (k) => env[k]).command, COMMAND);
  }
  const without = synth({ backend: "redis" }, { randomSecret: () => SECRET }).manifests
    .map((m) => plain(m.object)) as Record<string, any>[];
  assert.equal(envOf(without, "ttg-worker").TTG_CMD, undefined);
});

Deno.test("a bad job.command is a problem naming the field", () => {
  const problems = (props: Parameters<typeof resolveConfig>[0]) =>
    resolveConfig(props, { randomSecret: () => SECRET }).problems.map((p) =>
      `${p.field}: ${p.message}`
    );
  assert.deepEqual(problems({ job: { command: [] } }), [
    "job.command: expected a list of 1 to 64 non-empty strings (a program and its arguments), got an array",
  ]);
  assert.deepEqual(problems({ job: { command: ["python3", ""] } }), [
    'job.command[1]: expected non-empty strings (a program and its arguments), got ""',
  ]);
  assert.deepEqual(problems({ job: { command: "python3 sim.py" as never } }), [
    'job.command: expected a list of 1 to 64 non-empty strings (a program and its arguments), got "python3 sim.py"',
  ]);
  assert.deepEqual(problems({ job: { command: COMMAND, module: "/app/job.ts" } }), [
    "job.command: expected unset with job.module (a job is a module or a command)",
  ]);
  assert.deepEqual(problems({ mode: "static", job: { command: COMMAND } }), [
    'job.command: expected unset with mode "static" (static mode runs ttg.sweep)',
  ]);
});
