"use strict";
const KEY = "argus.apiKey", thumbs = new Map();
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
async function api(path, opts = {}) {
  const headers = { "X-API-Key": sessionStorage.getItem(KEY) || "", ...(opts.headers || {}) };
  const r = await fetch(path, { ...opts, headers });
  if (!r.ok) {
    if (r.status === 401) throw new Error("API key rejected");
    let detail = "";
    try {
      const body = await r.json();
      if (typeof body.detail === "string") detail = ": " + body.detail;
      else if (Array.isArray(body.detail)) {
        detail = ": " + body.detail.map((d) => String(d && d.msg)).join("; ");
      }
    } catch (_) { /* no JSON body: the status says it */ }
    throw new Error("HTTP " + r.status + detail);
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
async function ack(a, button) {
  button.disabled = true;
  try {
    await post(`/api/v1/alerts/${encodeURIComponent(a.event_id)}/ack`, {});
    clearError();
    await refresh();
  } catch (e) { showError("Acknowledge failed: " + e.message); button.disabled = false; }
}
async function falseAlarm(a, button) {
  const hours = Math.round(FALSE_ALARM_EXPIRY_S / 3600);
  if (!window.confirm(`Mark "${typeLabel(a)}" a false alarm? Similar alerts from this ` +
      `camera are suppressed for ${hours} h.`)) return;
  button.disabled = true;
  // region: same rule, zone and label near this box; an alert without a box (camera
  // health) has no region, so its rule on this camera is suppressed instead.
  const scope = Array.isArray(a.bbox) ? "region" : "rule";
  try {
    await post(`/api/v1/alerts/${encodeURIComponent(a.event_id)}/false-positive`,
      { scope, expires_in_s: FALSE_ALARM_EXPIRY_S });
    clearError();
    await refresh();
  } catch (e) { showError("False alarm failed: " + e.message); button.disabled = false; }
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
    tr.className = a.status;
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
     a.end_s === null ? "open" : a.end_reason === "interrupted" ? "interrupted" : "ended",
     a.status].forEach((v) => cell(tr, v));
    const shot = cell(tr, "");
    if (a.snapshot) {
      const img = document.createElement("img");
      img.alt = "snapshot";
      thumb(a.event_id).then((u) => { if (u) img.src = u; });
      shot.appendChild(img);
    }
    const act = cell(tr, "");
    act.className = "actions";
    if (a.status === "new") act.appendChild(button("Acknowledge", "ack", (b) => ack(a, b)));
    if (a.status !== "false_positive") {
      act.appendChild(button("False alarm", "false-alarm", (b) => falseAlarm(a, b)));
    }
    return tr;
  });
  $("rows").replaceChildren(...rows);
}
async function refresh() {
  if (!sessionStorage.getItem(KEY)) { setStatus("Enter the API key."); return; }
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
  } catch (e) { setStatus(e.message); }
}
$("save").addEventListener("click", () => {
  sessionStorage.setItem(KEY, $("key").value);
  $("key").value = "";
  thumbs.clear();
  refresh();
});
$("error-close").addEventListener("click", clearError);
refresh();
setInterval(refresh, 2000);
