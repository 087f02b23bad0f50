// Requests to the alerts API with the session cookie and its CSRF token.  A 401 means the
// session ended: the app is told (onSignedOut) and shows the sign-in form.

const CSRF = "argus.csrf";
let onSignedOut = () => {};
export function whenSignedOut(fn) { onSignedOut = fn; }

export function rememberCsrf(token) {
  if (token) sessionStorage.setItem(CSRF, token); else sessionStorage.removeItem(CSRF);
}
function csrfToken() {
  // the readable argus_csrf cookie holds the session's token (the newest, should another
  // tab have signed in since); the sign-in answer's copy where cookies are not readable
  const m = document.cookie.match(/(?:^|; )argus_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : sessionStorage.getItem(CSRF) || "";
}

export class ApiError extends Error {
  constructor(status, detail, body = null) {
    super(detail ? `${detail}` : `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
    this.body = body;  // the answer's JSON, when it had one (e.g. a 422's problems)
  }
}

// The words for a failed request, for the place where the user acted.
export function failure(what, e) {
  if (!(e instanceof ApiError)) return `${what} failed: the server could not be reached.`;
  if (e.status === 409) return `${what} refused: ${e.detail || "someone else acted on it first"}.`;
  if (e.status === 403) return `${what} not allowed: ${e.detail || "your role may not do this"}.`;
  if (e.status === 404) return `${what} failed: the alert is gone.`;
  if (e.status === 503) return `${what} failed: the service is unavailable, try again.`;
  return `${what} failed: ${e.detail || "HTTP " + e.status}.`;
}

export async function api(path, opts = {}) {
  const method = (opts.method || "GET").toUpperCase();
  const headers = { ...(opts.headers || {}) };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
  let r;
  try {
    r = await fetch(path, { ...opts, headers, credentials: "same-origin" });
  } catch (e) {
    throw new ApiError(0, "the server could not be reached");
  }
  if (!r.ok) {
    let detail = "", body = null;
    try {
      body = await r.json();
      if (typeof body.detail === "string") detail = body.detail;
      else if (Array.isArray(body.detail)) detail = body.detail.map((d) => String(d && d.msg)).join("; ");
    } catch (_) { /* no JSON body: the status says it */ }
    if (r.status === 401 && !path.endsWith("/auth/login")) onSignedOut(detail);
    throw new ApiError(r.status, detail, body);
  }
  return r;
}
export const getJson = async (path) => (await api(path)).json();
export async function postJson(path, body) {
  const r = await api(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body ?? {}),
  });
  return r.status === 204 ? null : r.json();
}
export async function putJson(path, body) {
  const r = await api(path, {
    method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body ?? {}),
  });
  return r.status === 204 ? null : r.json();
}
export const alertPath = (id, suffix = "") => `/api/v1/alerts/${encodeURIComponent(id)}${suffix}`;
