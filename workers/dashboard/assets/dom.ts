/**
 * The page's shared script (`/assets/dom.js`, an ES module): an element builder (text is always
 * set as text, never parsed as HTML), number and time formats, the token (taken once from the
 * URL's `?token=` and kept in sessionStorage), the API client (the token in its header), the
 * banner, the toast and the confirmation dialog.
 *
 * @module
 */

/** `/assets/dom.js`. */
export const DOM_JS = String.raw`
const SVG = "http://www.w3.org/2000/svg";
const SVG_TAGS = new Set(["svg", "path", "rect", "g", "line", "text", "title", "polyline"]);
const TOKEN_KEY = "ttg-dashboard-token";

/** h("tag", {attr: value, onclick: fn, style: {...}}, ...children): an element. */
export function h(tag, attrs, ...children) {
  const el = SVG_TAGS.has(tag) ? document.createElementNS(SVG, tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "style") Object.assign(el.style, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function num(n) {
  return n === null || n === undefined ? "?" : Number(n).toLocaleString("en-US");
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "?";
  if (seconds < 60) return seconds.toFixed(seconds < 10 ? 1 : 0) + " s";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min " + Math.round(seconds % 60) + " s";
  if (seconds < 86400) return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  return Math.floor(seconds / 86400) + " d " + Math.floor((seconds % 86400) / 3600) + " h";
}

export function rate(perSecond) {
  return perSecond === null || perSecond === undefined ? "?" : perSecond.toFixed(perSecond < 10 ? 1 : 0) + "/s";
}

/** Whole percent, rounded down: 100% only once everything is done. */
export function percent(fraction) {
  return fraction === null || fraction === undefined ? "?" : Math.floor(fraction * 100) + "%";
}

export function ago(iso) {
  const ms = Date.now() - Date.parse(iso);
  return isFinite(ms) ? (ms < 1500 ? "now" : duration(ms / 1000) + " ago") : "?";
}

export function stateBadge(state, id) {
  return h("span", { class: "state state-" + state, id: id, "data-state": state }, state);
}

/**
 * A job's progress bar: completed chunks green, dead-lettered red, cancelled grey, each its share
 * of the job's chunks; the bar's value is the share accounted for.
 */
export function progressBar(job, big) {
  const total = job.chunks || 0;
  const share = (n) => (total ? Math.min(1, Math.max(0, n) / total) : 0);
  const parts = [
    ["done", share(job.completed)],
    ["dead", share(job.dead_lettered - job.malformed)],
    ["cancelled", share(job.cancelled)],
  ];
  let left = 0;
  const fills = parts.map(([kind, fraction]) => {
    const fill = h("div", { class: "fill " + kind, style: { left: left * 100 + "%", width: fraction * 100 + "%" } });
    left += fraction;
    return fill;
  });
  return h("div", {
    class: big ? "bar big" : "bar",
    role: "progressbar",
    "aria-valuemin": 0,
    "aria-valuemax": 100,
    "aria-valuenow": Math.floor((job.progress || 0) * 100),
  }, fills);
}

/** Takes ?token=… from the URL once, keeps it for this tab, and removes it from the address bar. */
export function adoptToken() {
  const params = new URLSearchParams(location.search);
  const given = params.get("token");
  if (given === null) return;
  if (given) sessionStorage.setItem(TOKEN_KEY, given);
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

/** Calls the API; resolves {status, body} (status 0 when the dashboard cannot be reached). */
export async function api(path, options) {
  const o = options || {};
  const headers = { accept: "application/json" };
  const t = token();
  if (t) headers["x-ttg-token"] = t;
  if (o.body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method: o.method || "GET",
      headers: headers,
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch (error) {
    return { status: 0, body: { error: "The dashboard does not answer (" + error.message + ")" } };
  }
  let body;
  try {
    body = await response.json();
  } catch (_) {
    body = { error: response.status + " " + response.statusText };
  }
  return { status: response.status, body: body };
}

/** Shows the outcome of a read in the banner and the live dot; true when it succeeded. */
export function showStatus(result) {
  const banner = document.getElementById("banner");
  const live = document.getElementById("live");
  if (result.status === 200) {
    banner.hidden = true;
    banner.replaceChildren();
    live.classList.remove("down");
    live.textContent = "live";
    return true;
  }
  live.classList.add("down");
  live.textContent = result.status === 503 ? "broker unreachable" : "not live";
  banner.hidden = false;
  if (result.status === 401) {
    if (banner.dataset.kind === "token") return false;
    banner.dataset.kind = "token";
    banner.className = "banner warn";
    const input = h("input", { type: "password", placeholder: "token", autocomplete: "off", "aria-label": "token" });
    const form = h("form", {
      onsubmit: (event) => {
        event.preventDefault();
        if (input.value.trim()) setToken(input.value.trim());
        banner.dataset.kind = "";
      },
    }, input, h("button", { type: "submit" }, "Use token"));
    banner.replaceChildren("This dashboard needs its token: open the URL that ttg dashboard printed (…/?token=…), or paste it:", form);
    return false;
  }
  banner.dataset.kind = "error";
  banner.className = "banner error";
  const why = (result.body && result.body.error) || "no answer";
  banner.replaceChildren(
    result.status === 503 ? "Broker unreachable, retrying every second: " + why.replace(/^Broker unreachable: /, "") : why,
  );
  return false;
}

let toastTimer = 0;
export function toast(message, bad) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = "toast show" + (bad ? " bad" : "");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.className = "toast", 4000);
}

/** Asks before an action; resolves true when the user confirms. */
export function confirmAction(message, label) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = message;
  const ok = document.getElementById("confirm-ok");
  ok.textContent = label || "Confirm";
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.removeEventListener("close", onClose);
      resolve(answer);
    };
    const onClose = () => done(dialog.returnValue === "ok");
    dialog.returnValue = "";
    dialog.addEventListener("close", onClose);
    dialog.showModal();
  });
}

/** Runs fn now and again every ms (slower while the tab is hidden) until it returns false. */
export function every(ms, fn) {
  const tick = async () => {
    let again = true;
    try {
      again = (await fn()) !== false;
    } catch (error) {
      console.warn(error);
    }
    if (again) setTimeout(tick, document.hidden ? Math.max(ms, 5000) : ms);
  };
  tick();
}
`;
