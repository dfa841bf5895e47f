/**
 * Real Chromium for the dashboard's tests: Debian's `chromium` package (never a browser
 * download), driven by playwright-core, headless, with a new empty profile and everything that
 * would reach the network on its own turned off. A missing browser is a skip with its reason,
 * or a failure where the run requires it (`TTG_TEST_REQUIRE=chromium`, tests/targets.ts).
 *
 * @module
 */
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { required, type Target } from "./targets.ts";

/** The browser binary (`apt-get install chromium`). */
export const CHROMIUM = Deno.env.get("TTG_CHROMIUM") ?? "/usr/bin/chromium";

/** Where the tests write screenshots (gitignored). */
export const ARTIFACTS = new URL("./artifacts/", import.meta.url);

/** Why Chromium cannot be used, or undefined. */
export function chromiumProblem(): string | undefined {
  try {
    const info = Deno.statSync(CHROMIUM);
    return info.isFile ? undefined : `${CHROMIUM} is not a file`;
  } catch {
    return `Chromium is not installed at ${CHROMIUM} (apt-get install chromium)`;
  }
}

/**
 * `target` as a browser test sees it: also skipped, with the reason, when Chromium is missing
 * and the run does not require it (where it does, {@linkcode launchBrowser} fails the test).
 */
export function withChromium(target: Target): Target {
  const problem = chromiumProblem();
  if (problem === undefined || required("chromium")) return target;
  return { ...target, skip: target.skip ?? problem };
}

/** A running Chromium: its one context, closed (and its profile removed) on dispose. */
export interface Browser extends AsyncDisposable {
  readonly context: BrowserContext;
  /** A new tab of `width` × `height` whose console errors and page errors are collected. */
  page(width?: number, height?: number): Promise<{ page: Page; errors: string[] }>;
}

/** Starts Chromium, headless, on a new empty profile. */
export async function launchBrowser(): Promise<Browser> {
  const problem = chromiumProblem();
  if (problem) throw new Error(`${problem}, and this run requires chromium`);
  const profile = await Deno.makeTempDir({ prefix: "ttg-chromium-" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    async page(width = 1280, height = 900) {
      const page = await context.newPage();
      await page.setViewportSize({ width, height });
      const errors: string[] = [];
      page.on("console", (message) => {
        if (message.type() === "error") errors.push(`console: ${message.text()}`);
      });
      page.on("pageerror", (error) => errors.push(`page error: ${error.message}`));
      return { page, errors };
    },
    async [Symbol.asyncDispose]() {
      await context.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}

/** Saves a full-page screenshot as tests/artifacts/`name`.png; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  const path = new URL(`${name}.png`, ARTIFACTS).pathname;
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** True when the page is no wider than its viewport (nothing to scroll sideways). */
export async function fitsWidth(page: Page): Promise<boolean> {
  // A string, evaluated in the page: this module is type-checked without the DOM's types.
  return await page.evaluate<boolean>(
    "document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1",
  );
}
