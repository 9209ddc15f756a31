// Number formatting shared by every page: one place decides how a metric reads.

const UNITS = {
  requests: "count", errors: "count", client_errors: "count", server_errors: "count",
  requests_per_minute: "rate", error_rate: "ratio", server_error_rate: "ratio",
  latency_avg: "latency", latency_p50: "latency", latency_p95: "latency", latency_p99: "latency",
  api_response_time: "latency", p50_latency: "latency", p95_latency: "latency", p99_latency: "latency",
  unique_consumers: "count", active_consumers: "count", bandwidth_bytes: "bytes", bandwidth: "bytes",
  cost_usd: "money", tokens: "count", llm_requests: "count",
};

const fixed = (v, digits) =>
  v.toLocaleString("en-US", {minimumFractionDigits: digits, maximumFractionDigits: digits});

export function kindOf(metric) {
  return UNITS[metric] || "count";
}

export function bytes(v) {
  const steps = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < steps.length - 1) { v /= 1024; i += 1; }
  return (i === 0 ? String(Math.round(v)) : fixed(v, 1)) + " " + steps[i];
}

export function show(metric, v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  switch (kindOf(metric)) {
    case "ratio": return fixed(v * 100, 2) + "%";
    case "latency": return fixed(v, 1) + " ms";
    case "rate": return fixed(v, 1) + "/min";
    case "bytes": return bytes(v);
    case "money": return "$" + fixed(v, 2);
    default: return Math.round(v).toLocaleString("en-US");
  }
}

export function change(pct) {
  if (pct === null || pct === undefined) return "";
  const arrow = pct > 0 ? "▲" : pct < 0 ? "▼" : "■";
  return `${arrow} ${fixed(Math.abs(pct), 1)}%`;
}

export function time(iso) {
  const d = new Date(iso);
  return d.toLocaleString("en-GB", {
    day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit",
    timeZoneName: "short",
  });
}

export function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => (
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

// Short labels for chart axes: 1.2k, 3.4M; latency without decimals past 10 ms.
export function axis(metric, v) {
  const kind = kindOf(metric);
  if (kind === "ratio") return fixed(v * 100, 1) + "%";
  if (kind === "bytes") return bytes(v);
  const abs = Math.abs(v);
  const short = abs >= 1e6 ? fixed(v / 1e6, 1) + "M" : abs >= 1e3 ? fixed(v / 1e3, 1) + "k"
    : abs >= 10 || Number.isInteger(v) ? String(Math.round(v)) : fixed(v, 1);
  return kind === "latency" ? short + " ms" : short;
}
