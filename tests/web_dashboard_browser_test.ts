/**
 * `ttg dashboard` in real Chromium (Debian's package, driven by playwright-core), against the
 * real program over real jobs run by real `ttg worker` processes, on SQLite and on Redis: the
 * jobs page lists the job and the job page's progress rises to 100%; the sweep map shows the
 * dead-lettered cells of a poisoned job at its poisoned parameters; with the token, "replay"
 * moves a dead letter back to the queue and "cancel" stops a running job (the broker's state
 * checked after each click), and without it the same requests get 401 and change nothing; the
 * pages work at 1280 and 390 px with no console error; a broker that fails is shown as
 * unreachable and the page recovers. Screenshots go to tests/artifacts/.
 */
import "../tasks/node_warnings.ts";
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import type { Broker } from "../brokers/broker.ts";
import { openBroker } from "../brokers/open.ts";
import { serveDashboard } from "../workers/dashboard/server.ts";
import { planSweep, type SweepPlanOptions } from "../workers/plan.ts";
import { submitPlan } from "../workers/run.ts";
import { probeBroker } from "./broker_probe.ts";
import { type Browser, fitsWidth, launchBrowser, screenshot, withChromium } from "./browser.ts";
import { readUntil, spawnTtg, tempDir, until } from "./helpers.ts";
import { type Target, type TargetRun, targets, targetTest } from "./targets.ts";

const POISON_JOB = new URL("./fixtures/poison_job.ts", import.meta.url).pathname;

function jobId(kind: string): string {
  return `web-${kind}-${crypto.randomUUID().slice(0, 6)}`;
}

/** A `ttg dashboard` process on a free port, and the URL and token it printed. */
async function startDashboard(run: TargetRun, extra: readonly string[] = []) {
  const child = spawnTtg(["dashboard", ...run.args, "--port", "0", ...extra]);
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stderr = "";
  const drainErr = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (stderr += chunk) }),
  );
  let drainOut = Promise.resolve();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await Promise.all([drainOut, drainErr]);
  };
  let printed: string;
  try {
    printed = await readUntil(stdout, () => true, {
      timeoutMs: 60_000,
      what: "ttg dashboard's first line",
    });
  } catch (error) {
    await stop();
    throw new Error(`ttg dashboard did not start: ${(error as Error).message}\n${stderr}`);
  }
  drainOut = (async () => {
    while (!(await stdout.read()).done) { /* the rest of its output */ }
  })();
  const match = /at (http:\/\/[^/\s]+)\/\?token=([A-Za-z0-9_-]+)$/.exec(printed);
  if (!match) {
    await stop();
    throw new Error(`ttg dashboard did not start: ${printed}\n${stderr}`);
  }
  return { url: match[1]!, token: match[2]!, stop };
}

/** `ttg worker` processes on `job`, until they are idle; each must exit 0. */
async function runWorkers(
  run: TargetRun,
  job: string,
  count: number,
  extra: readonly string[] = [],
): Promise<void> {
  const outputs = await Promise.all(Array.from({ length: count }, (_, i) =>
    spawnTtg([
      "worker",
      ...run.args,
      "--job-id",
      job,
      "--worker-id",
      `${job}-w${i}`,
      "--idle-timeout",
      "1",
      ...extra,
    ]).output()));
  for (const out of outputs) {
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  }
}

/** What a browser test has: the job on the broker, a dashboard over it, and Chromium. */
interface Scene {
  readonly job: string;
  /** A broker handle on the run's store, to check what a click did. */
  readonly broker: Broker;
  readonly dashboard: Awaited<ReturnType<typeof startDashboard>>;
  readonly browser: Browser;
}

/**
 * Submits a sweep as `ttg submit` does (planSweep, submitPlan), starts `ttg dashboard` with
 * `flags` and Chromium, runs `fn`, then stops them and resets the job.
 */
async function withScene(
  run: TargetRun,
  sweep: Omit<SweepPlanOptions, "jobId"> & { readonly kind: string },
  flags: readonly string[],
  fn: (scene: Scene) => Promise<void>,
): Promise<void> {
  const { kind, ...options } = sweep;
  const job = jobId(kind);
  const broker = await run.open("observer");
  try {
    await submitPlan(broker, planSweep({ jobId: job, ...options }));
    const dashboard = await startDashboard(run, flags);
    try {
      await using browser = await launchBrowser();
      await fn({ job, broker, dashboard, browser });
    } finally {
      await dashboard.stop();
    }
  } finally {
    await broker.reset(job).catch(() => {});
    await broker.close();
  }
}

/** How many cells of the sweep map are in `state`. */
function cells(page: Page, state: string): Promise<number> {
  return page.locator(`#sweep-map rect[data-state="${state}"]`).count();
}

async function progressOf(page: Page): Promise<number | undefined> {
  const value = await page.getAttribute("#progress-pct", "data-progress");
  return value === null || value === "" ? undefined : Number(value);
}

