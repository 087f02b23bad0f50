"use strict";
const CSRF = "argus.csrf", thumbs = new Map();
let me = null;  // who is signed in (GET /api/v1/auth/me), null: the sign-in form shows
const FALSE_ALARM_EXPIRY_S = 86400;
// Labels of event types come from the rule types the service knows (GET
// /api/v1/rule-types), not from a copy kept here; the reason of each alert comes in it.
const labels = new Map();
let ruleTypesLoaded = false;
const $ = (id) => document.getElementById(id);
const setStatus = (text) => { $("status").textContent = text; };
function showError(text) { $("error-text").textContent = text; $("error").hidden = false; }
function clearError() { $("error-text").textContent = ""; $("error").hidden = true; }
const isCount = (v) => typeof v === "number" && Number.isFinite(v);
function setRuleTypes(types) {
  labels.clear();
  for (const t of Array.isArray(types) ? types : []) {
    for (const e of Array.isArray(t.events) ? t.events : []) {
      if (typeof e.type === "string" && typeof e.label === "string") labels.set(e.type, e.label);
    }
  }
}
function typeLabel(a) {
  const type = String(a.type ?? "");
  return labels.get(type) ?? (type.charAt(0).toUpperCase() + type.slice(1)).replaceAll("_", " ");
}
function mergedText(a) {
  const m = (a.details || {}).members;
  return isCount(m) && m > 1 ? m + " events merged" : "";
}
function factsText(a) {
  // what a record without a reason (stored before reasons, or of a type no rule
  // describes) still says: the line and direction, the count, how many were merged
  const d = a.details || {};
  const parts = [];
  if (a.line) parts.push(a.direction ? `${a.line} (${a.direction})` : String(a.line));
  if (isCount(d.count)) parts.push(`${d.count} counted`);
  const merged = mergedText(a);
  if (merged) parts.push(merged);
  return parts.join(", ");
}
function reasonText(a) {
  // the reason in words, rendered by the service from the rule's template
  return typeof a.reason === "string" && a.reason ? a.reason : factsText(a);
}
function csrfToken() {
  // from the sign-in answer; the readable argus_csrf cookie holds the same token
  const kept = sessionStorage.getItem(CSRF);
  if (kept) return kept;
  const m = document.cookie.match(/(?:^|; )argus_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : "";
}
async function api(path, opts = {}) {
  const method = (opts.method || "GET").toUpperCase();
  const headers = { ...(opts.headers || {}) };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
  const r = await fetch(path, { ...opts, headers, credentials: "same-origin" });
  if (!r.ok) {
    let detail = "";
    try {
      const body = await r.json();
      if (typeof body.detail === "string") detail = ": " + body.detail;
      else if (Array.isArray(body.detail)) {
        detail = ": " + body.detail.map((d) => String(d && d.msg)).join("; ");
      }
    } catch (_) { /* no JSON body: the status says it */ }
    if (r.status === 401 && me !== null) signedOut("Signed out" + detail);
    const error = new Error("HTTP " + r.status + detail);
    error.status = r.status;
    throw error;
  }
  return r;
}
function cell(tr, value) {
  const td = tr.insertCell();
  td.textContent = value === null || value === undefined ? "" : String(value);
  return td;
}
function thumb(id) {
  if (!thumbs.has(id)) {
    if (thumbs.size > 300) {
      const [old, p] = thumbs.entries().next().value;
      thumbs.delete(old);
      p.then((u) => u && URL.revokeObjectURL(u));
    }
    thumbs.set(id, api(`/api/v1/alerts/${encodeURIComponent(id)}/snapshot`)
      .then((r) => r.blob()).then((b) => URL.createObjectURL(b)).catch(() => null));
  }
  return thumbs.get(id);
}
async function post(path, body) {
  return api(path, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body) });
}
async function act(a, button, what, path, body) {
  button.disabled = true;
  try {
    await post(`/api/v1/alerts/${encodeURIComponent(a.event_id)}/${path}`, body);
    clearError();
    await refresh();
  } catch (e) { showError(what + " failed: " + e.message); button.disabled = false; }
}
function falseAlarm(a, button) {
  const hours = Math.round(FALSE_ALARM_EXPIRY_S / 3600);
  if (!window.confirm(`Mark "${typeLabel(a)}" a false alarm? Similar alerts from this ` +
      `camera are suppressed for ${hours} h.`)) return;
  // region: same rule, zone and label near this box; an alert without a box (camera
  // health) has no region, so its rule on this camera is suppressed instead.
  const scope = Array.isArray(a.bbox) ? "region" : "rule";
  act(a, button, "False alarm", "close",
    { disposition: "false_alarm", suppress: { scope, expires_in_s: FALSE_ALARM_EXPIRY_S } });
}
function stateText(a) {
  if (a.state === "claimed") return "claimed by " + a.owner;
  if (a.state === "escalated") {
    return "escalated" + (a.escalated_to === "external" && a.escalation_ref
      ? " (" + a.escalation_ref + ")" : "");
  }
  if (a.state === "closed") return "closed: " + String(a.disposition || "").replaceAll("_", " ");
  return String(a.state ?? "");
}
const supervises = () => me !== null && me.permissions.includes("alerts.act_any");
function actions(a) {
  // only what this person may do now (the service checks again)
  const out = [];
  const mine = a.owner === (me && me.name);
  if (a.state === "new" || (a.state === "escalated" && supervises())) {
    out.push(button("Claim", "claim", (b) => act(a, b, "Claim", "claim", {})));
  }
  if (a.state === "claimed" && (mine || supervises())) {
    out.push(button("Release", "release", (b) => act(a, b, "Release", "release", {})));
  }
  if (a.state === "new" || (a.state === "claimed" && (mine || supervises()))
      || (a.state === "escalated" && supervises())) {
    out.push(button("Done", "close",
      (b) => act(a, b, "Close", "close", { disposition: "no_action" })));
    out.push(button("False alarm", "false-alarm", (b) => falseAlarm(a, b)));
  }
  if (a.state === "new" || (a.state === "claimed" && mine)) {
    out.push(button("Escalate", "escalate", (b) => act(a, b, "Escalate", "escalate", {})));
  }
  return out;
}
function button(text, className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = text;
  b.addEventListener("click", () => onClick(b));
  return b;
}
function render(items) {
  const rows = items.map((a) => {
    const tr = document.createElement("tr");
    tr.className = a.state;
    cell(tr, a.priority);
    const kind = cell(tr, typeLabel(a));
    const reason = reasonText(a);
    if (reason) {
      const span = document.createElement("span");
      span.className = "merged";
      span.textContent = reason;
      kind.appendChild(span);
    }
    [a.camera_id, a.zone, a.label, new Date(a.wall_time).toLocaleString(),
     a.end_s === null ? "ongoing" : a.end_reason === "interrupted" ? "interrupted" : "ended",
     stateText(a)].forEach((v) => cell(tr, v));
    const shot = cell(tr, "");
    if (a.snapshot) {
      const img = document.createElement("img");
      img.alt = "snapshot";
      thumb(a.event_id).then((u) => { if (u) img.src = u; });
      shot.appendChild(img);
    }
    if (a.clip) {  // the masked video, played by the browser (same origin: the session)
      const link = document.createElement("a");
      link.href = `/api/v1/alerts/${encodeURIComponent(a.event_id)}/clip`;
      link.target = "_blank";
      link.rel = "noopener";
      link.className = "clip";
      link.textContent = "Clip";
      link.title = "Video of the event, people blurred";
      shot.appendChild(link);
    }
    const act = cell(tr, "");
    act.className = "actions";
    act.replaceChildren(...actions(a));
    return tr;
  });
  $("rows").replaceChildren(...rows);
}
function signedOut(text) {
  me = null;
  sessionStorage.removeItem(CSRF);
  thumbs.clear();
  $("who").hidden = true;
  $("queue").hidden = true;
  $("sign-in").hidden = false;
  setStatus(text || "");
}
function signedIn(who) {
  me = who;
  $("who-name").textContent = `${who.name} (${who.role})`;
  $("who").hidden = false;
  $("sign-in").hidden = true;
  $("queue").hidden = false;
}
async function refresh() {
  if (me === null) return;
  if (!ruleTypesLoaded) {
    try {  // the labels: without them the list still shows, with each type's own name
      setRuleTypes(await (await api("/api/v1/rule-types")).json());
      ruleTypesLoaded = true;
    } catch (_) { /* tried again at the next refresh */ }
  }
  try {
    const page = await (await api("/api/v1/alerts?limit=100")).json();
    render(page.items);
    setStatus(`${page.total} alerts, updated ${new Date().toLocaleTimeString()}`);
  } catch (e) { if (me !== null) setStatus(e.message); }
}
$("sign-in").addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = $("username").value, password = $("password").value;
  $("password").value = "";
  try {
    const r = await fetch("/api/v1/auth/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password }), credentials: "same-origin" });
    if (!r.ok) {
      showError(r.status === 429 ? "Too many tries: wait a moment, then sign in again."
        : "Wrong user name or password.");
      return;
    }
    const who = await r.json();
    sessionStorage.setItem(CSRF, who.csrf_token);
    clearError();
    signedIn(who);
    await refresh();
  } catch (e) { showError("Sign-in failed: " + e.message); }
});
$("sign-out").addEventListener("click", async () => {
  try { await post("/api/v1/auth/logout", {}); } catch (_) { /* signed out anyway */ }
  signedOut("Signed out.");
});
$("error-close").addEventListener("click", clearError);
(async () => {
  try { signedIn(await (await api("/api/v1/auth/me")).json()); await refresh(); }
  catch (_) { signedOut(""); }
  setInterval(refresh, 2000);
})();
