// One alert: the snapshot large with the box, the zone or line and the track's path drawn
// over it, the clip, what to do, why (the rule's settings in words), its history and the
// camera's other recent alerts.  Evidence is the masked copy (people blurred); "Show
// unmasked" is offered only to roles that may see the original (each view is audited).
import { allowed, may, perform } from "./actions.js";
import { ApiError, alertPath, getJson } from "./api.js";
import {
  $, DISPOSITION_WORDS, clock, el, eventText, isNumber, reasonText, stateText, svg, typeLabel,
} from "./text.js";

let current = null;     // the alert shown
let unmasked = false;
let ruleTypes = [];
let onApplied = () => {};
export function setRuleTypes(types) { ruleTypes = Array.isArray(types) ? types : []; }
export function init(opts) { onApplied = opts.applied; }
export const shownId = () => (current ? current.event_id : null);

const evidence = (what) => alertPath(current.event_id, "/" + what) + (unmasked ? "?unmasked=true" : "");

let asked = 0;  // the latest show(): an older answer arriving late is dropped
export async function show(id) {
  const mine = ++asked;
  const view = $("view-alert");
  view.replaceChildren(el("p", {}, "Loading…"));
  unmasked = false;
  current = null;  // no key acts on the alert shown before while this one loads
  try {
    const got = await getJson(alertPath(id));
    if (mine !== asked) return;
    current = got;
  } catch (e) {
    if (mine !== asked) return;
    current = null;
    const words = e instanceof ApiError && e.status === 404 ? "This alert does not exist, or is not of your cameras."
      : "The alert could not be loaded: " + e.message;
    view.replaceChildren(back(), el("p", { role: "alert", class: "error" }, words));
    return;
  }
  view.replaceChildren(
    back(),
    el("div", { id: "detail-head" }),
    el("p", { id: "detail-error", role: "alert", class: "error", hidden: true }),
    el("div", { class: "media" },
      el("figure", { id: "snapshot-figure" }),
      el("figure", { id: "clip-figure" })),
    el("div", { class: "columns" },
      el("section", { "aria-labelledby": "why-h" },
        el("h3", { id: "why-h" }, "Why"), el("p", { id: "why" }),
        el("h3", {}, "Rule settings"), el("dl", { id: "rule-settings" })),
      el("section", { "aria-labelledby": "history-h" },
        el("h3", { id: "history-h" }, "History"), el("ol", { id: "history" })),
      el("section", { "aria-labelledby": "recent-h" },
        el("h3", { id: "recent-h" }, "Recent alerts on this camera"), el("ul", { id: "recent" }))));
  head();
  media();
  $("why").textContent = reasonText(current) || "The rule's condition held.";
  ruleSettings();
  history();
  recent();
}

function back() {
  const kept = sessionStorage.getItem("argus.filters");  // the queue's filters, as left
  return el("p", {}, el("a", { href: "#/queue" + (kept ? "?" + kept : ""), id: "back" }, "← Back to the queue"));
}

function head() {
  const a = current;
  const buttons = allowed(a).map((x) => {
    const b = el("button", { type: "button", class: "action-" + x.action,
      "aria-keyshortcuts": x.key || null, title: x.key ? `Key: ${x.key}` : null }, x.name);
    b.addEventListener("click", () => act(x.action, b));
    return b;
  });
  if (may("evidence.unmasked") && (a.snapshot || a.clip)) {
    const b = el("button", { type: "button", class: "unmask", "aria-pressed": unmasked ? "true" : "false" },
      unmasked ? "Show masked" : "Show unmasked");
    b.addEventListener("click", () => { unmasked = !unmasked; head(); media(); });
    buttons.push(b);
  }
  $("detail-head").replaceChildren(
    el("h2", {}, `${typeLabel(a.type)} — priority ${a.priority}`),
    el("p", { class: "facts" },
      el("span", {}, "Camera ", el("strong", {}, a.camera_id)),
      a.zone ? el("span", {}, "Zone ", el("strong", {}, a.zone)) : null,
      a.line ? el("span", {}, "Line ", el("strong", {}, a.line)) : null,
      a.label ? el("span", {}, "Object ", el("strong", {}, a.label)) : null,
      el("span", {}, "Raised ", el("strong", {}, clock(a.wall_time))),
      el("span", {}, "Event ", el("strong", {}, eventText(a))),
      el("span", { class: "state" }, "State ", el("strong", { id: "detail-state" }, stateText(a)))),
    el("div", { id: "detail-actions", role: "group", "aria-label": "Actions" }, buttons));
}

