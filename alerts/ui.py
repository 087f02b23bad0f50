"""The operator page served at ``/``: one HTML document, vanilla JS, no external assets.

The API key is typed once and kept in ``sessionStorage`` (gone when the tab
closes); every request sends it as ``X-API-Key``.  Snapshots are fetched with
the header and shown through blob URLs.  All alert text goes through
``textContent`` (never ``innerHTML``), and the page runs under a strict
Content-Security-Policy with a per-response nonce.

Each alert shows a readable label of its type built from the record's fields
(``"Line crossing gate (+)"``, ``"Crowding: 7 people"``, ``"Camera covered"``), how
many events were merged into it (``details.members`` > 1), and two actions:
*Acknowledge* and *False alarm*.  *False alarm* (after a confirmation) posts to
``/api/v1/alerts/{event_id}/false-positive`` with scope ``"region"`` (``"rule"`` for
an alert without a box, e.g. camera health, which has no region to suppress) and
``FALSE_ALARM_EXPIRY_S``; a failed action is shown in the page until dismissed.
"""

from __future__ import annotations

import secrets

FALSE_ALARM_EXPIRY_S = 24 * 3600
"""How long the suppression created by the page's *False alarm* button lasts, seconds."""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Argus alerts</title>
<style nonce="{nonce}">
body {{ font: 14px system-ui, sans-serif; margin: 1rem; color: #222; }}
header {{ display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }}
h1 {{ font-size: 1.2rem; margin: 0 1rem 0 0; }}
#status {{ color: #666; }}
#error {{ background: #fde8e8; color: #900; padding: .4rem .6rem; margin: .5rem 0 0; }}
#error button {{ margin-left: 1rem; }}
table {{ border-collapse: collapse; width: 100%; margin-top: 1rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .3rem .5rem; text-align: left; }}
th {{ background: #f4f4f4; }}
tr.new td:first-child {{ font-weight: bold; color: #b00; }}
tr.acknowledged, tr.false_positive {{ color: #888; }}
.merged {{ display: block; font-size: .85em; color: #666; }}
td.actions button {{ margin-right: .3rem; }}
img {{ height: 64px; display: block; }}
</style>
</head>
<body>
<header>
  <h1>Argus alerts</h1>
  <label>API key <input id="key" type="password" autocomplete="off" size="24"></label>
  <button id="save">Use key</button>
  <span id="status"></span>
</header>
<p id="error" role="alert" hidden><span id="error-text"></span>
<button id="error-close" type="button">Dismiss</button></p>
<table>
  <thead><tr><th>Priority</th><th>Type</th><th>Camera</th><th>Zone</th><th>Label</th>
  <th>Start</th><th>State</th><th>Status</th><th>Snapshot</th><th></th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<script nonce="{nonce}">
"use strict";
const KEY = "argus.apiKey", thumbs = new Map();
const FALSE_ALARM_EXPIRY_S = {false_alarm_expiry_s};
const TYPE_LABELS = new Map([
  ["intrusion", "Intrusion"], ["loitering", "Loitering"], ["line_crossing", "Line crossing"],
  ["abandoned_object", "Abandoned object"], ["fall", "Fall"], ["crowding", "Crowding"],
  ["wrong_way", "Wrong way"], ["signal_lost", "Camera signal lost"],
  ["frozen", "Camera frozen"], ["covered", "Camera covered"], ["blur", "Camera blurred"],
  ["moved", "Camera moved"],
]);
const $ = (id) => document.getElementById(id);
const setStatus = (text) => {{ $("status").textContent = text; }};
function showError(text) {{ $("error-text").textContent = text; $("error").hidden = false; }}
function clearError() {{ $("error-text").textContent = ""; $("error").hidden = true; }}
const isCount = (v) => typeof v === "number" && Number.isFinite(v);
function typeLabel(a) {{
  const d = a.details || {{}};
  const type = String(a.type ?? "");
  let text = TYPE_LABELS.get(type) ?? (type.charAt(0).toUpperCase() + type.slice(1))
    .replaceAll("_", " ");
  if (type === "line_crossing") {{
    if (a.line) text += " " + a.line;
    if (a.direction) text += " (" + a.direction + ")";
  }} else if (type === "crowding" && isCount(d.count)) {{
    const what = !a.label || a.label === "person" ? (d.count === 1 ? "person" : "people")
      : (d.count === 1 ? "object" : "objects");
    text += ": " + d.count + " " + what;
  }}
  return text;
}}
function mergedText(a) {{
  const m = (a.details || {{}}).members;
  return isCount(m) && m > 1 ? m + " events merged" : "";
}}
async function api(path, opts = {{}}) {{
  const headers = {{ "X-API-Key": sessionStorage.getItem(KEY) || "", ...(opts.headers || {{}}) }};
  const r = await fetch(path, {{ ...opts, headers }});
  if (!r.ok) {{
    if (r.status === 401) throw new Error("API key rejected");
    let detail = "";
    try {{
      const body = await r.json();
      if (typeof body.detail === "string") detail = ": " + body.detail;
    }} catch (_) {{ /* no JSON body: the status says it */ }}
    throw new Error("HTTP " + r.status + detail);
  }}
  return r;
}}
function cell(tr, value) {{
  const td = tr.insertCell();
  td.textContent = value === null || value === undefined ? "" : String(value);
  return td;
}}
function thumb(id) {{
  if (!thumbs.has(id)) {{
    if (thumbs.size > 300) {{
      const [old, p] = thumbs.entries().next().value;
      thumbs.delete(old);
      p.then((u) => u && URL.revokeObjectURL(u));
    }}
    thumbs.set(id, api(`/api/v1/alerts/${{encodeURIComponent(id)}}/snapshot`)
      .then((r) => r.blob()).then((b) => URL.createObjectURL(b)).catch(() => null));
  }}
  return thumbs.get(id);
}}
async function post(path, body) {{
  return api(path, {{
    method: "POST", headers: {{ "Content-Type": "application/json" }},
    body: JSON.stringify(body) }});
}}
async function ack(a, button) {{
  button.disabled = true;
  try {{
    await post(`/api/v1/alerts/${{encodeURIComponent(a.event_id)}}/ack`, {{}});
    clearError();
    await refresh();
  }} catch (e) {{ showError("Acknowledge failed: " + e.message); button.disabled = false; }}
}}
async function falseAlarm(a, button) {{
  const hours = Math.round(FALSE_ALARM_EXPIRY_S / 3600);
  if (!window.confirm(`Mark "${{typeLabel(a)}}" a false alarm? Similar alerts from this ` +
      `camera are suppressed for ${{hours}} h.`)) return;
  button.disabled = true;
  // region: same rule, zone and label near this box; an alert without a box (camera
  // health) has no region, so its rule on this camera is suppressed instead.
  const scope = Array.isArray(a.bbox) ? "region" : "rule";
  try {{
    await post(`/api/v1/alerts/${{encodeURIComponent(a.event_id)}}/false-positive`,
      {{ scope, expires_in_s: FALSE_ALARM_EXPIRY_S }});
    clearError();
    await refresh();
  }} catch (e) {{ showError("False alarm failed: " + e.message); button.disabled = false; }}
}}
function button(text, className, onClick) {{
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = text;
  b.addEventListener("click", () => onClick(b));
  return b;
}}
function render(items) {{
  const rows = items.map((a) => {{
    const tr = document.createElement("tr");
    tr.className = a.status;
    cell(tr, a.priority);
    const kind = cell(tr, typeLabel(a));
    const merged = mergedText(a);
    if (merged) {{
      const span = document.createElement("span");
      span.className = "merged";
      span.textContent = merged;
      kind.appendChild(span);
    }}
    [a.camera_id, a.zone, a.label, new Date(a.wall_time).toLocaleString(),
     a.end_s === null ? "open" : "ended", a.status].forEach((v) => cell(tr, v));
    const shot = cell(tr, "");
    if (a.snapshot) {{
      const img = document.createElement("img");
      img.alt = "snapshot";
      thumb(a.event_id).then((u) => {{ if (u) img.src = u; }});
      shot.appendChild(img);
    }}
    const act = cell(tr, "");
    act.className = "actions";
    if (a.status === "new") act.appendChild(button("Acknowledge", "ack", (b) => ack(a, b)));
    if (a.status !== "false_positive") {{
      act.appendChild(button("False alarm", "false-alarm", (b) => falseAlarm(a, b)));
    }}
    return tr;
  }});
  $("rows").replaceChildren(...rows);
}}
async function refresh() {{
  if (!sessionStorage.getItem(KEY)) {{ setStatus("Enter the API key."); return; }}
  try {{
    const page = await (await api("/api/v1/alerts?limit=100")).json();
    render(page.items);
    setStatus(`${{page.total}} alerts, updated ${{new Date().toLocaleTimeString()}}`);
  }} catch (e) {{ setStatus(e.message); }}
}}
$("save").addEventListener("click", () => {{
  sessionStorage.setItem(KEY, $("key").value);
  $("key").value = "";
  thumbs.clear();
  refresh();
}});
$("error-close").addEventListener("click", clearError);
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
"""


def operator_page() -> tuple[str, str]:
    """The operator page and the Content-Security-Policy that goes with it.

    Returns:
        ``(html, csp)``: the page with a fresh nonce, and the header value allowing
        only that nonce's script/style, same-origin ``fetch`` and ``blob:`` images.
    """
    nonce = secrets.token_urlsafe(16)
    csp = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "img-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    return _PAGE.format(nonce=nonce, false_alarm_expiry_s=FALSE_ALARM_EXPIRY_S), csp
