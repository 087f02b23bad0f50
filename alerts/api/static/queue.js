// The queue: the alerts of the user's cameras that are not closed, most urgent first, kept
// up to date by server push (GET /api/v1/changes, Server-Sent Events).
//
// Every alert carries the store's change number of its last change (change_seq).  The list
// is loaded after reading the store's last number; the stream sends every change after it,
// and after a dropped connection the browser sends back the last number it had
// (Last-Event-ID).  A change is applied only when its number is above the one the page
// has for that alert: none is applied twice, whatever order pages and events come in.
import { allowed, may, perform } from "./actions.js";
import { alertPath, getJson } from "./api.js";
import { cue, settle } from "./cue.js";
import { $, duration, el, reasonText, secondsSince, stateText, typeLabel } from "./text.js";

const OPEN_STATES = ["new", "claimed", "escalated"];
const FIRST_PAGE = 200;        // shown at once (time to first render)
const PAGE = 500;              // then the rest, page by page, in event id order
const MAX_LOADED = 20000;      // beyond this the page asks for narrower filters
export const RENDER_LIMIT = 300;  // rows in the table at once
const CUE_WITHIN_S = 60;       // a cue only for alerts raised this recently

const alerts = new Map();      // event_id -> alert, open ones only
const numbers = new Map();     // event_id -> change_seq applied (closed and removed too)
const rows = new Map();        // event_id -> {seq, tr, wait, sla} (rows are reused)
let head = 0;                  // the last change number applied
let source = null;             // the EventSource
let settings = { cue_min_priority: 70, sla_min_priority: null, sla_claim_within_s: null, cameras: [] };
let selected = null;           // event_id of the selected row
let shown = [];                // the alerts in the table, in order
let openAlert = () => {};
let onChange = () => {};       // the detail view's: an alert it shows changed
let renderQueued = false;
export const stats = { lastRenderMs: 0, lastApplyMs: 0, loaded: 0, liveSince: 0 };

export const filters = { group: "", camera: "", type: "", state: "", since: "" };
export function setFilters(f) {
  for (const k of Object.keys(filters)) filters[k] = typeof f[k] === "string" ? f[k] : "";
  ordered = null;
}
export function init(opts) { openAlert = opts.open; onChange = opts.changed; }
export function setSettings(s) { settings = s; }
export const cameraGroups = () => settings.cameras;
export const alertById = (id) => alerts.get(id);

function live(text, state) {
  const l = $("live");
  l.textContent = text;
  l.dataset.state = state;
}

// Apply one alert as the service sent it (list, stream or an action's answer); whether it
// was new to this page.
export function apply(a) {
  const known = numbers.get(a.event_id);
  if (known !== undefined && known > 0 && a.change_seq <= known) return false;
  numbers.set(a.event_id, a.change_seq);
  const open = OPEN_STATES.includes(a.state);
  if (open) alerts.set(a.event_id, a); else alerts.delete(a.event_id);
  reorder(a.event_id, open ? a : null);
  settle(a);
  onChange(a);
  return known === undefined;
}
function removed(id, seq) {
  numbers.set(id, seq);
  alerts.delete(id);
  reorder(id, null);
}

// The alerts that pass the filters, most urgent first: rebuilt when the filters change (and
// every half minute under a time filter), otherwise kept by moving the one alert that
// changed, so a change costs a search, not a sort of the whole queue.
let ordered = null;
let orderedAt = 0;
let bulk = false;  // while the list loads: rebuilt once per frame instead
let truncated = false;  // more open alerts than MAX_LOADED: the page holds the first ones
function reorder(id, a) {
  if (ordered === null) return;
  if (bulk) { ordered = null; return; }
  const at = ordered.findIndex((x) => x.event_id === id);
  if (at >= 0) ordered.splice(at, 1);
  if (a !== null && matches(a, Date.now())) {
    let lo = 0, hi = ordered.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (urgency(ordered[mid], a) < 0) lo = mid + 1; else hi = mid; }
    ordered.splice(lo, 0, a);
  }
}
function inOrder(now) {
  if (ordered === null || (filters.since && now - orderedAt > 30000)) {
    ordered = [...alerts.values()].filter((a) => matches(a, now)).sort(urgency);
    orderedAt = now;
  }
  return ordered;
}