/** Clicks `selector`, then the confirmation dialog's confirm button. */
async function clickConfirmed(page: Page, selector: string): Promise<void> {
  await page.click(selector);
  await page.waitForSelector("dialog#confirm[open]");
  await page.click("#confirm-ok");
}

function browserTest(target: Target, name: string, fn: (run: TargetRun) => Promise<void>) {
  targetTest(withChromium(target), name, fn);
}

for (const target of (await targets()).filter((t) => t.backend !== "rabbitmq")) {
  const backend = target.backend;

  browserTest(
    target,
    "the jobs page lists the job; its page's progress rises while workers run and reaches 100%, at 1280 and 390 px, with no console error",
    (run) =>
      withScene(
        run,
        {
          kind: "progress",
          params: 800,
          chunkSize: 10,
          args: { work_ms: 20, fault_rate: 0 },
        },
        [],
        async ({ job, broker, dashboard, browser }) => {
          const { page, errors } = await browser.page(1280, 900);
          await page.goto(`${dashboard.url}/?token=${dashboard.token}`);
          const row = page.locator(`#jobs tr[data-job-id="${job}"]`);
          await row.waitFor();
          assert.equal(await row.getAttribute("data-state"), "running");
          assert.equal(await row.locator(".pct").textContent(), "0%");
          assert.equal(new URL(page.url()).search, "", "the token left the address bar");
          await screenshot(page, `${backend}-jobs-1280`);
          await row.locator("a").click();
          await page.waitForURL(`**/jobs/${job}`);
          await until(async () => (await progressOf(page)) === 0 || undefined, 10_000, "0%");
          const workers = runWorkers(run, job, 2, ["--concurrency", "2"]);
          const seen: number[] = [];
          let shot = false;
          await until(
            async () => {
              const p = await progressOf(page);
              if (p !== undefined && seen[seen.length - 1] !== p) seen.push(p);
              if (!shot && p !== undefined && p >= 25 && p < 90) {
                shot = true; // the job page mid-run (docs/dashboard.png is one of these)
                await screenshot(page, `${backend}-job-running-1280`);
              }
              return p === 100 || undefined;
            },
            120_000,
            "the job page to reach 100%",
          );
          await workers;
          assert.ok(seen.some((p) => p > 0 && p < 100), `progress seen: ${seen.join(", ")}`);
          assert.deepEqual(seen, [...seen].sort((a, b) => a - b), "progress never went back");
          await page.locator('#job-state [data-state="completed"]').waitFor();
          assert.equal((await broker.stats(job)).completed, 80);
          assert.equal(await page.locator("#sweep-map rect").count(), 800);
          await until(
            async () => (await cells(page, "done")) === 800 || undefined,
            10_000,
            "every cell of the map done",
          );
          await screenshot(page, `${backend}-job-1280`);
          assert.ok(await fitsWidth(page), "the job page is wider than 1280 px");
          await page.setViewportSize({ width: 390, height: 844 });
          await page.waitForTimeout(300);
          assert.ok(await fitsWidth(page), "the job page is wider than 390 px");
          assert.ok(await page.locator("#sweep-map").isVisible());
          await screenshot(page, `${backend}-job-390`);
          await page.goto(`${dashboard.url}/`);
          await row.waitFor();
          assert.ok(await fitsWidth(page), "the jobs page is wider than 390 px");
          await screenshot(page, `${backend}-jobs-390`);
          assert.deepEqual(errors, []);
        },
      ),
  );

  browserTest(
    target,
    "the sweep map shows a poisoned job's dead-lettered cells at its poisoned parameters; replay with the token puts one back in the queue, and without it gets 401 and changes nothing",
    (run) =>
      withScene(
        run,
        {
          kind: "poison",
          handler: "test.poison",
          params: 200,
          chunkSize: 20,
          args: { poison: [37, 151] },
        },
        ["--allow-actions"],
        async ({ job, broker, dashboard, browser }) => {
          await runWorkers(run, job, 1, ["--job", POISON_JOB, "--max-attempts", "1"]);
          const letters = await broker.deadLetters.list(job);
          assert.deepEqual(letters.map((d) => d.task?.start).sort((a, b) => a! - b!), [37, 151]);
          const at37 = letters.find((d) => d.task?.start === 37)!;
          const { page, errors } = await browser.page(1280, 900);
          await page.goto(`${dashboard.url}/jobs/${job}?token=${dashboard.token}`);
          const dead = page.locator('#sweep-map rect[data-state="dead-lettered"]');
          await until(async () => (await dead.count()) === 2 || undefined, 15_000, "2 dead cells");
          assert.deepEqual(
            await dead.evaluateAll((rects) => rects.map((c) => c.getAttribute("data-start"))),
            ["37", "151"],
          );
          assert.equal(await cells(page, "done"), 198);
          const row37 = page.locator('#dead-letters tr[data-start="37"]');
          assert.match(await row37.innerText(), /parameter 37 is poison/);
          await screenshot(page, `${backend}-poison-1280`);

          // The same requests without the token: from a script, and from a tab that has none.
          const refused = [["dead-letters/replay", { ids: [at37.id] }], ["cancel", {}]] as const;
          for (const [path, body] of refused) {
            const response = await fetch(`${dashboard.url}/api/jobs/${job}/${path}`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify(body),
            });
            assert.equal(response.status, 401, `${path} without the token`);
            await response.body?.cancel();
          }
          const stranger = await browser.page(1280, 900);
          await stranger.page.goto(`${dashboard.url}/jobs/${job}`);
          await clickConfirmed(stranger.page, `button[data-replay="${at37.id}"]`);
          await stranger.page.locator(".toast.bad").waitFor();
          assert.match(await stranger.page.locator(".toast").innerText(), /failed.*token/);
          const untouched = await broker.stats(job);
          assert.deepEqual(
            [untouched.deadLettered, untouched.ready, untouched.control],
            [2, 0, "running"],
          );

          await clickConfirmed(page, `button[data-replay="${at37.id}"]`);
          await until(
            async () => {
              const s = await broker.stats(job);
              return s.deadLettered === 1 && s.ready === 1 || undefined;
            },
            10_000,
            "the replayed dead letter back in the queue",
          );
          assert.deepEqual((await broker.deadLetters.list(job)).map((d) => d.task?.start), [151]);
          await row37.waitFor({ state: "detached" });
          await until(
            async () =>
              await page.getAttribute('#sweep-map rect[data-start="37"]', "data-state") ===
                "waiting" || undefined,
            10_000,
            "cell 37 waiting again",
          );
          assert.deepEqual(errors, []);
        },
      ),
  );

  browserTest(
    target,
    "cancel with the token stops a running job at the broker; without it the request gets 401 and the job runs on",
    (run) =>
      withScene(
        run,
        {
          kind: "cancel",
          params: 400,
          chunkSize: 10,
          args: { work_ms: 50, fault_rate: 0 },
        },
        ["--allow-actions"],
        async ({ job, broker, dashboard, browser }) => {
          const workers = runWorkers(run, job, 1, ["--concurrency", "1"]);
          const { page, errors } = await browser.page(390, 844);
          await page.goto(`${dashboard.url}/jobs/${job}?token=${dashboard.token}`);
          await until(
            async () => ((await progressOf(page)) ?? 0) > 0 || undefined,
            60_000,
            "the job to make progress",
          );
          const refused = await fetch(`${dashboard.url}/api/jobs/${job}/cancel`, {
            method: "POST",
          });
          assert.equal(refused.status, 401);
          await refused.body?.cancel();
          assert.equal((await broker.stats(job)).control, "running");
          await clickConfirmed(page, "#action-cancel");
          await until(
            async () => (await broker.stats(job)).control === "cancelled" || undefined,
            10_000,
            "the job cancelled at the broker",
          );
          await page.locator('#job-state [data-state="cancelled"]').waitFor();
          await workers;
          const s = await broker.stats(job);
          assert.ok(s.cancelled > 0, `nothing was cancelled: ${JSON.stringify(s)}`);
          assert.ok(s.completed < 40, "the job ran to its end");
          assert.equal(s.ready + s.inFlight + s.delayed, 0, JSON.stringify(s));
          await until(
            async () =>
              (await cells(page, "cancelled")) > 0 && (await cells(page, "running")) === 0 ||
              undefined,
            10_000,
            "cancelled cells and none running on the map",
          );
          await page.locator('#fleet [data-state="stopped"]').waitFor();
          assert.ok(await fitsWidth(page), "the job page is wider than 390 px");
          await screenshot(page, `${backend}-cancelled-390`);
          assert.deepEqual(errors, []);
        },
      ),
  );
}

