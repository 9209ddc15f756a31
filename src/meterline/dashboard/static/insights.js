// Insight panels: the forecast and anomalies from /v2/insights/*, and the latest reports.
// A route this server does not have (404) reads "not available" rather than an error, so
// the page works against servers with fewer insight routes.

import {ApiError, api, hasScope, query} from "./api.js";
import {TimeChart} from "./charts.js";
import {esc, show, time} from "./format.js";

function unavailable(el, e, what) {
  if (e instanceof ApiError && (e.status === 404 || e.status === 405)) {
    el.innerHTML = `<div class="empty" data-state="missing">${esc(what)} is not available on this server.</div>`;
    return;
  }
  el.innerHTML = `<div class="empty" data-state="error">${esc(e instanceof ApiError ? e.message : "the server is unreachable; retrying")}</div>`;
}

// 429, server errors and network failures go back to the refresher, which retries them.
function retryable(e) {
  return !(e instanceof ApiError) || e.status === 429 || e.status >= 500;
}

export function forecast(el, noteEl) {
  let chart = null;
  return async () => {
    let body, history;
    try {
      body = await api("/v2/insights/forecast?metric=requests&horizon=24");
      history = await query({metrics: ["requests"], range: "48h", granularity: "hour"});
    } catch (e) {
      chart = null;
      noteEl.textContent = "";
      unavailable(el, e, "Forecasting");
      if (retryable(e)) throw e;
      return;
    }
    if (!chart) {
      el.innerHTML = "";
      chart = new TimeChart(el, [
        {label: "actual", metric: "requests", color: "#0f172a"},
        {label: "forecast", metric: "requests", color: "#2563eb"},
        {label: "80% low", metric: "requests", color: "#93c5fd", dash: [4, 4]},
        {label: "80% high", metric: "requests", color: "#93c5fd", dash: [4, 4]},
      ], {height: 180});
    }
    // The last two days as they were, then the next hours as forecast, on one time axis.
    const rows = body.data;
    const past = history.data.filter((r) => r.timestamp < (rows.length ? rows[0].timestamp : "9"));
    const none = (list) => list.map(() => null);
    await chart.set(
      [...past, ...rows].map((r) => Date.parse(r.timestamp) / 1000),
      [
        [...past.map((r) => r.requests), ...none(rows)],
        [...none(past), ...rows.map((r) => r.yhat)],
        [...none(past), ...rows.map((r) => r.lo80)],
        [...none(past), ...rows.map((r) => r.hi80)],
      ],
    );
    const total = rows.reduce((sum, r) => sum + r.yhat, 0);
    noteEl.textContent = `next ${body.horizon} h: ~${show("requests", total)} requests · model ${body.model || "—"}`;
  };
}

export function anomalies(el) {
  return async () => {
    let body;
    try {
      body = await api("/v2/insights/anomalies?window=60");
    } catch (e) {
      unavailable(el, e, "Anomaly detection");
      if (retryable(e)) throw e;
      return;
    }
    if (!body.data.length) {
      el.innerHTML = '<div class="empty" data-state="none">Nothing unusual in the last hour.</div>';
      return;
    }
    el.innerHTML = `<ul class="anomalies">${body.data.slice(0, 8).map((a) => `
      <li class="${a.direction === "up" ? "up" : "down"}"><b>${esc(a.kind.replace("_", " "))}</b>
        ${esc(a.message || `${a.metric} ${show(a.metric, a.observed)} vs ${show(a.metric, a.expected)} expected`)}
        <span class="muted">${esc(time(a.timestamp))}</span></li>`).join("")}</ul>`;
  };
}

export function statusBadge(r) {
  const progress = r.status === "processing" && r.progress !== undefined && r.progress !== null
    ? ` ${Math.round(r.progress)}%` : "";
  return `<span class="badge ${esc(r.status)}">${esc(r.status)}${progress}</span>`;
}

// The download link on this server (a configured public URL may name another host).
export function localLink(url) {
  if (!url) return "";
  const parsed = new URL(url, window.location.href);
  return parsed.pathname + parsed.search;
}

export function latestReports(el) {
  return async () => {
    if (!hasScope("reports:read")) {
      el.innerHTML = '<div class="empty">Sign in with a client that has <code>reports:read</code> to see reports.</div>';
      return;
    }
    let body;
    try {
      body = await api("/v2/reports?limit=5");
    } catch (e) {
      unavailable(el, e, "Reporting");
      if (retryable(e)) throw e;
      return;
    }
    if (!body.reports.length) {
      el.innerHTML = '<div class="empty">No reports yet. <a href="/reports">Generate one</a>.</div>';
      return;
    }
    el.innerHTML = `<table><tbody>${body.reports.map((r) => `<tr>
      <td>${esc(r.name)}</td><td>${statusBadge(r)}</td><td class="muted">${esc(time(r.created_at))}</td>
      <td>${r.download_url ? `<a href="${esc(localLink(r.download_url))}">download</a>` : ""}</td></tr>`).join("")}</tbody></table>`;
  };
}
