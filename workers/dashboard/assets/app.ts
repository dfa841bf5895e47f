/**
 * The page's entry script (`/assets/app.js`, an ES module): takes the token from the URL, then
 * shows the jobs page at `/` or a job's page at `/jobs/{id}`.
 *
 * @module
 */

/** `/assets/app.js`. */
export const APP_JS = String.raw`
import { adoptToken, h } from "./dom.js";
import { jobsView } from "./jobs_view.js";
import { jobView } from "./job_view.js";

adoptToken();
const main = document.getElementById("main");
const path = location.pathname;
const job = /^\/jobs\/([^/]+)\/?$/.exec(path);
if (path === "/" || path === "/jobs" || path === "/jobs/") jobsView(main);
else if (job) jobView(main, decodeURIComponent(job[1]));
else main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "/" }, "← all jobs")));
`;

/** `/assets/icon.svg`: the tab's icon (four cells of a sweep map). */
export const ICON_SVG =
  `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="7" height="7" fill="#2e9d5b"/><rect x="9" width="7" height="7" fill="#2e9d5b"/><rect y="9" width="7" height="7" fill="#2f6fd6"/><rect x="9" y="9" width="7" height="7" fill="#d33a3a"/></svg>`;