function matches(a, now) {
  if (filters.camera && a.camera_id !== filters.camera) return false;
  if (filters.group) {
    const cam = settings.cameras.find((c) => c.id === a.camera_id);
    if (!cam || !cam.groups.includes(filters.group)) return false;
  }
  if (filters.type && a.type !== filters.type) return false;
  if (filters.state === "mine") { if (a.state !== "claimed" || a.owner !== currentName()) return false; }
  else if (filters.state && a.state !== filters.state) return false;
  if (filters.since && secondsSince(a.wall_time, now) > Number(filters.since)) return false;
  return true;
}
let currentName = () => "";
export function setName(fn) { currentName = fn; }

// Most urgent first: priority, then escalated before the rest, then the longest waiting.
function urgency(a, b) {
  return b.priority - a.priority
    || (b.state === "escalated") - (a.state === "escalated")
    || new Date(a.received_at) - new Date(b.received_at)
    || (a.event_id < b.event_id ? -1 : 1);
}

function slaLeft(a, now) {
  if (a.state !== "new" || settings.sla_min_priority === null || a.priority < settings.sla_min_priority) return null;
  return settings.sla_claim_within_s - secondsSince(a.received_at, now);
}
function timers(r, a, now) {
  r.wait.textContent = duration(secondsSince(a.received_at, now));
  const left = slaLeft(a, now);
  r.sla.textContent = left === null ? "" : left >= 0 ? duration(left) + " left" : "overdue " + duration(-left);
  r.sla.className = left === null ? "sla" : left < 0 ? "sla overdue" : left < 60 ? "sla soon" : "sla";
}

function buildRow(a, now) {
  const band = a.priority >= 80 ? "high" : a.priority >= 50 ? "mid" : "low";
  const shot = el("td", { class: "thumb" });
  if (a.snapshot) {
    const img = el("img", { alt: "", loading: "lazy", src: alertPath(a.event_id, "/snapshot") });
    img.addEventListener("error", () => img.replaceWith(el("span", { class: "missing" }, "no picture")));
    shot.append(img);
  } else shot.append(el("span", { class: "missing" }, "no picture"));
  const wait = el("td", { class: "wait" }), sla = el("td", { class: "sla" });
  const tr = el("tr", { class: `state-${a.state}`, "data-id": a.event_id, tabindex: "-1",
    "aria-label": `Priority ${a.priority}, ${typeLabel(a.type)} on ${a.camera_id}, ${stateText(a)}` },
    el("td", { class: `prio ${band}` }, a.priority),
    wait, sla,
    el("td", {}, a.camera_id),
    el("td", {}, typeLabel(a.type), el("span", { class: "sub" }, a.zone || a.line || "")),
    el("td", { class: "reason" }, reasonText(a)),
    shot,
    el("td", {}, a.owner || ""),
    el("td", { class: "state" }, stateText(a)));
  tr.addEventListener("click", () => { select(a.event_id); openAlert(a.event_id); });
  tr.addEventListener("focus", () => { if (selected !== a.event_id) select(a.event_id); });
  const r = { seq: a.change_seq, state: a.state, tr, wait, sla };
  timers(r, a, now);
  return r;
}

