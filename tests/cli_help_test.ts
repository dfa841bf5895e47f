/** `ttg <command> --help`: every flag states its default, and the default is the one used. */
import assert from "node:assert/strict";
import type { Command } from "commander";
import { buildProgram } from "../workers/cli.ts";
import { resolveSettings } from "../workers/settings.ts";

function* commands(command: Command): Generator<Command> {
  yield command;
  for (const sub of command.commands) yield* commands(sub);
}

/** The defaults the settings resolve to with no flag and no environment, as help shows them. */
function resolvedDefaults(): Record<string, string> {
  const s = resolveSettings({}, () => undefined);
  return {
    "--sqlite-path": s.sqlitePath,
    "--rabbitmq-queue-type": s.queueType,
    "--job-id": s.jobId,
    "--lease-ms": String(s.leaseMs),
    "--max-attempts": String(s.maxAttempts),
    "--max-crashes": String(s.maxCrashes),
    "--retry-base-ms": String(s.retryBaseMs),
    "--log-level": s.logLevel,
    "--log-format": s.logFormat,
    "--concurrency": String(s.concurrency),
    "--batch": String(s.batch),
    "--heartbeat-ms": String(s.heartbeatMs),
    "--grace": String(s.graceMs / 1000),
    "--chunk-timeout": String(s.chunkTimeoutMs / 1000),
    "--connect-timeout": String(s.connectTimeoutMs / 1000),
    "--min-split": String(s.minSplit),
    "--execution": s.execution,
    "--params": String(s.params),
    "--chunk-size": String(s.chunkSize),
    "--work-ms": String(s.workMs),
    "--fault-rate": String(s.faultRate),
    "--priority": String(s.priority),
    "--args": JSON.stringify(s.args),
    "--workers": String(s.workers),
    "--idle-timeout": String(s.idleTimeoutMs / 1000),
    "--index": String(s.completionIndex),
  };
}

Deno.test("every flag that takes a value states its default in --help, and it is the default settings.ts applies", () => {
  const defaults = resolvedDefaults();
  const checked = new Set<string>();
  for (const command of commands(buildProgram())) {
    for (const option of command.options) {
      if (!option.required) continue; // a switch (--json) or --help
      const flag = option.long!;
      const stated = option.description.match(/\(default:? ([^;),]+)[;),]/)?.[1];
      assert.ok(stated, `${command.name()} ${flag} states no default: ${option.description}`);
      if (flag === "--job-id" && command.name() === "run") {
        assert.equal(stated, "a new run-<date>-<time> id");
      } else if (flag in defaults) {
        assert.equal(stated, defaults[flag], `${command.name()} ${flag}`);
        checked.add(flag);
      }
    }
  }
  assert.deepEqual([...checked].sort(), Object.keys(defaults).sort(), "a default was not shown");
});

Deno.test("only the commands that run chunks take the failure-policy and logging flags", () => {
  const policy = ["--lease-ms", "--max-attempts", "--max-crashes", "--retry-base-ms"]
    .concat(["--log-level", "--log-format"]);
  const taking = [];
  for (const command of commands(buildProgram())) {
    const flags = command.options.map((o) => o.long);
    const has = policy.filter((f) => flags.includes(f));
    assert.ok(has.length === 0 || has.length === policy.length, command.name());
    if (has.length) taking.push(command.name());
  }
  assert.deepEqual(taking, ["run", "worker"]);
});
