// Pieces shared by the overview and the drill-down pages: the connection status, live
// KPIs, the per-second live charts, the live status mix, and a refresher that re-fetches
// REST panels when the stream says traffic moved, within the org's request budget.

import {ApiError, budgetLow, query} from "./api.js";
import {TimeChart} from "./charts.js";
import {change, esc, show} from "./format.js";

export const KPIS = [
  ["requests", "Requests"],
  ["requests_per_minute", "Per minute"],
  ["error_rate", "Error rate"],
  ["p50_latency", "p50 latency"],
  ["p95_latency", "p95 latency"],
  ["p99_latency", "p99 latency"],
  ["active_consumers", "Consumers"],
  ["bandwidth", "Bandwidth"],
];
const KPI_FORMAT = {
  p50_latency: "latency_p50", p95_latency: "latency_p95", p99_latency: "latency_p99",
  active_consumers: "unique_consumers", bandwidth: "bandwidth_bytes",
};
// Where a rise is bad, a rising change is shown in red.
const RISE_IS_BAD = new Set(["error_rate", "p50_latency", "p95_latency", "p99_latency"]);

export function page() {
  return JSON.parse(document.getElementById("page-data").textContent);
}

export function refreshSeconds() {
  const asked = Number(new URLSearchParams(window.location.search).get("refresh"));
  return asked >= 2 ? asked : 30;
}

export function setStatus(state, detail) {
  const stamp = document.getElementById("updated");
  document.body.dataset.stream = state;
  if (state === "live") stamp.textContent = "live · " + new Date().toLocaleTimeString("en-GB");
  else stamp.textContent = detail || state;
}

export function renderKpiShell(el) {
  el.innerHTML = KPIS.map(([name, label]) => `
    <div class="kpi" data-kpi="${name}">
      <div class="label">${esc(label)}</div><div class="value">—</div><div class="change"></div>
    </div>`).join("");
}

// Live KPIs over the page's range; onUpdate(metricsByName) sees every snapshot.
export function liveKpis(stream, id, range, filters, el, onUpdate = () => {}) {
  renderKpiShell(el);
  stream.subscribe(id, {
    metrics: [...KPIS.map(([name]) => name), "errors", "client_errors", "server_errors"],
    filters: {time_window: range, aggregation: "avg", ...filters},
    delivery_frequency: "real_time",
  }, (msg) => {
    if (msg.type !== "metric_update") return;
    const byName = {};
    for (const m of msg.metrics) byName[m.name] = m;
    for (const [name] of KPIS) {
      const m = byName[name];
      const box = el.querySelector(`[data-kpi=${name}]`);
      if (!m || !box) continue;
      box.querySelector(".value").textContent = show(KPI_FORMAT[name] || name, m.value);
      const badge = box.querySelector(".change");
      badge.textContent = change(m.change);
      badge.className = "change" + (m.change ? ((m.change > 0) === RISE_IS_BAD.has(name) ? " bad" : " good") : "");
      box.dataset.source = "stream";
      box.dataset.seq = String(msg.seq);
    }
    onUpdate(byName);
  });
}

// Per-second charts of the last five minutes: requests and errors in the trailing minute,
// and its p50/p95/p99 latency.
export function liveCharts(stream, id, filters, queryFilters, trafficEl, latencyEl) {
  const keep = 300;
  const traffic = new TimeChart(trafficEl, [
    {label: "requests / min", metric: "requests"},
    {label: "errors / min", metric: "requests", color: "#dc2626"},
  ], {height: 180, window: keep});
  const latency = new TimeChart(latencyEl, [
    {label: "p50", metric: "latency_p50", color: "#16a34a"},
    {label: "p95", metric: "latency_p95", color: "#f59e0b"},
    {label: "p99", metric: "latency_p99", color: "#dc2626"},
  ], {height: 180, metric: "latency_p95", window: keep});
  // Until the stream has filled the window, the last complete minutes from the store
  // stand in: a minute's totals are the trailing minute's values at its end.
  query({
    metrics: ["requests", "errors", "latency_p50", "latency_p95", "latency_p99"],
    filters: queryFilters, range: "5m", granularity: "minute",
  }).then((body) => {
    const now = Date.now() / 1000;
    const points = body.data
      .map((r) => [Date.parse(r.timestamp) / 1000 + 60, r])
      .filter(([end]) => end <= now);
    traffic.prepend(points.map(([x, r]) => [x, [r.requests, r.errors]]));
    latency.prepend(points.map(([x, r]) => [x, [r.latency_p50, r.latency_p95, r.latency_p99]]));
  }).catch(() => {});
  let lastSecond = 0;
  stream.subscribe(id, {
    metrics: ["requests", "errors", "p50_latency", "p95_latency", "p99_latency"],
    filters: {time_window: "1m", aggregation: "avg", ...filters},
    delivery_frequency: "1s",
  }, (msg) => {
    if (msg.type !== "metric_update") return;
    const v = {};
    for (const m of msg.metrics) v[m.name] = m.value;
    const second = Math.floor(Date.parse(msg.timestamp) / 1000);
    if (lastSecond && second - lastSecond > 3) {
      traffic.gap(lastSecond + 1);
      latency.gap(lastSecond + 1);
    }
    lastSecond = second;
    traffic.push(second, [v.requests, v.errors], keep);
    latency.push(second, [v.p50_latency, v.p95_latency, v.p99_latency], keep);
  });
  return {traffic, latency};
}

