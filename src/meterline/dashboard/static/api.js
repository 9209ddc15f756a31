// The pages' REST client: the session's bearer token, JSON bodies, and the rate limit.
//
// The dashboard calls the public API like any client, so it spends the org's request
// budget: `budgetLow()` tells pages to slow their refreshes when little is left, and a
// 429 carries its Retry-After so callers can wait instead of hammering.

let session = null;
let pending = null;
let budget = null;

export class ApiError extends Error {
  constructor(status, body, retryAfter = 0) {
    const message = body && body.error ? body.error.message : `HTTP ${status}`;
    super(message);
    this.status = status;
    this.body = body;
    this.retryAfter = retryAfter;
    this.code = body && body.error ? body.error.code : null;
  }
}

async function loadSession() {
  const res = await fetch("/dashboard/session", {method: "POST", credentials: "same-origin"});
  if (res.status === 401) {
    window.location.assign("/login");
    throw new ApiError(401, null);
  }
  if (!res.ok) throw new ApiError(res.status, null);
  session = await res.json();
  return session;
}

export async function getSession(fresh = false) {
  if (!fresh && session && session.expires_at * 1000 - Date.now() > 30_000) return session;
  if (!pending) pending = loadSession().finally(() => { pending = null; });
  return pending;
}

export function hasScope(scope) {
  return Boolean(session && session.scopes.includes(scope));
}

export function budgetLow() {
  return Boolean(budget && budget.limit > 0 && budget.remaining < budget.limit * 0.2);
}

export async function api(path, {method = "GET", body, headers = {}} = {}) {
  const current = await getSession();
  const init = {
    method,
    headers: {Authorization: "Bearer " + current.access_token, Accept: "application/json", ...headers},
  };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const res = await fetch(path, init);
  const remaining = res.headers.get("X-RateLimit-Remaining");
  const limit = res.headers.get("X-RateLimit-Limit");
  if (remaining !== null && limit !== null) budget = {remaining: Number(remaining), limit: Number(limit)};
  if (res.status === 401) {
    session = null;
    window.location.assign("/login");
    throw new ApiError(401, null);
  }
  if (res.status === 204) return null;
  const isJson = (res.headers.get("content-type") || "").includes("json");
  const data = isJson ? await res.json() : null;
  if (!res.ok) throw new ApiError(res.status, data, Number(res.headers.get("Retry-After") || 0));
  return data;
}

export function query(body) {
  return api("/v2/query", {method: "POST", body});
}
