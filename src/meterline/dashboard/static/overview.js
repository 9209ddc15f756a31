// The overview: live KPIs, live charts and status mix from /v2/stream; history charts,
// top endpoints and consumers, regions, status codes, insights and reports from REST.

import {getSession} from "./api.js";
import {anomalies, forecast, latestReports} from "./insights.js";
import {Refresher, liveCharts, liveKpis, page, refreshSeconds, renderMix, setStatus} from "./live.js";
import {historyCharts, regions, statusCodes, topConsumers, topEndpoints} from "./panels.js";
import {LiveStream} from "./stream.js";

const ctx = page();
const $ = (id) => document.getElementById(id);

await getSession();
const refresher = new Refresher(refreshSeconds());
const stream = new LiveStream(setStatus);
let lastRequests = null;

liveKpis(stream, "overview", ctx.range, {}, $("kpis"), (m) => {
  renderMix($("mix"), m);
  const requests = m.requests ? m.requests.value : null;
  if (lastRequests !== null && requests !== lastRequests) refresher.moved();
  lastRequests = requests;
});
liveCharts(stream, "live", {}, [], $("live-traffic"), $("live-latency"));
stream.start();

refresher.add("history", historyCharts($("traffic"), $("latency"), ctx.range, []));
refresher.add("endpoints", topEndpoints($("endpoints"), ctx.range, {}));
refresher.add("consumers", topConsumers($("consumers"), ctx.range, {}, $("consumer-count")));
refresher.add("regions", regions($("regions"), ctx.range, []), {scale: 2});
refresher.add("status", statusCodes($("status-codes"), ctx.range, []), {scale: 2});
refresher.add("forecast", forecast($("forecast"), $("forecast-note")), {every: 300, scale: 10});
refresher.add("anomalies", anomalies($("anomalies")), {every: 60, scale: 2});
refresher.add("reports", latestReports($("reports")), {every: 60, scale: 4});
