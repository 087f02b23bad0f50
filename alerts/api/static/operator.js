"use strict";
const KEY = "argus.apiKey", thumbs = new Map();
const FALSE_ALARM_EXPIRY_S = 86400;
const TYPE_LABELS = new Map([
  ["intrusion", "Intrusion"], ["loitering", "Loitering"], ["line_crossing", "Line crossing"],
  ["abandoned_object", "Abandoned object"], ["fall", "Fall"], ["crowding", "Crowding"],
  ["wrong_way", "Wrong way"], ["signal_lost", "Camera signal lost"],
  ["frozen", "Camera frozen"], ["covered", "Camera covered"], ["blur", "Camera blurred"],
  ["moved", "Camera moved"],
]);
const $ = (id) => document.getElementById(id);
const setStatus = (text) => { $("status").textContent = text; };
function showError(text) { $("error-text").textContent = text; $("error").hidden = false; }
function clearError() { $("error-text").textContent = ""; $("error").hidden = true; }
const isCount = (v) => typeof v === "number" && Number.isFinite(v);
function typeLabel(a) {
  const d = a.details || {};
  const type = String(a.type ?? "");
  let text = TYPE_LABELS.get(type) ?? (type.charAt(0).toUpperCase() + type.slice(1))
    .replaceAll("_", " ");
  if (type === "line_crossing") {
    if (a.line) text += " " + a.line;
    if (a.direction) text += " (" + a.direction + ")";
  } else if (type === "crowding" && isCount(d.count)) {
    const what = !a.label || a.label === "person" ? (d.count === 1 ? "person" : "people")
      : (d.count === 1 ? "object" : "objects");
    text += ": " + d.count + " " + what;
  }
  return text;
}
function mergedText(a) {
  const m = (a.details || {}).members;
  return isCount(m) && m > 1 ? m + " events merged" : "";
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
    const merged = mergedText(a);
    if (merged) {
      const span = document.createElement("span");
      span.className = "merged";
      span.textContent = merged;
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