// The status mix as one bar: successes (1xx–3xx), client errors, server errors.
export function renderMix(el, byName) {
  const total = byName.requests ? byName.requests.value : 0;
  const c4 = byName.client_errors ? byName.client_errors.value : 0;
  const c5 = byName.server_errors ? byName.server_errors.value : 0;
  const ok = Math.max(0, total - c4 - c5);
  const parts = [["ok", "1xx–3xx", ok], ["c4", "4xx", c4], ["c5", "5xx", c5]];
  const pct = (n) => (total ? (100 * n) / total : 0);
  el.innerHTML = `
    <div class="mixbar">${parts.map(([k, , n]) => `<span class="${k}" style="width:${pct(n)}%"></span>`).join("")}</div>
    <ul class="legend">${parts.map(([k, label, n]) => `
      <li data-class="${k}"><i class="${k}"></i>${label} <b>${show("requests", n)}</b>
      <span class="muted">${total ? pct(n).toFixed(1) + "%" : ""}</span></li>`).join("")}</ul>`;
  el.dataset.total = String(total);
}

// Runs REST panels once at start, then again when traffic moved (the store lags the
// stream by about a second, so a fetch only covers moves two seconds older than it), at
// most every `seconds` (doubled while the org's request budget runs low), and backs off
// for Retry-After on a 429.
export class Refresher {
  constructor(seconds) {
    this.seconds = seconds;
    this.tasks = [];
    this.lastMove = 0;
    this.pausedUntil = 0;
    setInterval(() => this.tick(), 1000);
  }

  // every: also refresh this often (seconds) without traffic; 0 for moves only.
  add(name, run, {every = 0, scale = 1} = {}) {
    const task = {name, run, every, scale, last: 0, covers: 0, busy: false, retryAt: 0};
    this.tasks.push(task);
    this.run(task);
  }

  moved() {
    this.lastMove = Date.now();
  }

  async run(task) {
    if (task.busy) return;
    task.busy = true;
    task.covers = Date.now() - 2000;
    task.retryAt = 0;
    try {
      await task.run();
    } catch (e) {
      if (e instanceof ApiError && e.status === 429) {
        this.pausedUntil = Date.now() + Math.max(1, e.retryAfter) * 1000;
      } else if (!(e instanceof ApiError) || e.status >= 500) {
        task.retryAt = Date.now() + 5000;  // unreachable or failing server: try again soon
      }
    } finally {
      task.last = Date.now();
      task.busy = false;
    }
  }

  tick() {
    const now = Date.now();
    // A hidden tab spends none of the org's request budget; it catches up when shown.
    if (now < this.pausedUntil || document.hidden) return;
    const factor = budgetLow() ? 2 : 1;
    for (const task of this.tasks) {
      const since = (now - task.last) / 1000;
      const due = this.lastMove > task.covers && since >= this.seconds * task.scale * factor;
      const periodic = task.every && since >= task.every * factor;
      const retry = task.retryAt && now >= task.retryAt;
      if (due || periodic || retry) this.run(task);
    }
  }
}

// A table from rows: `head` is the header cells' HTML, `cells(row)` one row's cells.
export function fillTable(el, head, rows, cells, empty) {
  if (!rows.length) {
    el.innerHTML = `<div class="empty">${esc(empty)}</div>`;
    return;
  }
  el.innerHTML = `<table><thead><tr>${head}</tr></thead><tbody>${rows.map((r) => `<tr>${cells(r)}</tr>`).join("")}</tbody></table>`;
}

export function panelError(el, error) {
  const text = error instanceof ApiError ? error.message : "the server is unreachable; retrying";
  el.innerHTML = `<div class="empty error-text">${esc(text)}</div>`;
}

export function granularity(range) {
  return ["15m", "1h", "6h"].includes(range) ? "minute" : "hour";
}
