// The reports page: generate from a template, the list with status and progress (polled
// while any report is processing), download links, and schedules (pause, resume, run
// now, delete). Everything goes through /v2/reports.

import {ApiError, api, getSession, hasScope} from "./api.js";
import {esc, time} from "./format.js";
import {localLink, statusBadge} from "./insights.js";
import {fillTable, panelError} from "./live.js";

const $ = (id) => document.getElementById(id);
const FORMAT_LABEL = {pdf: "PDF", excel: "Excel", csv: "CSV", json: "JSON"};

await getSession();
document.body.dataset.stream = "rest";
$("updated").textContent = "loading";
const canWrite = hasScope("reports:write");
let timer = null;

function message(text, kind = "info") {
  const el = $("message");
  el.textContent = text;
  el.className = "message " + kind;
}

async function loadTemplates() {
  const select = $("template");
  try {
    const body = await api("/v2/reports/templates");
    const options = body.templates.map((t) =>
      `<option value="${esc(t.template_id)}" title="${esc(t.description)}">${esc(t.name)}${t.builtin ? "" : " (custom)"}</option>`).join("");
    $("schedule-template").innerHTML = options;
    select.innerHTML = options;
    select.dataset.count = String(body.templates.length);
  } catch (e) {
    message(e instanceof ApiError ? e.message : "could not load templates", "error");
  }
}

async function loadReports() {
  const el = $("reports");
  let body;
  try {
    body = await api("/v2/reports?limit=25");
  } catch (e) {
    panelError(el, e);
    schedule(10);
    return;
  }
  const processing = body.reports.filter((r) => r.status === "processing").map((r) => r.report_id);
  const progress = {};
  if (processing.length) {
    try {
      const details = await api("/v2/reports/batch", {method: "POST", body: {report_ids: processing}});
      for (const d of details.reports) progress[d.report_id] = d.progress;
    } catch (e) { /* the list still shows their status */ }
  }
  fillTable(el, '<th>Name</th><th>Template</th><th>Format</th><th>Status</th><th>Created</th><th class="num">Size</th><th></th>',
    body.reports, (r) => `<td>${esc(r.name)}</td><td class="muted">${esc(r.template_id)}</td>
      <td>${esc(FORMAT_LABEL[r.format] || r.format)}</td>
      <td data-report="${esc(r.report_id)}" data-status="${esc(r.status)}">${statusBadge({...r, progress: progress[r.report_id]})}
        ${r.status === "processing" ? `<progress max="100" value="${Number(progress[r.report_id] || 0)}"></progress>` : ""}</td>
      <td class="muted">${esc(time(r.created_at))}</td><td class="num">${esc(r.file_size || "")}</td>
      <td>${r.download_url ? `<a class="download" href="${esc(localLink(r.download_url))}">Download</a>` : ""}</td>`,
    "No reports yet: generate one above.");
  $("report-count").textContent = `(${body.pagination.total_count})`;
  $("updated").textContent = "updated " + new Date().toLocaleTimeString("en-GB");
  schedule(processing.length ? 1.5 : 30);
}

function schedule(seconds) {
  clearTimeout(timer);
  timer = setTimeout(loadReports, seconds * 1000);
}

async function loadSchedules() {
  const el = $("schedules");
  let body;
  try {
    body = await api("/v2/reports/schedules");
  } catch (e) {
    panelError(el, e);
    return;
  }
  const action = (s, name, label) => canWrite
    ? `<button type="button" data-action="${name}" data-id="${esc(s.schedule_id)}">${label}</button>` : "";
  fillTable(el, "<th>Name</th><th>When</th><th>Status</th><th>Next run</th><th>Last run</th><th></th>",
    body.schedules, (s) => `<td>${esc(s.name)}</td><td><code>${esc(s.cron)}</code> <span class="muted">${esc(s.timezone)}</span></td>
      <td><span class="badge ${esc(s.status)}">${esc(s.status)}</span></td>
      <td class="muted">${s.next_run_at ? esc(time(s.next_run_at)) : "—"}</td>
      <td class="muted">${s.last_run_at ? esc(time(s.last_run_at)) : "—"}</td>
      <td class="actions" data-schedule="${esc(s.schedule_id)}">${s.status === "active" ? action(s, "pause", "Pause") : action(s, "resume", "Resume")}
        ${action(s, "run", "Run now")} ${action(s, "delete", "Delete")}</td>`,
    "No schedules yet.");
}