export function render() {
  const t0 = performance.now(), now = Date.now();
  const focused = document.activeElement instanceof HTMLElement
    && document.activeElement.closest("#queue-rows") !== null;
  const was = shown.findIndex((a) => a.event_id === selected);
  const all = inOrder(now);
  shown = all.slice(0, RENDER_LIMIT);
  if (selected !== null && was >= 0 && !shown.some((a) => a.event_id === selected)) {
    // the selected alert left the queue (closed): the next one takes its place
    selected = shown.length ? shown[Math.min(was, shown.length - 1)].event_id : null;
  }
  const trs = shown.map((a) => {
    let r = rows.get(a.event_id);
    if (!r || r.seq !== a.change_seq) { r = buildRow(a, now); rows.set(a.event_id, r); }
    mark(r.tr, a.event_id === selected);
    return r.tr;
  });
  // one row in the Tab order (the selected one, else the first): Tab reaches the list,
  // j/k (or the arrows) move within it
  if (trs.length && !shown.some((a) => a.event_id === selected)) trs[0].tabIndex = 0;
  for (const id of rows.keys()) if (!alerts.has(id)) rows.delete(id);
  // move only what moved: a row that stays where it was is not touched
  const body = $("queue-rows");
  let node = body.firstElementChild;
  for (const tr of trs) {
    if (node === tr) { node = node.nextElementSibling; continue; }
    body.insertBefore(tr, node);
  }
  while (node) { const next = node.nextElementSibling; node.remove(); node = next; }
  if (focused && selected !== null) {  // the focused row was rebuilt or moved: keep focus
    const r = rows.get(selected);
    if (r && document.activeElement !== r.tr) r.tr.focus({ preventScroll: true });
  }
  $("queue-empty").hidden = all.length > 0;
  $("queue-count").textContent = (all.length > shown.length
    ? `${all.length} alerts; the ${shown.length} most urgent are shown, narrow the filters to see the rest`
    : `${all.length} alert${all.length === 1 ? "" : "s"}`)
    + (truncated ? ` (the page holds ${MAX_LOADED} of the open alerts: more are on the server)` : "");
  stats.lastRenderMs = performance.now() - t0;
}
function soon() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}
export function tick() {
  const now = Date.now();
  for (const a of shown) { const r = rows.get(a.event_id); if (r) timers(r, a, now); }
}

// -- selection and keys --------------------------------------------------------------
function mark(tr, on) {
  tr.classList.toggle("selected", on);
  if (on) tr.setAttribute("aria-current", "true"); else tr.removeAttribute("aria-current");
  tr.tabIndex = on ? 0 : -1;
}
export function select(id) {
  selected = id;
  for (const [k, r] of rows) mark(r.tr, k === id);
  const r = rows.get(id);
  if (r) { r.tr.focus({ preventScroll: true }); r.tr.scrollIntoView({ block: "nearest" }); }
}
export function move(step) {
  if (shown.length === 0) return;
  const at = shown.findIndex((a) => a.event_id === selected);
  const next = at < 0 ? 0 : Math.min(shown.length - 1, Math.max(0, at + step));
  select(shown[next].event_id);
}
export const selectedAlert = () => shown.find((a) => a.event_id === selected);

export async function act(action, a) {
  const out = $("queue-error");
  try {
    const after = await perform(action, a);
    if (after) { apply(after); soon(); out.hidden = true; }
  } catch (e) {
    out.textContent = e.message;
    out.hidden = false;
    if (e.status === 409) {  // someone else acted first: show the alert as it is now
      try { apply(await getJson(alertPath(a.event_id))); soon(); } catch (_) { /* the stream brings it */ }
    }
  }
}
export function keyAction(key) {
  const a = selectedAlert();
  if (!a) return false;
  const found = allowed(a).find((x) => x.key === key);
  if (!found) return false;
  act(found.action, a);
  return true;
}