export async function act(action, button) {
  if (!current) return;
  const out = $("detail-error");
  if (button) button.disabled = true;
  try {
    const after = await perform(action, current);
    if (after) { current = after; onApplied(after); out.hidden = true; head(); history(); }
  } catch (e) {
    out.textContent = e.message;
    out.hidden = false;
    if (e.status === 409) {  // someone else acted first: show the alert as it is now
      try { const now = await getJson(alertPath(current.event_id)); onApplied(now); changed(now); }
      catch (_) { /* the stream brings it */ }
    }
  } finally { if (button) button.disabled = false; }
}
export function keyAction(key) {
  if (!current) return false;
  const found = allowed(current).find((x) => x.key === key);
  if (!found) return false;
  act(found.action, null);
  return true;
}
// A pushed change of the alert shown: its facts and buttons follow (the media stay).
export function changed(a) {
  if (!current || a.event_id !== current.event_id || a.change_seq <= current.change_seq) return;
  current = a;
  head();
  history();
}

// -- the snapshot with its overlay, and the clip ------------------------------------------
function media() {
  const a = current;
  const fig = $("snapshot-figure"), clipFig = $("clip-figure");
  const masked = unmasked ? "original" : "people blurred";
  if (!a.snapshot) {
    fig.replaceChildren(el("div", { class: "no-media" }, "No snapshot for this alert"));
  } else {
    const img = el("img", { src: evidence("snapshot"), alt: `Snapshot of ${a.camera_id} when the alert started (${masked})` });
    const stage = el("div", { class: "stage" }, img);
    img.addEventListener("load", () => {
      stage.append(overlay(a, img.naturalWidth, img.naturalHeight));
      if (unmasked) history();  // the view was written to the trail: show it
    });
    img.addEventListener("error", () => stage.replaceWith(el("div", { class: "no-media", role: "status" },
      "The snapshot could not be loaded")));
    fig.replaceChildren(stage, el("figcaption", {}, `Snapshot (${masked}). `, legend(a)));
  }
  if (!a.clip) {
    clipFig.replaceChildren(el("div", { class: "no-media" }, "No clip for this alert"));
  } else {
    const video = el("video", { src: evidence("clip"), controls: true, preload: "metadata", muted: true,
      "aria-label": `Clip of the event (${masked})` });
    video.addEventListener("error", () => clipMissing(video, a));
    clipFig.replaceChildren(video, el("figcaption", {}, `Clip (${masked})`));
  }
}
// The video did not load: the clip may still be in the making (the worker writes it once
// the event's window has passed), or was not made.  Ask why, say it, and look again later.
async function clipMissing(video, a) {
  const box = el("div", { class: "no-media", role: "status" }, "The clip could not be played");
  video.replaceWith(box);
  try {
    const r = await fetch(evidence("clip-info"), { credentials: "same-origin" });
    if (r.ok) return;  // described but not playable here: the words above stand
    const body = await r.json().catch(() => ({}));
    const retry = Number(r.headers.get("Retry-After"));
    if (r.status === 404 && retry > 0) {
      box.textContent = "The clip is being made; it shows here when it is ready.";
      setTimeout(() => { if (current === a && box.isConnected) media(); }, retry * 1000);
    } else if (typeof body.detail === "string") {
      box.textContent = "No clip: " + body.detail;
    }
  } catch (_) { /* the words above stand */ }
}

function legend(a) {
  const g = a.geometry || {};
  const parts = [];
  if (Array.isArray(a.bbox)) parts.push("box: the object when it started");
  if (Array.isArray(g.zone)) parts.push("dashed: the zone");
  if (Array.isArray(g.line)) parts.push("dashed: the line");
  if (Array.isArray(g.path)) parts.push("blue: the path it took");
  return parts.join("; ");
}
const pts = (list) => list.filter((p) => Array.isArray(p) && isNumber(p[0]) && isNumber(p[1]))
  .map((p) => `${p[0]},${p[1]}`).join(" ");
function overlay(a, w, h) {
  const g = a.geometry || {};
  const frame = Array.isArray(g.frame) && isNumber(g.frame[0]) && isNumber(g.frame[1]) ? g.frame : [w, h];
  const s = svg("svg", { class: "overlay", viewBox: `0 0 ${frame[0]} ${frame[1]}`, preserveAspectRatio: "none",
    "aria-hidden": "true" });
  if (Array.isArray(g.zone) && g.zone.length >= 3) s.append(svg("polygon", { class: "zone", points: pts(g.zone) }));
  if (Array.isArray(g.line) && g.line.length === 2) {
    const [p, q] = g.line;
    s.append(svg("line", { class: "line", x1: p[0], y1: p[1], x2: q[0], y2: q[1] }));
  }
  if (Array.isArray(g.path) && g.path.length >= 1) {
    s.append(svg("polyline", { class: "path", points: pts(g.path) }));
    const end = g.path[g.path.length - 1];
    if (Array.isArray(end)) s.append(svg("circle", { class: "path-end", cx: end[0], cy: end[1], r: Math.max(3, frame[0] / 200) }));
  }
  if (Array.isArray(a.bbox) && a.bbox.length === 4 && a.bbox.every(isNumber)) {
    const [x1, y1, x2, y2] = a.bbox;
    s.append(svg("rect", { class: "box", x: x1, y: y1, width: Math.max(0, x2 - x1), height: Math.max(0, y2 - y1) }));
  }
  return s;
}

