/**
 * The page's drawings (`/assets/charts.js`, an ES module), hand-made SVG: a line chart of a
 * series over time, and the sweep map, one square per cell of the parameter range, each
 * carrying its range and state (`data-start`, `data-end`, `data-state`) and a tooltip.
 *
 * @module
 */
import { CELL_LEGEND } from "../sweep_map.ts";

/** `/assets/charts.js`. */
export const CHARTS_JS = String.raw`
import { h, num } from "./dom.js";

const W = 300;
const H = 90;

/** A chart figure: caption (name, latest value, peak) and the SVG, updated by draw(). */
export function lineChart(id, title, unit) {
  const latest = h("b", {}, "–");
  const peak = h("span", {}, "");
  const line = h("path", { class: "line", d: "" });
  const area = h("path", { class: "area", d: "" });
  const svg = h("svg", {
    class: "chart",
    id: id,
    viewBox: "0 0 " + W + " " + H,
    preserveAspectRatio: "none",
    role: "img",
    "aria-label": title,
  }, area, line);
  const figure = h("figure", {}, h("figcaption", {}, h("span", {}, title + " ", latest), peak), svg);
  function draw(times, values) {
    const n = values.length;
    const last = n ? values[n - 1] : 0;
    latest.textContent = num(Math.round(last * 10) / 10) + (unit ? " " + unit : "");
    const top = n ? Math.max(...values) : 0;
    const max = Math.max(1, top);
    peak.textContent = n > 1 ? "peak " + num(Math.round(top * 10) / 10) + " · last " + span(times) : "";
    if (n < 2) { // one sample: a level line
      const level = (H - 4 - (last / max) * (H - 10)).toFixed(1);
      line.setAttribute("d", n ? "M0 " + level + "L" + W + " " + level : "");
      area.setAttribute("d", "");
      return;
    }
    const t0 = Date.parse(times[0]);
    const t1 = Date.parse(times[n - 1]);
    const x = (i) => (t1 > t0 ? ((Date.parse(times[i]) - t0) / (t1 - t0)) * W : (i / (n - 1)) * W);
    const y = (v) => H - 4 - (v / max) * (H - 10);
    let d = "";
    for (let i = 0; i < n; i++) d += (i ? "L" : "M") + x(i).toFixed(1) + " " + y(values[i]).toFixed(1);
    line.setAttribute("d", d);
    area.setAttribute("d", d + "L" + W + " " + H + "L0 " + H + "Z");
  }
  return { figure: figure, draw: draw };
}

function span(times) {
  const s = (Date.parse(times[times.length - 1]) - Date.parse(times[0])) / 1000;
  return s < 90 ? Math.round(s) + " s" : Math.round(s / 60) + " min";
}

const NAMES = ${JSON.stringify(CELL_LEGEND)};

/** Columns of the map for a number of cells, and cells of at least 8 px on a narrow screen. */
function columnsFor(cells, width) {
  const wanted = cells <= 100 ? Math.max(1, cells) : cells <= 600 ? 50 : 100;
  return Math.max(1, Math.min(wanted, Math.floor((width || 800) / 8)));
}

/** The sweep map: an SVG of cells, a legend and a line that names the cell under the pointer. */
export function sweepMap() {
  const svg = h("svg", { class: "map", id: "sweep-map", role: "img", "aria-label": "sweep map" });
  const info = h("div", { class: "map-info", id: "map-info" }, "");
  const counts = {};
  const legend = h("ul", { class: "legend" }, Object.entries(NAMES).map(([code, name]) => {
    counts[code] = h("span", {}, "");
    return h("li", {}, h("i", { class: "s-" + code }), name + " ", counts[code]);
  }));
  let shown = "";
  let shownCols = 0;
  let last = null;
  let per = 1;
  let total = 0;
  const describe = (rect) => {
    const start = Number(rect.getAttribute("data-start"));
    const end = Number(rect.getAttribute("data-end"));
    const what = end - start === 1 ? "parameter " + num(start) : "parameters [" + num(start) + ", " + num(end) + ")";
    info.textContent = what + ": " + NAMES[rect.getAttribute("data-code")];
  };
  svg.addEventListener("mousemove", (e) => e.target.tagName === "rect" && describe(e.target));
  svg.addEventListener("click", (e) => e.target.tagName === "rect" && describe(e.target));
  svg.addEventListener("mouseleave", () => info.textContent = "");
  addEventListener("resize", () => last && draw(last));
  function draw(map) {
    last = map;
    per = map.params_per_cell;
    total = map.total_params;
    const cells = map.cells;
    const cols = columnsFor(cells.length, svg.parentElement && svg.parentElement.clientWidth);
    const rows = Math.ceil(cells.length / cols);
    if (cells.length !== shown.length || cols !== shownCols) {
      shownCols = cols;
      svg.setAttribute("viewBox", "0 0 " + cols * 10 + " " + rows * 10);
      svg.replaceChildren();
      for (let i = 0; i < cells.length; i++) {
        const start = i * per;
        const end = Math.min(total, start + per);
        svg.append(h("rect", {
          x: (i % cols) * 10, y: Math.floor(i / cols) * 10, width: 10, height: 10,
          "data-start": start, "data-end": end,
        }));
      }
      shown = "";
    }
    const rects = svg.children;
    for (let i = 0; i < cells.length; i++) {
      const code = cells[i];
      if (shown[i] === code) continue;
      const rect = rects[i];
      rect.setAttribute("class", "s-" + code);
      rect.setAttribute("data-code", code);
      rect.setAttribute("data-state", NAMES[code]);
    }
    shown = cells;
    for (const code of Object.keys(NAMES)) {
      counts[code].textContent = "(" + num(map.counts[NAMES[code] === "dead-lettered" ? "dead" : NAMES[code]]) + ")";
    }
    caption.textContent = "Parameters 0 to " + num(total) + ", " + (per === 1 ? "one per cell" : num(per) + " per cell") +
      ", " + cols + " cells per row; a cell shows the worst state of its chunks.";
  }
  const caption = h("div", { class: "sub" }, "");
  return { element: h("div", {}, caption, svg, legend, info), draw: draw };
}
`;