const sqlite = (await targets()).find((t) => t.backend === "sqlite")!;
browserTest(
  sqlite,
  "a dashboard whose broker fails shows 'broker unreachable' and recovers when the broker answers",
  async () => {
    await using dir = await tempDir();
    const raw = await openBroker({ backend: "sqlite", sqlitePath: `${dir.path}/ttg.db` });
    await submitPlan(raw, planSweep({ jobId: "flaky", params: 100, chunkSize: 10 }));
    const probe = probeBroker(raw);
    const server = serveDashboard({
      broker: probe.broker,
      host: "127.0.0.1",
      port: 0,
      token: "test-token-0123456789abcdef",
    });
    try {
      await using browser = await launchBrowser();
      const { page } = await browser.page(1280, 900);
      await page.goto(`${server.url}/`);
      await page.locator('#jobs tr[data-job-id="flaky"]').waitFor();
      probe.state.down = true;
      await page.locator("#banner.error").waitFor();
      assert.match(await page.locator("#banner").innerText(), /broker unreachable/i);
      assert.match(await page.locator("#live").innerText(), /broker unreachable/);
      await screenshot(page, "sqlite-unreachable-1280");
      probe.state.down = false;
      await page.locator("#banner").waitFor({ state: "hidden" });
      await page.locator('#jobs tr[data-job-id="flaky"]').waitFor();
      assert.equal(await page.locator("#live").innerText(), "live");
    } finally {
      await server.close();
      await raw.close();
    }
  },
);
