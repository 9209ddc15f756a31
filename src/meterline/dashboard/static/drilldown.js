// One endpoint or one consumer: live KPIs and charts narrowed by the stream's filters,
// and history, breakdown and recent errors from REST with the same filters.

import {getSession} from "./api.js";
import {Refresher, liveCharts, liveKpis, page, refreshSeconds, renderMix, setStatus} from "./live.js";
import {historyCharts, recentErrors, statusCodes, topConsumers, topEndpoints} from "./panels.js";
import {LiveStream} from "./stream.js";

const ctx = page();
const $ = (id) => document.getElementById(id);

// The same subject three ways: stream filters, query-model filters, GET equality filters.
let live, filters, equal;
if (ctx.kind === "endpoint") {
  live = {endpoints: [ctx.route], ...(ctx.method ? {methods: [ctx.method]} : {})};
  filters = [{field: "route", op: "eq", value: ctx.route}];
  equal = {route: ctx.route};
  if (ctx.method) {
    filters.push({field: "method", op: "eq", value: ctx.method});
    equal.method = ctx.method;
  }
} else {
  live = {consumers: [ctx.consumer_id]};
  filters = [{field: "consumer_id", op: "eq", value: ctx.consumer_id}];
  equal = {consumer_id: ctx.consumer_id};
}

await getSession();
const refresher = new Refresher(refreshSeconds());
const stream = new LiveStream(setStatus);
let lastRequests = null;
liveKpis(stream, "subject", ctx.range, live, $("kpis"), (m) => {
  renderMix($("mix"), m);
  const requests = m.requests ? m.requests.value : null;
  if (lastRequests !== null && requests !== lastRequests) refresher.moved();
  lastRequests = requests;
});
liveCharts(stream, "subject-live", live, filters, $("live-traffic"), $("live-latency"));
stream.start();

refresher.add("history", historyCharts($("traffic"), $("latency"), ctx.range, filters));
refresher.add("errors", recentErrors($("errors"), ctx.range, equal));
if (ctx.kind === "endpoint") refresher.add("breakdown", topConsumers($("breakdown"), ctx.range, equal));
else refresher.add("breakdown", topEndpoints($("breakdown"), ctx.range, equal));
refresher.add("status", statusCodes($("status-codes"), ctx.range, filters), {scale: 2});
