// Forensic search (#/search?since=...&until=...&class=person&upper=red&camera=cam-1...):
// "a man in a red top on camera 12 between 14:00 and 16:00".  Workers publish one summary
// per track (class, when, camera, zones, direction, named colours, a masked thumbnail);
// GET /api/v1/search finds and ranks them, best first.
//
// Every filter lives in the address, so Back returns to the same results and a search can
// be shared.  The time inputs are local time; the address and the API get ISO 8601 with
// the local UTC offset.  "More like this" searches the same time range and cameras for
// tracks that look like the one chosen (like=UID).  A click on a result opens
// #/track/UID (track.js).
import { ApiError, failure, getJson } from "./api.js";
import { $, clock, duration, el } from "./text.js";

export const PAGE = 48;
const MAX_SPAN_DAYS_DEFAULT = 31;
const KEEP = "argus.search";  // the last search's address, for "Back to the results"

// The filters the address may carry, in the order they are written there.
const SINGLE = ["since", "until", "class", "upper", "lower", "colour", "zone", "direction", "like"];
const MULTI = ["camera", "group"];
const DIRECTION_WORDS = {
  left: "left", right: "right", up: "up (away from the camera)", down: "down (toward the camera)",
  still: "still (did not go far)",
};
export const directionText = (d) => DIRECTION_WORDS[d] || String(d ?? "");
const PART_WORDS = { upper: "top", lower: "bottom", body: "body" };

let options = null;      // GET /search/options, once per session
let asked = 0;           // the latest search: an older answer arriving late is dropped
let shown = [];          // the results on the page
let current = null;      // {params (URLSearchParams of the filters), matched, capped}

export function reset() { options = null; shown = []; current = null; asked++; }
export function lastSearch() { return sessionStorage.getItem(KEEP); }
export function resultsHref() {
  const kept = lastSearch();
  return "#/search" + (kept ? "?" + kept : "");
}

