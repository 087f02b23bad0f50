// The operators' web app: sign-in, the live queue, an alert's detail, the supervisors'
// views.  Plain ES modules served by Argus itself (no build step, nothing from a CDN),
// under a Content-Security-Policy that allows only this origin's scripts.
//
// Where the user is lives in the address (#/queue?camera=..., #/alert/ID, #/audit, ...),
// so a session that ends shows the sign-in form and then returns to the same place with
// the same filters.
import * as actions from "./actions.js";
import { getJson, postJson, rememberCsrf, whenSignedOut } from "./api.js";
import { setSound, showSoundButton, soundOn, unlockAudio } from "./cue.js";
import * as detail from "./detail.js";
import * as queue from "./queue.js";
import * as search from "./search.js";
import * as setup from "./setup.js";
import * as supervisor from "./supervisor.js";
import { $, el, knownTypes, setRuleTypes } from "./text.js";
import * as track from "./track.js";
import * as wall from "./wall.js";

let me = null;
const VIEWS = ["queue", "alert", "wall", "cameras", "search", "track", "audit", "operators", "tuning", "setup"];
const NEEDS = { search: "tracks.search", track: "tracks.search", audit: "audit.read", operators: "stats.read", tuning: "stats.read", setup: "cameras.manage" };

// -- signing in and out ---------------------------------------------------------------------
function signedOut(reason) {
  const was = me !== null;
  for (const d of document.querySelectorAll("dialog[open]")) d.close("cancel");
  me = null;
  actions.setMe(null);
  rememberCsrf(null);
  queue.stop();
  wall.stop();
  setup.stop();
  search.reset();
  track.stop();
  document.body.dataset.signedIn = "false";
  $("who").hidden = true;
  $("nav").hidden = true;
  for (const v of VIEWS) $("view-" + v).hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-note").textContent = was || reason ? reason || "Your session ended: sign in again." : "";
  $("username").focus();
}
async function signedIn(who) {
  me = who;
  actions.setMe(who);
  queue.setName(() => (me ? me.name : ""));
  document.body.dataset.signedIn = "true";
  $("who-name").textContent = who.name;
  $("who-role").textContent = who.role;
  $("who").hidden = false;
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  for (const a of document.querySelectorAll("#nav a[data-needs]")) {
    a.hidden = !who.permissions.includes(a.dataset.needs);  // what a role may not do is not offered
  }
  const [settings, types] = await Promise.all([
    getJson("/api/v1/page-settings"),
    getJson("/api/v1/rule-types").catch(() => []),
  ]);
  queue.setSettings(settings);
  actions.setSuppressions(settings.suppressions);
  setRuleTypes(types);
  detail.setRuleTypes(types);
  fillFilterChoices(settings);
  await route();
  await queue.load();
}
whenSignedOut(() => { if (me !== null) signedOut("Your session ended: sign in again."); });
queue.whenStreamSignsOut(() => signedOut("Your session ended: sign in again."));

