/**
 * The jobs page's script (`/assets/jobs_view.js`, an ES module): every job of the broker with
 * its state, progress bar, rate, ETA, dead letters and age, from `GET /api/jobs` every second.
 *
 * @module
 */

/** `/assets/jobs_view.js`. */
export const JOBS_VIEW_JS = String.raw`
import { api, duration, every, h, num, percent, progressBar, rate, showStatus, stateBadge } from "./dom.js";

export function jobsView(main) {
  document.title = "Jobs · TTG";
  const body = h("tbody", {});
  const empty = h("p", { class: "empty", hidden: true },
    "No jobs on this broker yet: submit one with ttg submit or ttg run.");
  const table = h("table", { id: "jobs" },
    h("thead", {}, h("tr", {},
      h("th", {}, "Job"), h("th", {}, "State"), h("th", {}, "Progress"),
      h("th", { class: "num" }, "Rate"), h("th", { class: "num" }, "ETA"),
      h("th", { class: "num" }, "Dead letters"), h("th", { class: "num" }, "Workers"),
      h("th", { class: "num" }, "Age"))),
    body);
  main.replaceChildren(
    h("h1", {}, "Jobs"),
    h("section", { class: "panel" }, h("div", { class: "table-wrap" }, table), empty),
  );
  every(1000, async () => {
    const result = await api("/api/jobs");
    if (!showStatus(result)) return;
    const data = result.body;
    document.getElementById("backend").textContent = data.backend;
    empty.hidden = data.jobs.length > 0;
    body.replaceChildren(...data.jobs.map(row));
  });
}

function row(job) {
  const total = job.chunks;
  return h("tr", { "data-job-id": job.job_id, "data-state": job.state },
    h("td", {},
      h("a", { href: "/jobs/" + encodeURIComponent(job.job_id) }, job.job_id),
      h("div", { class: "sub" }, job.handler || "(no record)")),
    h("td", {}, stateBadge(job.state)),
    h("td", { class: "progress-cell" },
      progressBar(job),
      h("span", { class: "pct", "data-progress": job.progress === null ? "" : Math.floor(job.progress * 100) },
        percent(job.progress)),
      h("span", { class: "sub" }, " · " + num(job.done) + "/" + num(total) + " chunks")),
    h("td", { class: "num", "data-label": "rate" }, rate(job.rate_now)),
    h("td", { class: "num", "data-label": "ETA" }, job.state === "running" ? duration(job.eta_seconds) : "–"),
    h("td", { class: "num", "data-label": "dead letters", "data-dead": job.dead_lettered }, num(job.dead_lettered)),
    h("td", { class: "num", "data-label": "workers" }, num(job.workers.filter((w) => w.state !== "stopped").length)),
    h("td", { class: "num", "data-label": "age" }, duration(job.age_seconds)));
}
`;
