/**
 * The dashboard's style sheet (light and dark, from 390 px phones to wide screens).
 *
 * @module
 */

/** `/assets/style.css`. */
export const STYLE_CSS = String.raw`
:root {
  --bg: #f6f7f9; --panel: #fff; --text: #1c2430; --muted: #5d6776; --line: #dde1e7;
  --accent: #2f6fd6; --done: #2e9d5b; --running: #2f6fd6; --waiting: #c3c9d2;
  --cancelled: #7d8591; --dead: #d33a3a; --paused: #c78a12; --retrying: #e8892b;
  --shadow: 0 1px 2px rgba(0,0,0,.06);
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #12161c; --panel: #1a2029; --text: #e4e8ee; --muted: #9aa4b2; --line: #2c3440;
    --waiting: #4a5361; --cancelled: #8a93a0; --shadow: none;
  }
}
* { box-sizing: border-box; }
html, body { margin: 0; }
body {
  background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header.top {
  display: flex; flex-wrap: wrap; align-items: center; gap: 8px 16px;
  padding: 10px 20px; background: var(--panel); border-bottom: 1px solid var(--line);
}
header.top .brand { font-weight: 700; font-size: 16px; color: var(--text); letter-spacing: .02em; }
header.top nav a { margin-right: 12px; }
header.top .meta { margin-left: auto; color: var(--muted); font-size: 12px; display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
.live::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 50%; background: var(--done); margin-right: 5px; vertical-align: 1px; }
.live.down::before { background: var(--dead); }
main { max-width: 1240px; margin: 0 auto; padding: 16px 20px 48px; }
h1 { font-size: 22px; margin: 6px 0 4px; display: flex; flex-wrap: wrap; align-items: center; gap: 10px; word-break: break-all; }
h2 { font-size: 15px; margin: 0 0 10px; }
.sub { color: var(--muted); font-size: 12px; }
.banner { margin: 0; padding: 10px 20px; font-weight: 600; }
.banner.error { background: #fbe3e3; color: #8a1616; border-bottom: 1px solid #f0b8b8; }
.banner.warn { background: #fff2d6; color: #6d4b00; border-bottom: 1px solid #f0d9a0; }
@media (prefers-color-scheme: dark) {
  .banner.error { background: #4a1b1b; color: #ffd0d0; border-color: #6b2a2a; }
  .banner.warn { background: #45360f; color: #ffe6a6; border-color: #5f4a14; }
}
.banner form { display: inline-flex; gap: 6px; margin-left: 8px; flex-wrap: wrap; }
.banner input { font: inherit; padding: 3px 6px; min-width: 0; width: 16em; max-width: 100%; }
.panel {
  background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  padding: 14px 16px; margin: 14px 0; box-shadow: var(--shadow); min-width: 0;
}
.table-wrap { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: middle; white-space: nowrap; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { white-space: normal; min-width: 14em; max-width: 32em; overflow-wrap: anywhere; }
tr:last-child td { border-bottom: none; }
.state { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; background: var(--muted); }
.state-running { background: var(--running); }
.state-completed { background: var(--done); }
.state-failed { background: var(--dead); }
.state-paused { background: var(--paused); }
.state-cancelled { background: var(--cancelled); }
.state-busy, .state-idle, .state-starting { background: var(--done); }
.state-lost { background: var(--dead); }
.state-draining, .state-stopped { background: var(--cancelled); }
.bar { position: relative; height: 10px; border-radius: 5px; background: var(--waiting); overflow: hidden; min-width: 80px; }
.bar .fill { position: absolute; top: 0; bottom: 0; background: var(--done); transition: width .4s, left .4s; }
.bar .fill.dead { background: var(--dead); }
.bar .fill.cancelled { background: var(--cancelled); }
.bar.big { height: 16px; border-radius: 8px; }
.progress-cell { min-width: 150px; }
.progress-cell .bar { margin-bottom: 3px; }
.progress-line { display: flex; flex-wrap: wrap; gap: 4px 14px; align-items: baseline; margin-top: 8px; }
.progress-line .pct { font-size: 26px; font-weight: 700; font-variant-numeric: tabular-nums; }
.counters { display: grid; grid-template-columns: repeat(auto-fill, minmax(118px, 1fr)); gap: 10px; margin: 0; }
.counters div { padding: 8px 10px; border: 1px solid var(--line); border-radius: 6px; min-width: 0; }
.counters dt { font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.counters dd { margin: 2px 0 0; font-size: 18px; font-weight: 600; font-variant-numeric: tabular-nums; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 14px; }
.charts figure { margin: 0; min-width: 0; }
.charts figcaption { display: flex; justify-content: space-between; gap: 8px; font-size: 12px; color: var(--muted); margin-bottom: 4px; }
.charts figcaption b { color: var(--text); }
.chart { width: 100%; height: 90px; display: block; background: var(--bg); border-radius: 4px; }
.chart .line { fill: none; stroke: var(--accent); stroke-width: 2; vector-effect: non-scaling-stroke; }
.chart .area { fill: var(--accent); opacity: .12; }
.map { width: 100%; height: auto; display: block; }
.map rect { stroke: var(--panel); stroke-width: 1; vector-effect: non-scaling-stroke; cursor: pointer; }
.s-d { fill: var(--done); } .s-r { fill: var(--running); } .s-w { fill: var(--waiting); }
.s-c { fill: var(--cancelled); } .s-x { fill: var(--dead); } .s-y { fill: var(--retrying); }
.legend { display: flex; flex-wrap: wrap; gap: 6px 14px; margin: 10px 0 0; padding: 0; list-style: none; font-size: 12px; color: var(--muted); }
.legend i { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
.legend .s-d { background: var(--done); } .legend .s-r { background: var(--running); }
.legend .s-w { background: var(--waiting); } .legend .s-c { background: var(--cancelled); }
.legend .s-x { background: var(--dead); } .legend .s-y { background: var(--retrying); }
.map-info { min-height: 1.45em; margin-top: 6px; font-size: 12px; font-variant-numeric: tabular-nums; }
.actions { display: flex; flex-wrap: wrap; gap: 8px; margin: 10px 0 0; }
button {
  font: inherit; padding: 5px 12px; border-radius: 6px; border: 1px solid var(--line);
  background: var(--panel); color: var(--text); cursor: pointer;
}
button:hover { border-color: var(--accent); }
button.danger { color: var(--dead); border-color: color-mix(in srgb, var(--dead) 40%, var(--line)); }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.small { padding: 2px 8px; font-size: 12px; }
.head-row { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 8px; margin-bottom: 10px; }
.head-row h2 { margin: 0; }
details summary { cursor: pointer; color: var(--accent); }
details ol { margin: 6px 0 0; padding-left: 18px; white-space: normal; }
.empty { color: var(--muted); padding: 6px 0; }
dialog { border: 1px solid var(--line); border-radius: 10px; padding: 18px 20px; max-width: min(420px, calc(100vw - 32px)); background: var(--panel); color: var(--text); }
dialog::backdrop { background: rgba(10, 15, 25, .45); }
dialog p { margin: 0 0 14px; }
dialog .buttons { display: flex; justify-content: flex-end; gap: 8px; }
.toast { position: fixed; left: 50%; bottom: 18px; transform: translateX(-50%); max-width: calc(100vw - 32px); padding: 8px 14px; border-radius: 8px; background: var(--text); color: var(--panel); font-size: 13px; opacity: 0; pointer-events: none; transition: opacity .2s; }
.toast.show { opacity: 1; }
.toast.bad { background: var(--dead); color: #fff; }
@media (max-width: 600px) {
  header.top { padding: 8px 12px; }
  header.top .meta { margin-left: 0; width: 100%; }
  main { padding: 10px 12px 40px; }
  .panel { padding: 12px; }
  h1 { font-size: 19px; }
  .counters { grid-template-columns: repeat(auto-fill, minmax(96px, 1fr)); gap: 6px; }
  .counters div { padding: 5px 8px; }
  .counters dd { font-size: 16px; }
  .chart { height: 64px; }
  /* The jobs table as one card per job: name and state, the bar, then five figures. */
  #jobs thead { display: none; }
  #jobs tr { display: grid; grid-template-columns: repeat(5, minmax(0, 1fr)); gap: 4px 6px; padding: 10px 0; border-bottom: 1px solid var(--line); }
  #jobs tr:last-child { border-bottom: none; }
  #jobs td { border: none; padding: 0; white-space: normal; text-align: left; min-width: 0; }
  #jobs td:first-child { grid-column: 1 / 4; overflow-wrap: anywhere; }
  #jobs td:nth-child(2) { grid-column: 4 / -1; }
  #jobs td:nth-child(2) { text-align: right; }
  #jobs td.progress-cell { grid-column: 1 / -1; }
  #jobs td[data-label]::before { content: attr(data-label); display: block; font-size: 11px; color: var(--muted); }
}
`;