// -- time --------------------------------------------------------------------------------
const pad = (n) => String(n).padStart(2, "0");
// A Date as ISO 8601 in local time with its UTC offset ("2024-05-01T14:00:00+02:00").
export function isoLocal(d) {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  const a = Math.abs(off);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:`
    + `${pad(d.getMinutes())}:${pad(d.getSeconds())}${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}
// The value of a datetime-local input for a Date ("2024-05-01T14:00").
function inputValue(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
function parseTime(s) {
  if (!s) return null;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d;
}
const nextMinute = (ms) => new Date(Math.ceil(ms / 60000) * 60000);
const QUICK = [
  ["hour", "Last hour", () => { const u = nextMinute(Date.now()); return [new Date(u - 3600e3), u]; }],
  ["today", "Today", () => { const s = new Date(); s.setHours(0, 0, 0, 0); return [s, nextMinute(Date.now())]; }],
  ["day", "Last 24 h", () => { const u = nextMinute(Date.now()); return [new Date(u - 86400e3), u]; }],
];
// The time of a track in words: "14:03:12, 12 May" style, the user's locale.
export function when(iso) { return clock(iso); }

// -- colours -----------------------------------------------------------------------------
// A swatch is a class (the style sheet has one per colour name: no inline style under the
// CSP) beside the colour's name: the name says it, the swatch helps.
export function swatch(name) {
  const safe = /^[a-z]+$/.test(String(name)) ? name : "unknown";
  return el("span", { class: `swatch sw-${safe}`, "aria-hidden": "true" });
}
export function coloursOf(t) {
  const c = t.colours || {};
  const parts = ["upper", "lower", "body"].filter((p) => typeof c[p] === "string" && c[p]);
  if (parts.length === 0) return el("span", { class: "colours unknown" }, "colours not told");
  return el("span", { class: "colours" }, parts.map((p) =>
    el("span", { class: "colour" }, swatch(c[p]), `${c[p]} ${PART_WORDS[p]}`)));
}
export function labelWords(label) {
  const t = String(label ?? "");
  return t.charAt(0).toUpperCase() + t.slice(1).replaceAll("_", " ");
}

// -- the filters ---------------------------------------------------------------------------
async function loadOptions() {
  if (options === null) options = await getJson("/api/v1/search/options");
  return options;
}
const list = (v) => (Array.isArray(v) ? v : []);
const maxSpanDays = () => (options && Number(options.max_span_days) > 0 ? Number(options.max_span_days) : MAX_SPAN_DAYS_DEFAULT);

function select(id, name, first, values, chosen, words = (v) => v) {
  const s = el("select", { id, name }, el("option", { value: "" }, first),
    values.map((v) => el("option", { value: v }, words(v))));
  if (chosen && !values.includes(chosen)) s.append(el("option", { value: chosen }, words(chosen)));  // an old link
  s.value = chosen || "";
  return s;
}
// A colour filter: radio buttons "Any", then one per colour, each a swatch and its name.
function colourGroup(name, legend, chosen) {
  const colours = list(options.colours);
  const box = el("fieldset", { class: "swatches", id: `s-${name}` }, el("legend", {}, legend));
  const radio = (value, words) => {
    const input = el("input", { type: "radio", name, value, id: `s-${name}-${value || "any"}` });
    input.checked = (chosen || "") === value;
    return el("label", { for: input.id, class: "chip" }, input, value ? swatch(value) : null, words);
  };
  box.append(radio("", "any"), ...colours.map((c) => radio(c, c)));
  if (chosen && !colours.includes(chosen)) box.append(radio(chosen, chosen));
  return box;
}

function filtersForm(params) {
  const since = parseTime(params.get("since")), until = parseTime(params.get("until"));
  const cams = params.getAll("camera"), groups = params.getAll("group");
  const form = el("form", { id: "search-form", class: "search-form", "aria-label": "Search filters" });

  const from = el("input", { type: "datetime-local", id: "s-since", name: "since", required: true,
    value: since ? inputValue(since) : "" });
  const to = el("input", { type: "datetime-local", id: "s-until", name: "until", required: true,
    value: until ? inputValue(until) : "" });
  const quick = QUICK.map(([key, words, range]) => {
    const b = el("button", { type: "button", class: "quick", "data-range": key }, words);
    b.addEventListener("click", () => {
      const [s, u] = range();
      from.value = inputValue(s);
      to.value = inputValue(u);
      submit(form, { since: s, until: u });
    });
    return b;
  });
  const time = el("fieldset", { class: "search-time" }, el("legend", {}, "When (local time)"),
    el("label", { for: "s-since" }, "From"), from, el("label", { for: "s-until" }, "To"), to,
    el("span", { class: "quick-times", role: "group", "aria-label": "Quick time ranges" }, quick),
    el("span", { class: "hint" }, `At most ${maxSpanDays()} days.`));

  const cls = select("s-class", "class", "Any class", list(options.classes), params.get("class"), labelWords);
  const dir = select("s-direction", "direction", "Any direction", list(options.directions), params.get("direction"), directionText);
  const what = el("fieldset", { class: "search-what" }, el("legend", {}, "What"),
    el("label", { for: "s-class" }, "Class"), cls,
    el("label", { for: "s-direction" }, "Direction"), dir);

  const upper = colourGroup("upper", "Top (upper body)", params.get("upper"));
  const lower = colourGroup("lower", "Bottom (lower body)", params.get("lower"));
  const any = colourGroup("colour", "Colour on any part (a vehicle's body)", params.get("colour"));
  const colours = el("div", { class: "search-colours" }, upper, lower, any);

  const cameras = list(options.cameras);
  const camBoxes = cameras.map((c) => {
    const input = el("input", { type: "checkbox", name: "camera", value: c.camera_id, id: `s-cam-${c.camera_id}` });
    input.checked = cams.includes(c.camera_id);
    return el("label", { class: "chip", for: input.id, title: list(c.groups).join(", ") || null }, input, c.camera_id);
  });
  for (const c of cams) {  // a camera from an old link the options do not list: kept, the API says why
    if (!cameras.some((x) => x.camera_id === c)) {
      const input = el("input", { type: "checkbox", name: "camera", value: c, id: `s-cam-${c}`, checked: true });
      camBoxes.push(el("label", { class: "chip", for: input.id }, input, c));
    }
  }
  const group = select("s-group", "group", "All groups", list(options.groups), groups[0] || "");
  const zone = el("select", { id: "s-zone", name: "zone" });
  const zoneHint = el("span", { class: "hint", id: "s-zone-hint" });
  const where = el("fieldset", { class: "search-where" }, el("legend", {}, "Where"),
    el("div", { class: "cams", role: "group", "aria-label": "Cameras (none ticked: all of yours)" },
      el("span", { class: "cams-label" }, "Cameras"), camBoxes.length ? camBoxes : el("span", { class: "hint" }, "No cameras.")),
    el("label", { for: "s-group" }, "or group"), group,
    el("label", { for: "s-zone" }, "Zone"), zone, zoneHint);

  const go = el("button", { type: "submit", id: "s-go", class: "primary" }, "Search");
  const clear = el("a", { href: "#/search", class: "button-link" }, "Clear filters");
  form.append(time, what, where, colours, el("div", { class: "search-buttons" }, go, clear));

  // what depends on what: upper/lower for people; a zone of one camera; cameras or a group
  const followClass = () => {
    const person = cls.value === "person";
    upper.hidden = lower.hidden = !person;
    any.querySelector("legend").textContent = person ? "Colour on any part" : "Colour (a vehicle's body, or any part)";
  };
  const followCameras = (keepZone) => {
    const ticked = [...form.querySelectorAll("input[name=camera]:checked")].map((i) => i.value);
    const zones = ticked.length === 1 ? list((options.zones || {})[ticked[0]]) : [];
    const want = keepZone ?? zone.value;
    zone.replaceChildren(el("option", { value: "" }, "Any zone"), zones.map((z) => el("option", { value: z }, z)));
    if (want && ticked.length === 1 && !zones.includes(want)) zone.append(el("option", { value: want }, want));
    zone.value = ticked.length === 1 ? want || "" : "";
    zone.disabled = ticked.length !== 1;
    zoneHint.textContent = ticked.length === 1 ? (zones.length ? "" : "this camera has no zones")
      : "tick one camera to choose its zone";
  };
  cls.addEventListener("change", followClass);
  for (const b of form.querySelectorAll("input[name=camera]")) {
    b.addEventListener("change", () => { if (b.checked) group.value = ""; followCameras(); });
  }
  group.addEventListener("change", () => {
    if (group.value) for (const b of form.querySelectorAll("input[name=camera]")) b.checked = false;
    followCameras();
  });
  followClass();
  followCameras(params.get("zone") || "");
  form.addEventListener("submit", (ev) => { ev.preventDefault(); submit(form); });
  return form;
}

// The form's filters into the address (which runs the search); times as given, or from
// the inputs (local time).
function submit(form, times = null) {
  const note = $("search-note");
  const f = form.elements;
  const since = times ? times.since : parseTime(f.since.value), until = times ? times.until : parseTime(f.until.value);
  if (!since || !until) {
    note.textContent = "Give the time range: from and to (or choose last hour, today or last 24 h).";
    note.hidden = false;
    (since ? f.until : f.since).focus();
    return;
  }
  const p = new URLSearchParams();
  p.set("since", isoLocal(since));
  p.set("until", isoLocal(until));
  const cls = f.class.value;
  if (cls) p.set("class", cls);
  for (const part of cls === "person" ? ["upper", "lower", "colour"] : ["colour"]) {
    const v = form.querySelector(`input[name=${part}]:checked`);
    if (v && v.value) p.set(part, v.value);
  }
  for (const b of form.querySelectorAll("input[name=camera]:checked")) p.append("camera", b.value);
  if (f.group.value) p.append("group", f.group.value);
  if (!f.zone.disabled && f.zone.value) p.set("zone", f.zone.value);
  if (f.direction.value) p.set("direction", f.direction.value);
  const like = new URLSearchParams(location.hash.split("?", 2)[1] || "").get("like");
  if (like) p.set("like", like);  // a "more like this" search stays one until cleared
  const next = "#/search?" + p;
  if (location.hash === next) show(p); else location.hash = next;  // the same search again: run it
}

// "More like this": the same time range and cameras (or group), the same class, ranked by
// how much each track looks like this one.
export function likeHref(t, params) {
  const p = new URLSearchParams();
  for (const k of ["since", "until"]) if (params.get(k)) p.set(k, params.get(k));
  if (!p.get("since") || !p.get("until")) {  // from a track's page: the day around it
    const mid = new Date(t.first_seen).getTime();
    p.set("since", isoLocal(new Date(mid - 12 * 3600e3)));
    p.set("until", isoLocal(new Date(mid + 12 * 3600e3)));
  }
  for (const k of MULTI) for (const v of params.getAll(k)) p.append(k, v);
  if (t.label) p.set("class", t.label);
  p.set("like", t.track_uid);
  return "#/search?" + p;
}

// -- the view ------------------------------------------------------------------------------
export async function show(params) {
  const mine = ++asked;
  const view = $("view-search");
  view.replaceChildren(el("h2", { class: "view-title" }, "Search"), el("p", { class: "count", role: "status" }, "Loading…"));
  try {
    await loadOptions();
  } catch (e) {
    if (mine !== asked) return;
    view.replaceChildren(el("h2", { class: "view-title" }, "Search"),
      el("p", { class: "error", role: "alert", id: "search-error" }, failure("Loading the search filters", e)));
    return;
  }
  if (mine !== asked) return;
  const like = params.get("like");
  view.replaceChildren(
    el("h2", { class: "view-title", id: "search-h" }, "Search"),
    filtersForm(params),
    el("p", { id: "search-note", class: "error", role: "alert", hidden: true }),
    el("div", { id: "search-like", class: "search-like", hidden: !like }),
    el("p", { id: "search-count", class: "count", role: "status", "aria-live": "polite", tabindex: "-1" }),
    el("p", { id: "search-capped", class: "warning", role: "status", hidden: true }),
    el("div", { id: "search-results", class: "results", "aria-labelledby": "search-count", role: "list" }),
    el("p", { id: "search-empty", class: "empty", hidden: true }),
    el("div", { class: "more" }, el("button", { type: "button", id: "search-more", hidden: true }, "Load more")));
  $("search-more").addEventListener("click", () => more());
  shown = [];
  current = null;
  if (!params.get("since") || !params.get("until")) {
    $("search-count").textContent = "Choose a time range and what to look for, then Search.";
    return;
  }
  const filters = new URLSearchParams();
  for (const k of SINGLE) if (params.get(k)) filters.set(k, params.get(k));
  for (const k of MULTI) for (const v of params.getAll(k)) filters.append(k, v);
  sessionStorage.setItem(KEEP, filters.toString());
  current = { params: filters, matched: 0, capped: false };
  if (like) likeBanner(like, filters);
  await page(0, mine);
}

async function likeBanner(uid, filters) {
  const box = $("search-like");
  const drop = new URLSearchParams(filters);
  drop.delete("like");
  const plain = el("a", { href: "#/search?" + drop, id: "search-like-clear" }, "Search without it");
  box.replaceChildren(el("span", {}, "Ranked by how much each looks like the track chosen. "), plain);
  try {
    const t = await getJson(`/api/v1/tracks/${encodeURIComponent(uid)}`);
    if (!box.isConnected) return;
    box.replaceChildren(thumb(t, "like-thumb"),
      el("span", {}, "Ranked by how much each looks like ",
        el("a", { href: `#/track/${encodeURIComponent(uid)}` }, `this ${String(t.label || "track")} on ${t.camera_id}`),
        ` (${when(t.first_seen)}): `, coloursOf(t), ". "), plain);
  } catch (_) { /* the words above stand */ }
}

async function page(offset, mine) {
  const q = new URLSearchParams(current.params);
  q.set("limit", String(PAGE));
  q.set("offset", String(offset));
  const count = $("search-count"), more = $("search-more"), err = $("search-note");
  count.textContent = offset ? "Loading more…" : "Searching…";
  more.disabled = true;
  let got;
  try {
    got = await getJson("/api/v1/search?" + q);
  } catch (e) {
    if (mine !== asked) return;
    // the service's own sentence: a bad filter (422), a camera not of yours (403), the
    // track of "more like this" gone (404), a search too broad to finish (503)
    err.textContent = e instanceof ApiError && [403, 404, 422, 503].includes(e.status) && e.detail
      ? (e.status === 503 ? "Search stopped: " : "Search refused: ") + e.detail : failure("The search", e);
    err.hidden = false;
    count.textContent = "";
    more.disabled = false;
    return;
  }
  if (mine !== asked) return;
  err.hidden = true;
  const results = list(got.results);
  current.matched = Number(got.matched) || 0;
  current.capped = Boolean(got.capped);
  const grid = $("search-results");
  const firstNew = shown.length;
  shown.push(...results);
  grid.append(...results.map((t, i) => card(t, firstNew + i)));
  count.textContent = shown.length === 0 ? "" : `${shown.length} of ${current.matched} shown, best first.`;
  const capped = $("search-capped");
  capped.hidden = !current.capped;
  capped.textContent = current.capped
    ? "More tracks matched than one search reads (the newest were read first, older ones were not): "
      + "narrow the time range, or add a colour, class or camera." : "";
  const empty = $("search-empty");
  empty.hidden = shown.length > 0;
  if (shown.length === 0) empty.textContent = emptyWords(current.params);
  more.hidden = shown.length >= current.matched || results.length === 0;
  more.disabled = false;
  // the form was drawn anew: the keyboard goes on from the answer (Tab: the first result)
  if (offset === 0 && (document.activeElement === document.body || document.activeElement === null)) count.focus();
  if (offset > 0 && results.length) {
    const first = grid.children[firstNew] && grid.children[firstNew].querySelector("a");
    if (first) first.focus();  // the keyboard goes on from the first new result
  }
}
function more() {
  if (!current) return;
  page(shown.length, asked);
}

function emptyWords(params) {
  const loosen = [];
  if (params.get("upper") || params.get("lower") || params.get("colour")) loosen.push("drop a colour (colours in CCTV light are rough: try a neighbour, e.g. orange for red)");
  if (params.get("zone")) loosen.push("any zone");
  if (params.get("direction")) loosen.push("any direction");
  if (params.getAll("camera").length || params.getAll("group").length) loosen.push("all cameras");
  if (params.get("class")) loosen.push("any class");
  const span = (new Date(params.get("until")) - new Date(params.get("since"))) / 3600e3;
  loosen.push(span < 24 ? "a wider time range" : "another time range");
  return "No tracks match. Loosen the search: " + loosen.join("; ") + ".";
}

// -- a result -----------------------------------------------------------------------------
export function thumb(t, cls, unmasked = false) {
  if (!t.thumbnail_url) return el("div", { class: `${cls} no-pic` }, "no picture");
  const src = t.thumbnail_url + (unmasked ? (t.thumbnail_url.includes("?") ? "&" : "?") + "unmasked=true" : "");
  const img = el("img", { class: cls, src, loading: "lazy",
    alt: `${labelWords(t.label)} on ${t.camera_id} (${unmasked ? "original" : "blurred"})` });
  img.addEventListener("error", () => img.replaceWith(el("div", { class: `${cls} no-pic` }, "picture not available")));
  return img;
}
function card(t, i) {
  const href = `#/track/${encodeURIComponent(t.track_uid)}`;
  const score = typeof t.score === "number" ? Math.round(t.score * 100) : null;
  const open = el("a", { href, class: "result-open",
    "aria-label": `${i + 1}. ${labelWords(t.label)} on ${t.camera_id}, ${when(t.first_seen)}` },
    thumb(t, "result-pic"),
    el("span", { class: "result-head" }, el("strong", {}, labelWords(t.label)), " on ",
      el("strong", { class: "result-camera" }, t.camera_id)),
    el("span", { class: "result-time" }, el("time", { datetime: t.first_seen }, when(t.first_seen)),
      typeof t.duration_s === "number" ? `, ${duration(t.duration_s)}` : ""));
  // a track never seen clearly has no look to compare (the API says so): no link
  const likeLink = Object.keys(t.colours || {}).length
    ? el("a", { href: likeHref(t, current.params), class: "button-link like" }, "More like this")
    : el("span", { class: "hint" }, "Too small to compare");
  return el("article", { class: "result", role: "listitem", "data-uid": t.track_uid },
    open,
    el("div", { class: "result-facts" },
      coloursOf(t),
      el("span", {}, "Direction ", el("strong", {}, directionText(t.direction))),
      list(t.zones).length ? el("span", {}, "Zones ", el("strong", {}, list(t.zones).join(", "))) : null,
      score !== null ? el("span", { class: "score", title: "How well it matches the search" }, `match ${score} %`) : null),
    el("div", { class: "result-actions" }, likeLink));
}
