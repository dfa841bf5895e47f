/**
 * `ttg monitor` against real running jobs: the JSON snapshot on every broker, the live view in a
 * real terminal (tmux), bad input, and a broker that goes away and comes back.
 */
import assert from "node:assert/strict";
import { spawnTtg, ttg, ttgArgs, until } from "./helpers.ts";
import { PrivateRedis, privateServerProblem } from "./servers.ts";
import { required, skipReason, targets, targetTest } from "./targets.ts";

function jobId(kind: string): string {
  return `mon-${kind}-${crypto.randomUUID().slice(0, 6)}`;
}

for (const target of await targets()) {
  targetTest(
    target,
    "ttg monitor --once --json reads a running job: state, counters and its workers",
    async (run) => {
      const job = jobId("json");
      const base = [...run.args, "--job-id", job];
      const submit = await ttg(["submit", ...base, "--params", "2000", "--chunk-size", "10"]
        .concat(["--work-ms", "5"]));
      assert.equal(submit.code, 0, submit.stderr);
      const worker = spawnTtg(["worker", ...base, "--worker-id", "mon-w1", "--idle-timeout", "0"]);
      const observer = await run.open("observer");
      try {
        const snapshot = await until(
          async () => {
            const out = await ttg(["monitor", ...base, "--once", "--json"]);
            assert.equal(out.code, 0, out.stderr);
            const parsed = JSON.parse(out.stdout);
            const job = parsed.jobs[0];
            return job.completed > 0 && job.workers.length > 0 ? parsed : undefined;
          },
          30_000,
          "the monitor to see the running job and its worker",
        );
        const view = snapshot.jobs[0];
        assert.equal(view.job_id, job);
        assert.equal(view.state, "running");
        assert.equal(view.chunks, 200);
        for (const key of ["ready", "in_flight", "retrying", "completed", "dead_lettered"]) {
          assert.equal(typeof view[key], "number", key);
        }
        assert.deepEqual(
          Object.keys(view.workers[0]).filter((k) =>
            ["id", "state", "chunks", "last_seen"].includes(k)
          ),
          ["id", "state", "chunks", "last_seen"],
        );
        assert.equal(view.workers[0].id, "mon-w1");
        assert.ok(
          ["busy", "idle", "starting"].includes(view.workers[0].state),
          view.workers[0].state,
        );
        const all = JSON.parse(
          (await ttg(["monitor", ...run.args, "--all", "--once", "--json"])).stdout,
        );
        assert.ok(
          all.jobs.some((j: { job_id: string }) => j.job_id === job),
          "--all lists the job",
        );
      } finally {
        worker.kill("SIGTERM");
        await worker.output();
        await observer.reset(job).catch(() => {});
        await observer.close();
      }
    },
  );
}

