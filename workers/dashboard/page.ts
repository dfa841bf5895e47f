/**
 * The dashboard's page: one HTML shell for every path the page shows (`/`, `/jobs/{id}`) and
 * the files it loads, all compiled into the program as strings (no build step, no CDN: the page
 * works offline, from `deno run`, a bundle, the compiled binary and the image). Every response
 * carries a Content-Security-Policy that allows only the dashboard's own files.
 *
 * @module
 */
import { VERSION } from "../version.ts";
import { APP_JS, ICON_SVG } from "./assets/app.ts";
import { CHARTS_JS } from "./assets/charts.ts";
import { DOM_JS } from "./assets/dom.ts";
import { JOB_VIEW_JS } from "./assets/job_view.ts";
import { JOBS_VIEW_JS } from "./assets/jobs_view.ts";
import { STYLE_CSS } from "./assets/style.ts";

/** The page's HTML: the header, the banner, the view the script fills, the dialog, the toast. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>TTG dashboard</title>
<link rel="icon" href="/assets/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/style.css">
<script type="module" src="/assets/app.js"></script>
</head>
<body>
<header class="top">
  <a class="brand" href="/">TTG</a>
  <nav><a href="/">Jobs</a></nav>
  <div class="meta"><span id="backend"></span><span id="live" class="live">connecting</span><span>ttg ${VERSION}</span></div>
</header>
<div id="banner" class="banner" role="alert" hidden></div>
<main id="main"></main>
<dialog id="confirm">
  <form method="dialog">
    <p id="confirm-text"></p>
    <div class="buttons">
      <button value="cancel" id="confirm-cancel">Cancel</button>
      <button value="ok" id="confirm-ok" class="primary">Confirm</button>
    </div>
  </form>
</dialog>
<div id="toast" class="toast" role="status" aria-live="polite"></div>
</body>
</html>
`;

/** A file the page loads. */
export interface Asset {
  readonly type: string;
  readonly body: string;
}

const JS = "text/javascript; charset=utf-8";

/** The page's files by path. */
export const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ["/assets/app.js", { type: JS, body: APP_JS }],
  ["/assets/dom.js", { type: JS, body: DOM_JS }],
  ["/assets/charts.js", { type: JS, body: CHARTS_JS }],
  ["/assets/jobs_view.js", { type: JS, body: JOBS_VIEW_JS }],
  ["/assets/job_view.js", { type: JS, body: JOB_VIEW_JS }],
  ["/assets/style.css", { type: "text/css; charset=utf-8", body: STYLE_CSS }],
  ["/assets/icon.svg", { type: "image/svg+xml", body: ICON_SVG }],
]);

/** Headers of every response: only the dashboard's own files, no framing, no referrer. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; "),
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

/** True for a path the page itself shows (the shell is served for it). */
export function isPagePath(pathname: string): boolean {
  return pathname === "/" || pathname === "/jobs" || /^\/jobs\/[^/]+\/?$/.test(pathname);
}