// -- loading and following -------------------------------------------------------------
function listPath(extra) {
  const p = new URLSearchParams();
  for (const s of OPEN_STATES) p.append("state", s);
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  return "/api/v1/alerts?" + p.toString();
}
let generation = 0;  // a reload or sign-out makes the loads before it stop
export async function load() {
  const t0 = performance.now();
  const mine = ++generation;
  live("Loading…", "loading");
  let first;
  try {
    first = await getJson(listPath({ limit: FIRST_PAGE }));
  } catch (e) {
    if (e.status === 401 || mine !== generation) return;  // signed out / superseded
    live("Cannot load the queue: retrying", "down");
    setTimeout(() => { if (mine === generation) load(); }, 3000);
    return;
  }
  if (mine !== generation) return;
  const from = first.change_seq ?? 0;
  for (const a of first.items) apply(a);
  head = Math.max(head, from);
  render();
  stats.firstRenderMs = performance.now() - t0;
  follow();
  // the rest, in event id order: pages that stay right while alerts change meanwhile
  // (a changed alert comes by the stream, numbered after `from`)
  let after = "", loaded = 0;
  try {
    while (first.total > first.items.length && loaded < MAX_LOADED) {
      const page = await getJson(listPath({ limit: PAGE, after_id: after }));
      if (mine !== generation) return;
      bulk = true;
      for (const a of page.items) apply(a);
      bulk = false;
      loaded += page.items.length;
      soon();
      if (page.items.length < PAGE) break;
      after = page.items[page.items.length - 1].event_id;
    }
  } catch (_) {
    // a page failed: what was loaded stays, the stream keeps it current; reload later
  } finally { bulk = false; }
  if (mine !== generation) return;
  truncated = loaded >= MAX_LOADED && first.total > alerts.size;
  soon();
  stats.loaded = alerts.size;
  stats.loadMs = performance.now() - t0;
}

export function follow() {
  if (source) source.close();
  source = new EventSource(`/api/v1/changes?after=${head}`);
  source.addEventListener("open", () => { live("Live", "live"); stats.liveSince = Date.now(); });
  source.addEventListener("alert", (ev) => {
    const t0 = performance.now();
    const a = JSON.parse(ev.data);
    head = Math.max(head, Number(ev.lastEventId) || 0);
    const fresh = apply(a);
    // new to this page and raised just now (not an old one this page had not loaded yet)
    const recent = secondsSince(a.received_at, Date.now()) < CUE_WITHIN_S;
    if (fresh && recent && a.state === "new" && a.priority >= settings.cue_min_priority) {
      cue(a, (id) => openAlert(id));
      const r = () => rows.get(a.event_id);
      requestAnimationFrame(() => { const x = r(); if (x) x.tr.classList.add("flash"); });
    }
    soon();
    stats.lastApplyMs = performance.now() - t0;
    document.body.dataset.lastChange = String(head);
  });
  source.addEventListener("removed", (ev) => {
    const d = JSON.parse(ev.data);
    head = Math.max(head, Number(ev.lastEventId) || 0);
    removed(d.event_id, d.change_seq);
    soon();
  });
  source.addEventListener("reset", () => { reload(); });
  source.addEventListener("signed-out", () => { stop(); signedOutHook(); });
  source.addEventListener("error", () => {
    if (source && source.readyState === EventSource.CLOSED) refused(3000);
    else live("Reconnecting…", "down");
  });
}
// The stream was refused (an HTTP error, not a dropped connection, which the browser retries
// itself): the session may have ended (then the app shows the sign-in form), or the service
// is away for a while (a database failover): try again, waiting longer each time.
function refused(waitMs) {
  const was = source;
  live("Disconnected: retrying", "down");
  setTimeout(async () => {
    if (source !== was) return;  // signed out, or already following again
    try {
      await getJson("/api/v1/auth/me");
      if (source === was) follow();
    } catch (e) {
      if (e.status !== 401 && source === was) refused(Math.min(waitMs * 2, 30000));
    }
  }, waitMs);
}
let signedOutHook = () => {};
export function whenStreamSignsOut(fn) { signedOutHook = fn; }
async function reload() {
  generation += 1;
  ordered = null;
  alerts.clear();
  numbers.clear();
  rows.clear();
  head = 0;
  await load();
}
export function stop() {
  generation += 1;
  if (source) { source.close(); source = null; }
  alerts.clear(); numbers.clear(); rows.clear(); head = 0; shown = []; selected = null; ordered = null;
  truncated = false;
  $("queue-rows").replaceChildren();
  live("", "off");
}
export const maySeeQueue = () => may("alerts.read");