$("schedules").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const id = button.dataset.id;
  const verb = button.dataset.action;
  if (verb === "delete" && !window.confirm("Delete this schedule? Reports it made stay.")) return;
  button.disabled = true;
  try {
    if (verb === "delete") await api(`/v2/reports/schedules/${encodeURIComponent(id)}`, {method: "DELETE"});
    else await api(`/v2/reports/schedules/${encodeURIComponent(id)}/${verb}`, {method: "POST"});
    message({pause: "Schedule paused.", resume: "Schedule resumed.", run: "Report started.", delete: "Schedule deleted."}[verb]);
    if (verb === "run") loadReports();
  } catch (e) {
    message(e instanceof ApiError ? e.message : "the action failed", "error");
  }
  loadSchedules();
});

// crypto.randomUUID needs a secure context; a plain-http deployment on a LAN has none.
function newKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function isoDay(d) {
  return d.toISOString().slice(0, 10);
}

$("generate").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const start = form.start.value, end = form.end.value;
  const body = {
    name: form.name.value.trim(),
    template_id: form.template.value,
    format: form.format.value,
    filters: {date_range: {start: start + "T00:00:00Z", end: end + "T23:59:59Z"}},
    layout: {orientation: form.orientation.value, include_charts: form.charts.checked},
  };
  form.querySelector("button[type=submit]").disabled = true;
  try {
    // One key per submission: a retried click is answered with the same report.
    const created = await api("/v2/reports/generate", {
      method: "POST", body, headers: {"Idempotency-Key": form.dataset.key},
    });
    message(`Generating “${created.name}”…`);
    form.dataset.key = newKey();
    loadReports();
  } catch (e) {
    const problems = e instanceof ApiError && e.body && e.body.error && e.body.error.validation_errors;
    const detail = problems ? ": " + problems.map((p) => `${p.field} ${p.message}`).join("; ") : "";
    message((e instanceof ApiError ? e.message : "could not start the report") + detail, "error");
  } finally {
    form.querySelector("button[type=submit]").disabled = false;
  }
});

// A schedule's report covers the period before each run, matching its frequency.
const PERIOD = {daily: "24h", weekly: "7d", monthly: "30d"};

$("schedule").addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = event.target;
  const body = {
    name: f.name.value.trim(),
    frequency: f.frequency.value,
    time: f.time.value,
    timezone: f.timezone.value.trim(),
    report: {template_id: f.template.value, format: f.format.value, filters: {range: PERIOD[f.frequency.value]}},
  };
  try {
    const created = await api("/v2/reports/schedules", {method: "POST", body});
    message(`Scheduled “${created.name}”; next run ${time(created.next_run_at)}.`);
  } catch (e) {
    const problems = e instanceof ApiError && e.body && e.body.error && e.body.error.validation_errors;
    const detail = problems ? ": " + problems.map((p) => `${p.field} ${p.message}`).join("; ") : "";
    message((e instanceof ApiError ? e.message : "could not create the schedule") + detail, "error");
  }
  loadSchedules();
});
try {
  $("schedule").timezone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
} catch (e) { /* keep UTC */ }

const form = $("generate");
form.dataset.key = newKey();
const today = new Date();
form.end.value = isoDay(today);
form.start.value = isoDay(new Date(today.getTime() - 6 * 86400_000));
if (!canWrite) {
  for (const f of [form, $("schedule")]) f.querySelectorAll("input, select, button").forEach((el) => { el.disabled = true; });
  message("This sign-in can read reports but not make them (it needs reports:write).", "info");
}
if (!hasScope("reports:read")) {
  message("Sign in with a client that has the reports:read scope to see reports.", "error");
} else {
  loadTemplates();
  loadReports();
  loadSchedules();
}
