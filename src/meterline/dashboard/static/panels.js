// REST panels shared by the overview and the drill-downs: history charts, top lists,
// regions, status codes and recent errors. Each takes the query-model filters to apply.

import {api, query} from "./api.js";
import {TimeChart, columns} from "./charts.js";
import {esc, show, time} from "./format.js";
import {fillTable, granularity, panelError} from "./live.js";

const SERIES = ["requests", "errors", "latency_p50", "latency_p95", "latency_p99"];

export function historyCharts(trafficEl, latencyEl, range, filters) {
  const traffic = new TimeChart(trafficEl, [
    {label: "requests", metric: "requests"},
    {label: "errors", metric: "requests", color: "#dc2626"},
  ]);
  const latency = new TimeChart(latencyEl, [
    {label: "p50", metric: "latency_p50", color: "#16a34a"},
    {label: "p95", metric: "latency_p95", color: "#f59e0b"},
    {label: "p99", metric: "latency_p99", color: "#dc2626"},
  ], {metric: "latency_p95"});
  return async () => {
    const result = await query({metrics: SERIES, filters, range, granularity: granularity(range)});
    const [xs, ys] = columns(result.data, SERIES);
    await traffic.set(xs, [ys[0], ys[1]]);
    await latency.set(xs, [ys[2], ys[3], ys[4]]);
  };
}

function params(range, equal, extra = {}) {
  const out = new URLSearchParams({range, ...extra});
  for (const [k, v] of Object.entries(equal)) out.set(k, v);
  return out.toString();
}

export function endpointLink(method, route, range) {
  return `/endpoint?${new URLSearchParams({method, route, range})}`;
}

export function consumerLink(consumer, range) {
  return `/consumer?${new URLSearchParams({consumer_id: consumer, range})}`;
}

export function topEndpoints(el, range, equal) {
  return async () => {
    try {
      const body = await api(`/v2/analytics/endpoints?${params(range, equal, {limit: "10"})}`);
      fillTable(el, '<th>Endpoint</th><th class="num">Requests</th><th class="num">Errors</th><th class="num">p95</th>',
        body.data, (e) => `<td><a href="${esc(endpointLink(e.method, e.route, range))}"><b>${esc(e.method)}</b> ${esc(e.route)}</a></td>
          <td class="num">${show("requests", e.requests)}</td><td class="num">${show("error_rate", e.error_rate)}</td>
          <td class="num">${show("latency_p95", e.p95_latency_ms)}</td>`,
        "No requests in this range yet.");
    } catch (e) { panelError(el, e); throw e; }
  };
}

export function topConsumers(el, range, equal, countEl) {
  return async () => {
    try {
      const body = await api(`/v2/analytics/consumers?${params(range, equal, {limit: "10"})}`);
      if (countEl) countEl.textContent = `(${show("requests", body.pagination.total)} in range)`;
      fillTable(el, '<th>Consumer</th><th class="num">Requests</th><th class="num">Errors</th><th class="num">Bandwidth</th>',
        body.data, (c) => `<td><a href="${esc(consumerLink(c.consumer_id, range))}">${esc(c.consumer_id)}</a></td>
          <td class="num">${show("requests", c.requests)}</td><td class="num">${show("error_rate", c.error_rate)}</td>
          <td class="num">${show("bandwidth_bytes", c.bandwidth_bytes)}</td>`,
        "No identified consumers in this range yet.");
    } catch (e) { panelError(el, e); throw e; }
  };
}

export function regions(el, range, filters) {
  return async () => {
    try {
      const body = await query({
        metrics: ["requests", "error_rate", "latency_p95"], dimensions: ["region"], filters, range,
        order_by: [{field: "requests", direction: "desc"}], limit: 10,
      });
      const top = body.data.length ? body.data[0].requests : 0;
      fillTable(el, '<th>Region</th><th>Share</th><th class="num">Requests</th><th class="num">Errors</th><th class="num">p95</th>',
        body.data, (r) => `<td>${esc(r.region || "unknown")}</td>
          <td class="bar"><span style="width:${top ? (100 * r.requests) / top : 0}%"></span></td>
          <td class="num">${show("requests", r.requests)}</td><td class="num">${show("error_rate", r.error_rate)}</td>
          <td class="num">${show("latency_p95", r.latency_p95)}</td>`,
        "No requests in this range yet.");
    } catch (e) { panelError(el, e); throw e; }
  };
}

export function statusCodes(el, range, filters) {
  return async () => {
    try {
      const body = await query({
        metrics: ["requests"], dimensions: ["status"], filters, range,
        order_by: [{field: "requests", direction: "desc"}], limit: 8,
      });
      fillTable(el, '<th>Status</th><th class="num">Requests</th>', body.data,
        (r) => `<td><span class="status s${String(r.status)[0]}">${esc(r.status)}</span></td><td class="num">${show("requests", r.requests)}</td>`,
        "No requests in this range yet.");
    } catch (e) { panelError(el, e); throw e; }
  };
}

export function recentErrors(el, range, equal) {
  return async () => {
    try {
      const body = await api(`/v2/analytics/errors?${params(range, equal, {limit: "25"})}`);
      fillTable(el, '<th>Time</th><th>Status</th><th>Endpoint</th><th>Path</th><th>Consumer</th><th class="num">Latency</th><th>Error</th>',
        body.data, (e) => `<td>${esc(time(e.timestamp))}</td>
          <td><span class="status s${String(e.status)[0]}">${esc(e.status)}</span></td>
          <td><a href="${esc(endpointLink(e.method, e.route, range))}"><b>${esc(e.method)}</b> ${esc(e.route)}</a></td>
          <td class="path">${esc(e.path)}</td>
          <td>${e.consumer_id ? `<a href="${esc(consumerLink(e.consumer_id, range))}">${esc(e.consumer_id)}</a>` : ""}</td>
          <td class="num">${show("latency_p50", e.latency_ms)}</td><td>${esc(e.error)}</td>`,
        "No errors in this range.");
    } catch (e) { panelError(el, e); throw e; }
  };
}
