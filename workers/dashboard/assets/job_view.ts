/**
 * The job page's script (`/assets/job_view.js`, an ES module): state and progress, counters,
 * charts of queue depth, in flight and throughput, the sweep map, the fleet, and the dead
 * letters with reason, attempt history and parameters; with actions on, pause, resume, cancel,
 * replay and purge, each behind a confirmation. `GET /api/jobs/{id}` every second, the map every
 * two.
 *
 * @module
 */

/** `/assets/job_view.js`. */
export const JOB_VIEW_JS = String.raw`
import {
  ago, api, confirmAction, duration, every, h, num, percent, progressBar, rate, showStatus,
  stateBadge, toast,
} from "./dom.js";
import { lineChart, sweepMap } from "./charts.js";

const COUNTERS = [
  ["ready", "ready"], ["in_flight", "in flight"], ["retrying", "retrying"],
  ["completed", "completed"], ["dead_lettered", "dead letters"], ["cancelled", "cancelled"],
  ["splits", "splits"], ["retried", "retries"], ["reclaimed", "reclaimed"],
  ["duplicates", "duplicates"], ["zombies", "zombies"], ["consumers", "consumers"],
];

export function jobView(main, jobId) {
  document.title = jobId + " · TTG";
  const base = "/api/jobs/" + encodeURIComponent(jobId);
  const title = h("h1", {}, h("span", {}, jobId), h("span", { id: "job-state" }));
  const subtitle = h("div", { class: "sub", id: "job-record" }, "");
  const actions = h("div", { class: "actions", id: "actions", hidden: true });
  const bar = h("div", { id: "job-bar" });
  const pct = h("span", { class: "pct", id: "progress-pct", "data-progress": "" }, "");
  const progressText = h("span", { id: "progress-text" }, "");
  const trendText = h("span", { class: "sub", id: "trend-text" }, "");
  const counterValues = {};
  const counters = h("dl", { class: "counters", id: "counters" }, COUNTERS.map(([key, label]) => {
    counterValues[key] = h("dd", { "data-counter": key }, "–");
    return h("div", {}, h("dt", {}, label), counterValues[key]);
  }));
  const depth = lineChart("chart-depth", "Queue depth", "");
  const inFlight = lineChart("chart-in-flight", "In flight", "");
  const throughput = lineChart("chart-throughput", "Throughput", "chunks/s");
  const map = sweepMap();
  const fleetBody = h("tbody", {});
  const fleet = h("table", { id: "fleet" }, h("thead", {}, h("tr", {},
    h("th", {}, "Worker"), h("th", {}, "State"), h("th", {}, "Host / node"),
    h("th", { class: "num" }, "Chunks"), h("th", { class: "num" }, "Rate"),
    h("th", { class: "num" }, "In flight"), h("th", {}, "Running"),
    h("th", { class: "num" }, "Failures"), h("th", {}, "Last seen"))), fleetBody);
  const fleetEmpty = h("p", { class: "empty" }, "No worker has reported for this job.");
  const lettersBody = h("tbody", {});
  const letterButtons = h("div", { class: "actions", hidden: true });
  const letters = h("table", { id: "dead-letters" }, h("thead", {}, h("tr", {},
    h("th", {}, "Parameters"), h("th", {}, ""), h("th", {}, "Reason"), h("th", {}, "Kind"),
    h("th", { class: "num" }, "Attempts"), h("th", {}, "History"), h("th", {}, "Chunk"),
    h("th", {}, "At"))), lettersBody);
  const lettersNote = h("p", { class: "empty" }, "No dead letters.");
  const lettersTitle = h("h2", {}, "Dead letters");
  main.replaceChildren(
    h("p", { class: "sub" }, h("a", { href: "/" }, "← all jobs")),
    title, subtitle, actions,
    h("section", { class: "panel" }, bar, h("div", { class: "progress-line" }, pct, progressText, trendText)),
    h("section", { class: "panel" }, counters),
    h("section", { class: "panel charts" }, depth.figure, inFlight.figure, throughput.figure),
    h("section", { class: "panel", id: "map" }, h("h2", {}, "Sweep map"), map.element),
    h("section", { class: "panel" }, h("h2", {}, "Fleet"), h("div", { class: "table-wrap" }, fleet), fleetEmpty),
    h("section", { class: "panel", id: "dead-letters-panel" },
      h("div", { class: "head-row" }, lettersTitle, letterButtons),
      h("div", { class: "table-wrap" }, letters), lettersNote),
  );

  let allowActions = false;
  let lastKey = "";
  let lastLetters = "";

  async function act(label, question, path, body, said) {
    if (!(await confirmAction(question, label))) return;
    const result = await api(base + path, { method: "POST", body: body || {} });
    if (result.status === 200) toast(said(result.body));
    else toast(label + " failed: " + (result.body.error || result.status), true);
    await refresh();
    await refreshMap();
  }

  function actionButtons(job) {
    const done = job.state === "completed" || job.state === "failed";
    const buttons = [];
    if (job.control === "running" && !done) {
      buttons.push(h("button", { id: "action-pause", onclick: () =>
        act("Pause", "Pause job " + jobId + "? Workers finish the chunks they hold and take no more.",
          "/pause", {}, () => "Paused " + jobId) }, "Pause"));
    }
    if (job.control === "paused") {
      buttons.push(h("button", { id: "action-resume", class: "primary", onclick: () =>
        act("Resume", "Resume job " + jobId + "?", "/resume", {}, () => "Resumed " + jobId) }, "Resume"));
    }
    if (job.control !== "cancelled" && !done) {
      buttons.push(h("button", { id: "action-cancel", class: "danger", onclick: () =>
        act("Cancel job", "Cancel job " + jobId + "? Its queued chunks are cancelled and running ones stopped. This cannot be undone.",
          "/cancel", {}, (b) => "Cancelled " + jobId + ": " + num(b.cancelled) + " queued chunk(s) cancelled") },
        "Cancel job"));
    }
    return buttons;
  }

  function letterRow(d) {
    const range = d.start === null ? "(unreadable message)"
      : d.end - d.start === 1 ? "parameter " + num(d.start) : "[" + num(d.start) + ", " + num(d.end) + ")";
    const history = h("details", {}, h("summary", {}, d.history.length + " attempt(s)"),
      h("ol", {}, d.history.map((a) => h("li", {}, "attempt " + a.attempt + ", " + a.kind + " on " + a.worker_id +
        " " + ago(a.at) + ": " + a.reason))));
    const buttons = allowActions ? h("span", { class: "actions", style: { margin: "0" } },
      h("button", { class: "small", "data-replay": d.id, onclick: () =>
        act("Replay", "Replay the dead letter of " + range + "? It goes back to the queue with fresh attempts.",
          "/dead-letters/replay", { ids: [d.id] }, (b) => "Replayed " + b.count + " dead letter(s)") }, "Replay"),
      h("button", { class: "small danger", "data-purge": d.id, onclick: () =>
        act("Purge", "Delete the dead letter of " + range + " for good?",
          "/dead-letters/purge", { ids: [d.id] }, (b) => "Purged " + b.count + " dead letter(s)") }, "Purge")) : "";
    return h("tr", { "data-id": d.id, "data-start": d.start === null ? "" : d.start },
      h("td", {}, range), h("td", {}, buttons), h("td", { class: "wrap" }, d.reason), h("td", {}, d.kind),
      h("td", { class: "num" }, d.attempts), h("td", {}, history), h("td", {}, d.chunk_id || "–"),
      h("td", {}, ago(d.at)));
  }

  async function refresh() {
    const result = await api(base);
    if (result.status === 404) {
      main.replaceChildren(h("h1", {}, "No such job"), h("p", {}, result.body.error),
        h("p", {}, h("a", { href: "/" }, "← all jobs")));
      return false;
    }
    if (!showStatus(result)) return;
    const data = result.body;
    const job = data.job;
    allowActions = data.actions;
    document.getElementById("backend").textContent = data.backend;
    document.getElementById("job-state").replaceChildren(stateBadge(job.state));
    const r = job.record;
    subtitle.textContent = r ? r.handler + " · " + num(r.total_params) + " parameters in " + num(r.total_chunks) +
      " chunks of " + num(r.chunk_size) + " · created " + ago(r.created_at) : "(no record: written by the predecessor's producer)";
    const key = job.state + "/" + job.control + "/" + allowActions;
    if (key !== lastKey) {
      lastKey = key;
      actions.replaceChildren(...(allowActions ? actionButtons(job) : []));
      actions.hidden = !allowActions || actions.children.length === 0;
    }
    bar.replaceChildren(progressBar(job, true));
    pct.textContent = percent(job.progress);
    pct.setAttribute("data-progress", job.progress === null ? "" : Math.floor(job.progress * 100));
    const parts = [num(job.completed) + " completed"];
    if (job.dead_lettered - job.malformed > 0) parts.push(num(job.dead_lettered - job.malformed) + " dead-lettered");
    if (job.cancelled > 0) parts.push(num(job.cancelled) + " cancelled");
    progressText.textContent = num(job.done) + "/" + num(job.chunks) + " chunks accounted for (" + parts.join(", ") +
      ") · " + num(job.completed_params) + "/" + num(job.params) + " parameters computed";
    trendText.textContent = rate(job.rate_now) + " now, " + rate(job.rate_average) + " on average" +
      (job.state === "running" ? " · ETA " + duration(job.eta_seconds) : "");
    for (const [key] of COUNTERS) counterValues[key].textContent = num(job[key]);
    depth.draw(data.series.at, data.series.depth);
    inFlight.draw(data.series.at, data.series.in_flight);
    throughput.draw(data.series.at, data.series.throughput);
    fleetEmpty.hidden = job.workers.length > 0;
    fleet.hidden = job.workers.length === 0;
    fleetBody.replaceChildren(...job.workers.map((w) => h("tr", { "data-worker": w.id },
      h("td", {}, w.id), h("td", {}, stateBadge(w.state)), h("td", {}, w.node || w.host),
      h("td", { class: "num" }, num(w.chunks)), h("td", { class: "num" }, rate(w.rate)),
      h("td", { class: "num" }, num(w.in_flight)),
      h("td", { class: "wrap" }, w.running.length ? w.running.join(" ") : "–"),
      h("td", { class: "num" }, num(w.failures + w.timeouts)), h("td", {}, ago(w.last_seen)))));
    const dl = data.dead_letters;
    lettersTitle.textContent = "Dead letters (" + num(dl.total) + ")";
    lettersNote.hidden = dl.total > 0;
    lettersNote.textContent = "No dead letters.";
    if (dl.total > dl.shown.length) {
      lettersNote.hidden = false;
      lettersNote.textContent = "The first " + dl.shown.length + " of " + num(dl.total) + " are shown.";
    }
    const shownKey = JSON.stringify(dl.shown) + allowActions;
    if (shownKey !== lastLetters) {
      lastLetters = shownKey; // rebuilt only when changed, so an open history stays open
      lettersBody.replaceChildren(...dl.shown.map(letterRow));
    }
    letters.hidden = dl.shown.length === 0;
    letterButtons.hidden = !allowActions || dl.total === 0;
    if (!letterButtons.hidden && letterButtons.children.length === 0) {
      letterButtons.append(
        h("button", { id: "replay-all", onclick: () =>
          act("Replay all", "Replay every dead letter of " + jobId + "?", "/dead-letters/replay", {},
            (b) => "Replayed " + b.count + " dead letter(s)") }, "Replay all"),
        h("button", { id: "purge-all", class: "danger", onclick: () =>
          act("Purge all", "Delete every dead letter of " + jobId + " for good?", "/dead-letters/purge", {},
            (b) => "Purged " + b.count + " dead letter(s)") }, "Purge all"));
    }
  }

  async function refreshMap() {
    const result = await api(base + "/map");
    if (result.status === 200) map.draw(result.body);
  }

  every(1000, refresh);
  every(2000, refreshMap);
}
`;
