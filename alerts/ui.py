"""The operator page served at ``/``: one HTML document, vanilla JS, no external assets.

The API key is typed once and kept in ``sessionStorage`` (gone when the tab
closes); every request sends it as ``X-API-Key``.  Snapshots are fetched with
the header and shown through blob URLs.  All alert text goes through
``textContent`` (never ``innerHTML``), and the page runs under a strict
Content-Security-Policy with a per-response nonce.
"""

from __future__ import annotations

import secrets

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
table {{ border-collapse: collapse; width: 100%; margin-top: 1rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .3rem .5rem; text-align: left; }}
th {{ background: #f4f4f4; }}
tr.new td:first-child {{ font-weight: bold; color: #b00; }}
tr.acknowledged {{ color: #888; }}
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
<table>
  <thead><tr><th>Priority</th><th>Type</th><th>Camera</th><th>Zone</th><th>Label</th>
  <th>Start</th><th>State</th><th>Status</th><th>Snapshot</th><th></th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<script nonce="{nonce}">
"use strict";
const KEY = "argus.apiKey", thumbs = new Map();
const $ = (id) => document.getElementById(id);
const setStatus = (text) => {{ $("status").textContent = text; }};
async function api(path, opts = {{}}) {{
  const headers = {{ "X-API-Key": sessionStorage.getItem(KEY) || "", ...(opts.headers || {{}}) }};
  const r = await fetch(path, {{ ...opts, headers }});
  if (!r.ok) throw new Error(r.status === 401 ? "API key rejected" : "HTTP " + r.status);
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
    thumbs.set(id, api(`/api/v1/alerts/${{id}}/snapshot`)
      .then((r) => r.blob()).then((b) => URL.createObjectURL(b)).catch(() => null));
  }}
  return thumbs.get(id);
}}
async function ack(id, button) {{
  button.disabled = true;
  try {{
    await api(`/api/v1/alerts/${{id}}/ack`, {{
      method: "POST", headers: {{ "Content-Type": "application/json" }}, body: "{{}}" }});
    await refresh();
  }} catch (e) {{ setStatus("Acknowledge failed: " + e.message); button.disabled = false; }}
}}
function render(items) {{
  const rows = items.map((a) => {{
    const tr = document.createElement("tr");
    tr.className = a.status;
    [a.priority, a.type, a.camera_id, a.zone, a.label,
     new Date(a.wall_time).toLocaleString(), a.end_s === null ? "open" : "ended",
     a.status].forEach((v) => cell(tr, v));
    const shot = cell(tr, "");
    if (a.snapshot) {{
      const img = document.createElement("img");
      img.alt = "snapshot";
      thumb(a.event_id).then((u) => {{ if (u) img.src = u; }});
      shot.appendChild(img);
    }}
    const act = cell(tr, "");
    if (a.status === "new") {{
      const b = document.createElement("button");
      b.textContent = "Acknowledge";
      b.addEventListener("click", () => ack(a.event_id, b));
      act.appendChild(b);
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
    return _PAGE.format(nonce=nonce), csp