$("sign-in").addEventListener("submit", async (event) => {
  event.preventDefault();
  unlockAudio();
  const username = $("username").value, password = $("password").value;
  $("password").value = "";
  const note = $("sign-in-note");
  try {
    const r = await fetch("/api/v1/auth/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password }), credentials: "same-origin" });
    if (!r.ok) {
      note.textContent = r.status === 429 ? "Too many tries: wait a moment, then sign in again."
        : r.status === 422 ? "Enter a user name and a password." : "Wrong user name or password.";
      return;
    }
    const who = await r.json();
    rememberCsrf(who.csrf_token);
    note.textContent = "";
    await signedIn(who);
  } catch (e) { note.textContent = "Sign-in failed: " + e.message; }
});
$("sign-out").addEventListener("click", async () => {
  try { await postJson("/api/v1/auth/logout", {}); } catch (_) { /* signed out anyway */ }
  history.replaceState(null, "", "#/queue");
  signedOut("Signed out.");
});
$("sound").addEventListener("click", () => setSound(!soundOn()));
document.addEventListener("pointerdown", unlockAudio);  // any click lets the browser play cues
$("help-button").addEventListener("click", () => $("help").showModal());

// -- the filters (kept in the address) -----------------------------------------------------
function option(value, text) { return el("option", { value }, text); }
function fillFilterChoices(settings) {
  const groups = [...new Set(settings.cameras.flatMap((c) => c.groups))].sort();
  $("f-group").replaceChildren(option("", "All groups"), ...groups.map((g) => option(g, g)));
  $("f-camera").replaceChildren(option("", "All cameras"), ...settings.cameras.map((c) => option(c.id, c.id)));
  $("f-type").replaceChildren(option("", "All rules"), ...knownTypes().map(([t, label]) => option(t, label)));
  showFilters();
}
function showFilters() {
  for (const [k, v] of Object.entries(queue.filters)) {
    const s = $("f-" + k);
    if (v && ![...s.options].some((o) => o.value === v)) s.append(option(v, v));  // from an old link
    s.value = v;
  }
}
$("filters").addEventListener("change", () => {
  const p = new URLSearchParams();
  for (const k of Object.keys(queue.filters)) { const v = $("f-" + k).value; if (v) p.set(k, v); }
  location.hash = "#/queue" + (p.toString() ? "?" + p : "");
});
$("filters").addEventListener("submit", (ev) => ev.preventDefault());

// -- routing ----------------------------------------------------------------------------
function parseHash() {
  const h = location.hash.replace(/^#\/?/, "");
  const [path, query] = h.split("?", 2);
  const parts = path.split("/").map((p) => { try { return decodeURIComponent(p); } catch (_) { return ""; } });
  return { view: parts[0] || "queue", arg: parts[1] || "", params: new URLSearchParams(query || "") };
}
export function openAlert(id) { location.hash = "#/alert/" + encodeURIComponent(id); }
async function route() {
  if (me === null) return;
  let { view, arg, params } = parseHash();
  if (!VIEWS.includes(view) || (NEEDS[view] && !me.permissions.includes(NEEDS[view]))) view = "queue";
  for (const v of VIEWS) $("view-" + v).hidden = v !== view;
  if (view === "wall" || view === "cameras") wall.show(view === "wall" ? "wall" : "board");
  else wall.stop();  // a view nobody looks at costs the cameras nothing
  if (view !== "setup") setup.stop();
  if (view !== "track") track.stop();
  const navView = view === "alert" ? "queue" : view === "track" ? "search" : view;
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.view === navView) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (view === "queue") {
    const f = Object.fromEntries(params.entries());
    queue.setFilters(f);
    sessionStorage.setItem("argus.filters", params.toString());
    showFilters();
    queue.render();
    document.title = "Queue — Argus";
  } else if (view === "alert") {
    document.title = "Alert — Argus";
    await detail.show(arg);
  } else if (view === "search") {
    document.title = "Search — Argus";
    await search.show(params);
  } else if (view === "track") {
    document.title = "Track — Argus";
    await track.show(arg);
  } else if (view === "wall" || view === "cameras") {
    document.title = (view === "wall" ? "Wall" : "Camera health") + " — Argus";
  } else if (view === "setup") {
    document.title = "Camera setup — Argus";
    await setup.show(params);
  } else {
    document.title = { audit: "Audit log", operators: "Operators", tuning: "False alarms" }[view] + " — Argus";
    await supervisor[view](params);
  }
}
window.addEventListener("hashchange", () => { route(); });

// -- keys ---------------------------------------------------------------------------------
document.addEventListener("keydown", (ev) => {
  unlockAudio();
  if (me === null || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (document.querySelector("dialog[open]")) return;
  const t = ev.target;
  if (t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement
      || (t instanceof HTMLElement && t.isContentEditable)) return;
  // a button or link keeps its own Enter (and Space)
  if ((ev.key === "Enter" || ev.key === " ") && t instanceof Element && t.closest("button, a, summary, [role=button]")) return;
  const { view } = parseHash();
  let done = true;
  if (ev.key === "?") $("help").showModal();
  else if (view === "queue" || view === "") {
    if (ev.key === "j" || ev.key === "ArrowDown") queue.move(1);
    else if (ev.key === "k" || ev.key === "ArrowUp") queue.move(-1);
    else if (ev.key === "Enter") { const a = queue.selectedAlert(); if (a) openAlert(a.event_id); else done = false; }
    else if ("cexf".includes(ev.key) && ev.key.length === 1) done = queue.keyAction(ev.key);
    else done = false;
  } else if (view === "alert") {
    if (ev.key === "Escape" || ev.key === "Backspace") location.hash = "#/queue?" + (sessionStorage.getItem("argus.filters") || "");
    else if ("cexf".includes(ev.key) && ev.key.length === 1) done = detail.keyAction(ev.key);
    else done = false;
  } else if (view === "track") done = track.keyAction(ev.key);
  else done = false;
  if (done) ev.preventDefault();
});

// -- start ------------------------------------------------------------------------------
queue.init({ open: openAlert, changed: (a) => detail.changed(a) });
detail.init({ applied: (a) => { queue.apply(a); queue.render(); } });
wall.init({
  open: openAlert,
  camera: (cam) => { location.hash = "#/queue?camera=" + encodeURIComponent(cam); },
  signedOut: () => signedOut("Your session ended: sign in again."),
});
setInterval(queue.tick, 1000);
setInterval(wall.tick, 1000);
showSoundButton();
$("nav-search").addEventListener("click", (ev) => {
  // back to the search last run, with its filters
  ev.preventDefault();
  location.hash = search.resultsHref();
});
$("nav-queue").addEventListener("click", (ev) => {
  // back to the queue with the filters last used
  ev.preventDefault();
  location.hash = "#/queue" + (sessionStorage.getItem("argus.filters") ? "?" + sessionStorage.getItem("argus.filters") : "");
});
(async () => {
  try { await signedIn(await getJson("/api/v1/auth/me")); } catch (_) { signedOut(""); }
})();