// -- why: the rule's settings in words ------------------------------------------------------
function words(v) {
  if (Array.isArray(v)) return v.map(words).join(", ");
  if (v && typeof v === "object") return Object.entries(v).map(([k, x]) => `${k} ${words(x)}`).join(", ");
  if (v === true) return "yes";
  if (v === false) return "no";
  return String(v);
}
async function ruleSettings() {
  const dl = $("rule-settings");
  const a = current;
  let rule = null;
  try {
    const doc = await getJson("/api/v1/rules");
    rule = (doc.rules || []).find((r) => r.camera === a.camera_id &&
      (r.id === a.rule_id || (!r.id && [r.type, `${r.type}:${r.zone || r.line || ""}`].includes(a.rule_id))));
  } catch (_) { /* below */ }
  if (!a || a !== current) return;
  if (!rule) { dl.replaceChildren(el("dd", {}, `Rule ${a.rule_id}: its settings are not available here.`)); return; }
  const type = ruleTypes.find((t) => t.type === rule.type);
  const props = (type && type.config_schema && type.config_schema.properties) || {};
  const items = [el("dt", {}, "Rule"), el("dd", {}, `${typeLabel(rule.type)} (${a.rule_id})`)];
  if (type && type.summary) items.push(el("dt", {}, "What it watches"), el("dd", {}, type.summary));
  for (const [k, v] of Object.entries(rule)) {
    if (["type", "camera", "id"].includes(k) || v === null) continue;
    const p = props[k] || {};
    // the setting's description says what it means ("Dwell before raising, seconds."),
    // except a yes/no one's, which says what "false" does: its title then ("Enabled")
    const term = typeof v === "boolean" || !p.description ? p.title || k : p.description.replace(/\.$/, "");
    const value = Array.isArray(v) && v.length === 0 ? "none" : words(v);
    items.push(el("dt", { title: p.description || null }, term), el("dd", {}, value));
  }
  dl.replaceChildren(...items);
}

// -- history and the camera's recent alerts ---------------------------------------------
const ACTIONS = {
  "alert.claim": "claimed it", "alert.release": "released it", "alert.escalate": "escalated it",
  "alert.close": "closed it", "alert.reopen": "reopened it", "alert.ack": "acknowledged it",
  "alert.false_positive": "marked it a false alarm", "evidence.unmasked": "viewed the evidence unmasked",
};
function entryText(e) {
  const d = e.detail || {};
  const parts = [ACTIONS[e.action] || e.action];
  if (d.disposition) parts.push(`as ${DISPOSITION_WORDS[d.disposition] || d.disposition}`);
  if (d.to && e.action === "alert.escalate") parts.push(`to ${d.escalated_to || "supervisors"}`);
  if (d.what) parts.push(`(${d.what})`);
  if (d.note) parts.push(`— "${d.note}"`);
  return parts.join(" ");
}
async function history() {
  const a = current;
  const ol = $("history");
  try {
    const page = await getJson(alertPath(a.event_id, "/audit"));
    if (a !== current) return;
    const items = page.items.slice().reverse().map((e) => el("li", {}, el("time", {}, clock(e.at)), " ",
      el("strong", {}, e.actor), " ", entryText(e)));
    ol.replaceChildren(el("li", {}, el("time", {}, clock(a.received_at)), " raised"), ...items);
  } catch (e) {
    ol.replaceChildren(el("li", {}, e instanceof ApiError && e.status === 403
      ? "The history is for supervisors." : "The history could not be loaded."));
  }
}
async function recent() {
  const a = current;
  const ul = $("recent");
  try {
    const page = await getJson(`/api/v1/alerts?camera_id=${encodeURIComponent(a.camera_id)}&limit=11`);
    if (a !== current) return;
    const items = page.items.filter((x) => x.event_id !== a.event_id).slice(0, 10)
      .map((x) => el("li", {}, el("a", { href: `#/alert/${encodeURIComponent(x.event_id)}` },
        `${typeLabel(x.type)}, priority ${x.priority}`), ` — ${clock(x.wall_time)}, ${stateText(x)}`));
    ul.replaceChildren(...(items.length ? items : [el("li", {}, "None")]));
  } catch (_) {
    ul.replaceChildren(el("li", {}, "Could not be loaded."));
  }
}
