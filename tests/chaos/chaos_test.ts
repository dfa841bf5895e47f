/**
 * The chaos suite (issue 14): every scenario of tests/chaos/scenarios.ts on every broker it
 * applies to, at the size `TTG_CHAOS_SIZE` gives (`small` by default, as CI runs it; `deno task
 * chaos --size large` runs 10×). A broker a scenario does not apply to is skipped with its reason;
 * a missing broker or tool is skipped locally and fails where the run requires it.
 *
 * @module
 */
import { skipReason } from "../targets.ts";
import { rabbitProblem, redisProblem } from "../targets.ts";
import { privateServerProblem } from "../servers.ts";
import { diskFull, diskFullProblem } from "./disk_full.ts";
import { type ChaosScenario, SCENARIOS, type Size } from "./scenarios.ts";
import { type Backend, privateStore, sharedStore } from "./stores.ts";

const size: Size = Deno.env.get("TTG_CHAOS_SIZE") === "large" ? "large" : "small";
const only = Deno.env.get("TTG_CHAOS_ONLY")?.split(",").map((s) => s.trim()).filter(Boolean);

const problems: Record<Backend, string | undefined> = {
  sqlite: undefined,
  redis: await redisProblem(),
  rabbitmq: await rabbitProblem(),
};

function register(scenario: ChaosScenario, backend: Backend): void {
  const applies = scenario.backends[backend];
  const problem = scenario.crashes && backend !== "sqlite"
    ? privateServerProblem(backend) ?? problems[backend]
    : problems[backend];
  const skip = typeof applies === "string"
    ? applies
    : applies === undefined
    ? "not a scenario of this broker"
    : skipReason(backend, problem);
  Deno.test({
    name: `chaos (${size}): ${backend}: ${scenario.name}${skip ? ` (skipped: ${skip})` : ""}`,
    ignore: skip !== undefined ||
      (only !== undefined && !only.some((o) => scenario.name.startsWith(o))),
    sanitizeOps: true,
    sanitizeResources: true,
    async fn() {
      if (problem) throw new Error(`${problem}, and this run requires ${backend}`);
      const store = scenario.crashes && backend !== "sqlite"
        ? await privateStore(backend)
        : await sharedStore(backend);
      try {
        await scenario.run(store, size);
      } finally {
        await store.cleanup();
      }
    },
  });
}

for (const scenario of SCENARIOS) {
  for (const backend of ["sqlite", "redis", "rabbitmq"] as const) register(scenario, backend);
}

const diskProblem = await diskFullProblem();
const diskSkip = skipReason("tmpfs", diskProblem);
Deno.test({
  name:
    `chaos (${size}): sqlite: disk full: the database's file system fills mid-job, then space is back${
      diskSkip ? ` (skipped: ${diskSkip})` : ""
    }`,
  ignore: diskSkip !== undefined ||
    (only !== undefined && !only.some((o) => "disk full".startsWith(o))),
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    if (diskProblem) throw new Error(`${diskProblem}, and this run requires a tmpfs`);
    await diskFull(size);
  },
});
