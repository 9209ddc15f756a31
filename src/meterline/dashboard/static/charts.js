// Time-series charts drawn with uPlot (installed from npm, served same-origin at
// /static/vendor/). When the library is missing the chart says how to install it and the
// rest of the page keeps working.

import {axis, kindOf, show} from "./format.js";

let loading = null;
function loadUPlot() {
  if (!loading) loading = import("/static/vendor/uplot.js").then((m) => m.default).catch(() => null);
  return loading;
}

export const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#f59e0b", "#9333ea", "#0891b2"];

export class TimeChart {
  // series: [{label, metric, color?, dash?}]; metric decides the axis format; window
  // (seconds) pins the x axis to that span ending at the latest point (live charts).
  constructor(el, series, {height = 200, metric = "requests", window = 0} = {}) {
    this.window = window;
    this.el = el;
    this.series = series;
    this.height = height;
    this.metric = metric;
    this.plot = null;
    this.data = [[], ...series.map(() => [])];
    new ResizeObserver(() => {
      if (this.plot) this.plot.setSize({width: this.width(), height: this.height});
    }).observe(el);
  }

  width() {
    return Math.max(240, this.el.clientWidth - 4);
  }

  options(uPlot) {
    const metric = this.metric;
    const window = this.window;
    const counts = kindOf(metric) === "count";
    const xRange = window ? (u, min, max) => [(max || Date.now() / 1000) - window, max || Date.now() / 1000] : undefined;
    return {
      width: this.width(),
      height: this.height,
      cursor: {drag: {x: false, y: false}},
      legend: {live: true},
      scales: {
        x: {time: true, ...(xRange ? {range: xRange} : {})},
        y: {range: (u, min, max) => [0, max > 0 ? max * 1.1 : counts ? 4 : 1]},
      },
      axes: [
        {
          stroke: "#64748b", grid: {stroke: "#e2e8f0"},
          // A live window is minutes long: clock times read better than uPlot's dates.
          ...(window ? {
            incrs: [60, 120, 300, 600, 1800],
            values: (u, ticks) => ticks.map((t) => new Date(t * 1000).toLocaleTimeString("en-GB", {hour: "2-digit", minute: "2-digit"})),
          } : {}),
        },
        {
          stroke: "#64748b", grid: {stroke: "#e2e8f0"}, size: 70,
          ...(counts ? {incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7]} : {}),
          values: (u, ticks) => ticks.map((v) => axis(metric, v)),
        },
      ],
      series: [
        {},
        ...this.series.map((s, i) => ({
          label: s.label,
          stroke: s.color || COLOURS[i % COLOURS.length],
          width: s.band ? 0 : 1.6,
          dash: s.dash,
          fill: s.fill,
          spanGaps: false,
          value: (u, v) => show(s.metric || metric, v),
        })),
      ],
    };
  }

  async render() {
    const uPlot = await loadUPlot();
    if (!uPlot) {
      this.el.innerHTML = '<div class="empty">Charts are unavailable: the charting library is not installed (run <code>make frontend</code>).</div>';
      this.el.dataset.state = "unavailable";
      return;
    }
    if (!this.plot) {
      this.el.innerHTML = "";
      this.plot = new uPlot(this.options(uPlot), this.data, this.el);
    } else {
      this.plot.setData(this.data);
    }
    const drawn = this.data.slice(1).map((ys) => ys.filter((v) => v !== null && v !== undefined).length);
    this.el.dataset.points = String(Math.max(0, ...drawn));
    this.el.dataset.state = "drawn";
  }

  // xs in seconds since the epoch; ys one array per series (null breaks the line).
  set(xs, ys) {
    this.data = [xs, ...ys];
    return this.render();
  }

  // Append one point per series and forget points older than keepSeconds.
  push(x, values, keepSeconds) {
    const [xs, ...ys] = this.data;
    if (xs.length && x <= xs[xs.length - 1]) return this.render();
    xs.push(x);
    values.forEach((v, i) => ys[i].push(v));
    this.el.dataset.last = JSON.stringify(values);
    while (xs.length && xs[0] < x - keepSeconds) {
      xs.shift();
      ys.forEach((col) => col.shift());
    }
    return this.render();
  }

  // Points older than any shown (history to start a live chart with), oldest first.
  prepend(points) {
    const [xs, ...ys] = this.data;
    const older = points.filter(([x]) => !xs.length || x < xs[0]);
    xs.unshift(...older.map(([x]) => x));
    ys.forEach((col, i) => col.unshift(...older.map(([, values]) => values[i])));
    return this.render();
  }

  // A gap (after a reconnect) so the line does not join across missing seconds.
  gap(x) {
    const [xs, ...ys] = this.data;
    if (!xs.length || x <= xs[xs.length - 1]) return;
    xs.push(x);
    ys.forEach((col) => col.push(null));
  }
}

// Rows of a /v2/query series → [xs, ys per metric].
export function columns(rows, metrics) {
  const xs = rows.map((r) => Date.parse(r.timestamp) / 1000);
  return [xs, metrics.map((m) => rows.map((r) => r[m]))];
}