Deno.test("ttg monitor: a bad interval or an unknown job id is one line and exit code 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const db = ["--sqlite-path", `${dir}/ttg.db`];
    const interval = await ttg(["monitor", ...db, "--interval", "0"]);
    assert.deepEqual([interval.code, interval.stderr], [
      2,
      'ttg: Invalid --interval "0": expected a number of seconds from 0.1 to 3600\n',
    ]);
    const unknown = await ttg(["monitor", ...db, "--job-id", "nope", "--once"]);
    assert.deepEqual([unknown.code, unknown.stderr], [
      2,
      'ttg: Invalid --job-id "nope": expected the id of a job on this broker\n',
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const tmuxMissing = await new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" })
  .output().then((o) => (o.success ? undefined : "tmux does not run")).catch(() =>
    "tmux is not installed (apt-get install -y tmux)"
  );
const tmuxSkip = skipReason("tmux", tmuxMissing);

async function tmux(...args: string[]): Promise<string> {
  const out = await new Deno.Command("tmux", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`tmux ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

Deno.test({
  name:
    `ttg monitor in a real terminal redraws in place, shows the job and its fleet, and Ctrl-C exits 0 leaving the terminal clean${
      tmuxSkip ? ` (skipped: ${tmuxSkip})` : ""
    }`,
  ignore: tmuxSkip !== undefined,
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    if (tmuxMissing) throw new Error(`${tmuxMissing}, and this run requires tmux`);
    const dir = await Deno.makeTempDir();
    const session = `ttg-mon-${crypto.randomUUID().slice(0, 6)}`;
    const base = ["--sqlite-path", `${dir}/ttg.db`, "--job-id", "screen"];
    const worker = spawnTtg(["worker", ...base, "--worker-id", "tty-w1", "--idle-timeout", "0"]);
    try {
      const submit = await ttg(["submit", ...base, "--params", "3000", "--chunk-size", "10"]
        .concat(["--work-ms", "20"]));
      assert.equal(submit.code, 0, submit.stderr);
      const command = [Deno.execPath(), ...ttgArgs(["monitor", ...base, "--interval", "0.5"])]
        .map((a) => `'${a}'`).join(" ");
      // The shell prints the exit code after the monitor ends, so the test can read it.
      await tmux("new-session", "-d", "-s", session, "-x", "110", "-y", "30");
      await tmux("send-keys", "-t", session, `clear; ${command}; echo "exit=$?"`, "Enter");
      const screen = await until(
        async () => {
          const text = await tmux("capture-pane", "-p", "-t", session);
          const moving = /[1-9][0-9.]* chunks\/s now/.test(text); // a second sample: rates shown
          return /Job "screen" {2}running/.test(text) && /tty-w1/.test(text) && moving
            ? text
            : undefined;
        },
        30_000,
        "the monitor's screen",
      );
      await Deno.mkdir("tests/artifacts", { recursive: true });
      await Deno.writeTextFile("tests/artifacts/monitor-screen.txt", screen);
      assert.match(screen, /^TTG monitor · sqlite · 1 job\(s\)/m);
      assert.match(screen, /\[#*-*\] \d+% {2}chunks \d+\/300 {2}parameters \d+\/3000/);
      assert.match(screen, /Workers \(1\)/);
      const lines = screen.split("\n");
      assert.ok(lines.every((l) => [...l].length <= 110), "a line wider than the terminal");
      // Redrawn in place: the header appears once however long it ran.
      await new Promise((r) => setTimeout(r, 1500));
      const later = await tmux("capture-pane", "-p", "-t", session);
      assert.equal(
        later.match(/TTG monitor/g)?.length,
        1,
        "the screen scrolled instead of redrawing",
      );
      await tmux("send-keys", "-t", session, "C-c");
      const after = await until(
        async () => {
          const text = await tmux("capture-pane", "-p", "-t", session);
          return /exit=\d+/.test(text) ? text : undefined;
        },
        10_000,
        "the monitor to exit",
      );
      assert.match(after, /exit=0/);
      assert.doesNotMatch(after, /TTG monitor/, "the monitor's screen was left behind");
    } finally {
      await tmux("kill-session", "-t", session).catch(() => "");
      worker.kill("SIGTERM");
      await worker.output();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const redisPrivate = privateServerProblem("redis");
const redisSkip = redisPrivate && !required("redis") ? redisPrivate : undefined;

Deno.test({
  name:
    `ttg monitor says "broker unreachable, retrying" while Redis is down and carries on once it is back${
      redisSkip ? ` (skipped: ${redisSkip})` : ""
    }`,
  ignore: redisSkip !== undefined,
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    if (redisPrivate) throw new Error(`${redisPrivate}, and this run requires redis`);
    await using server = await PrivateRedis.start({ aof: true });
    const base = ["--backend", "redis", "--broker-url", server.url, "--job-id", "down"];
    const submit = await ttg(["submit", ...base, "--params", "100", "--chunk-size", "10"]);
    assert.equal(submit.code, 0, submit.stderr);
    const watcher = spawnTtg(["monitor", ...base, "--interval", "0.3"]);
    const lines: string[] = [];
    const reading = (async () => {
      for await (const text of watcher.stdout.pipeThrough(new TextDecoderStream())) {
        lines.push(...text.split("\n").filter(Boolean));
      }
    })();
    try {
      await until(
        () => lines.some((l) => / down running /.test(l)) || undefined,
        20_000,
        "a first line",
      );
      await server.kill();
      await until(
        () => lines.some((l) => /broker unreachable, retrying/.test(l)) || undefined,
        20_000,
        "the unreachable broker to be shown",
      );
      const shown = lines.length;
      await server.startAgain();
      await until(
        () => lines.slice(shown).some((l) => / down running /.test(l)) || undefined,
        30_000,
        "the monitor to carry on once Redis is back",
      );
    } finally {
      watcher.kill("SIGINT");
      const status = await watcher.status;
      await reading;
      await watcher.stderr.cancel().catch(() => {});
      assert.equal(status.code, 0, "Ctrl-C ends the monitor with exit code 0");
    }
  },
});
