// One track found by a search (#/track/UID): its big thumbnail (blurred all over; "Show
// unmasked" only for roles that may, each view audited), the facts, the camera's timeline
// some minutes either side (the camera's other tracks as thin bars, alerts as marks, this
// one highlighted; a bar opens that track), and the video if an alert's clip covers the
// moment: Argus keeps video only around alerts, and says so when there is none.
import { may } from "./actions.js";
import { ApiError, getJson } from "./api.js";
import { coloursOf, directionText, labelWords, likeHref, resultsHref, thumb, when } from "./search.js";
import { $, clock, duration, el, isNumber, svg } from "./text.js";

let current = null;
let unmasked = false;
let asked = 0;

const trackPath = (uid) => `/api/v1/tracks/${encodeURIComponent(uid)}`;
const list = (v) => (Array.isArray(v) ? v : []);

export async function show(uid) {
  const mine = ++asked;
  const view = $("view-track");
  view.replaceChildren(back(), el("p", { class: "count", role: "status" }, "Loading…"));
  unmasked = false;
  current = null;
  let t;
  try {
    t = await getJson(trackPath(uid));
  } catch (e) {
    if (mine !== asked) return;
    const words = e instanceof ApiError && e.status === 404 ? "This track does not exist (any more), or is not of your cameras."
      : e instanceof ApiError && e.status === 403 && e.detail ? e.detail
        : "The track could not be loaded: " + e.message;
    view.replaceChildren(back(), el("p", { role: "alert", class: "error", id: "track-error" }, words));
    return;
  }
  if (mine !== asked) return;
  current = t;
  view.replaceChildren(
    back(),
    el("div", { id: "track-head" }),
    el("section", { class: "timeline-box", "aria-labelledby": "timeline-h" },
      el("h3", { id: "timeline-h" }, `Camera ${t.camera_id}: what it saw around this moment`),
      el("div", { id: "timeline" })),
    el("div", { class: "media" },
      el("figure", { id: "track-figure" }),
      el("figure", { id: "track-clip" })));
  head();
  picture();
  timeline();
  clip();
  document.title = `${labelWords(t.label)} on ${t.camera_id} — Argus`;
}
export function stop() { asked++; current = null; }

function back() {
  return el("p", {}, el("a", { href: resultsHref(), id: "track-back" }, "← Back to the results"));
}

function head() {
  const t = current;
  const size = t.size || {};
  const buttons = Object.keys(t.colours || {}).length
    ? [el("a", { href: likeHref(t, new URLSearchParams((resultsHref().split("?", 2)[1]) || "")),
      class: "button-link like", id: "track-like" }, "More like this")]
    : [];
  if (may("evidence.unmasked") && t.thumbnail_url) {
    const b = el("button", { type: "button", class: "unmask", "aria-pressed": unmasked ? "true" : "false" },
      unmasked ? "Show masked" : "Show unmasked");
    b.addEventListener("click", () => { unmasked = !unmasked; head(); picture(); clip(); });
    buttons.push(b);
  }
  $("track-head").replaceChildren(
    el("h2", {}, `${labelWords(t.label)} on ${t.camera_id}`),
    el("p", { class: "facts" },
      el("span", {}, "Seen ", el("strong", {}, when(t.first_seen)), " to ", el("strong", {}, clock(t.last_seen))),
      isNumber(t.duration_s) ? el("span", {}, "for ", el("strong", {}, duration(t.duration_s))) : null,
      el("span", {}, "Colours ", coloursOf(t)),
      el("span", {}, "Direction ", el("strong", {}, directionText(t.direction))),
      el("span", {}, "Zones ", el("strong", {}, list(t.zones).length ? list(t.zones).join(", ") : "none")),
      isNumber(size.height_px) ? el("span", {}, "Size ", el("strong", {},
        `${Math.round(size.width_px)} × ${Math.round(size.height_px)} px`
        + (isNumber(size.height_frac) ? ` (${Math.round(size.height_frac * 100)} % of the picture's height)` : ""))) : null),
    el("div", { class: "track-actions", role: "group", "aria-label": "Actions" }, buttons));
}

function picture() {
  const t = current;
  const masked = unmasked ? "original" : "blurred: colours and shape only";
  $("track-figure").replaceChildren(thumb(t, "track-pic", unmasked),
    el("figcaption", {}, t.thumbnail_url ? `A sighting of this track (${masked}).` : "No picture was kept of this track."));
}

function clip() {
  const t = current;
  const c = t.clip;
  const fig = $("track-clip");
  if (!c || !c.url) {
    fig.replaceChildren(el("div", { class: "no-media", id: "no-video" },
      "No video was kept for this moment: Argus keeps video only around alerts, and no alert's clip on this camera covers it."));
    return;
  }
  const src = c.url + (unmasked ? (c.url.includes("?") ? "&" : "?") + "unmasked=true" : "");
  const video = el("video", { src, controls: true, preload: "metadata", muted: true,
    "aria-label": `Video of ${t.camera_id} around this moment (${unmasked ? "original" : "people blurred"})` });
  video.addEventListener("error", () => video.replaceWith(el("div", { class: "no-media", role: "status" },
    "The video could not be played.")));
  const about = c.own ? "the alert about this very track" : "an alert on this camera";
  fig.replaceChildren(video, el("figcaption", {},
    c.start ? `Video kept for ${about}, which started ${clock(c.start)}. ` : `Video kept for ${about}. `,
    c.event_id ? el("a", { href: `#/alert/${encodeURIComponent(c.event_id)}`, id: "track-alert" }, "Open the alert") : null));
}

// -- the camera's timeline ----------------------------------------------------------------
// An SVG over since..until (1000 units wide): each track a thin bar in the first lane where
// it does not overlap another, alerts as marks along the top, this track highlighted.
// Bars and marks are links (Tab reaches them; Enter opens).
const W = 1000, LANE = 9, TOP = 22, MAX_LANES = 12;
function timeline() {
  const t = current;
  const box = $("timeline");
  const tl = t.timeline;
  const since = tl ? Date.parse(tl.since) : NaN, until = tl ? Date.parse(tl.until) : NaN;
  if (!tl || !(until > since)) { box.replaceChildren(el("p", { class: "hint" }, "No timeline for this camera.")); return; }
  const x = (iso) => Math.min(W, Math.max(0, ((Date.parse(iso) - since) / (until - since)) * W));
  const tracks = list(tl.tracks).slice().sort((a, b) => Date.parse(a.first_seen) - Date.parse(b.first_seen));
  if (!tracks.some((o) => o.track_uid === t.track_uid)) tracks.push(t);
  const ends = [];  // per lane: where its last bar ends
  const placed = tracks.map((o) => {
    const x1 = x(o.first_seen), x2 = Math.max(x(o.last_seen), x1 + 3);
    let lane = ends.findIndex((e) => e + 2 <= x1);
    if (lane < 0) { lane = ends.length < MAX_LANES ? ends.length : ends.indexOf(Math.min(...ends)); }
    ends[lane] = x2;
    return { o, x1, x2, lane };
  });
  const lanes = Math.max(1, ends.length);
  const h = TOP + lanes * LANE + 20;
  const s = svg("svg", { class: "timeline", viewBox: `0 0 ${W} ${h}`, preserveAspectRatio: "none", height: Math.round(h * 1.6),
    role: "group", "aria-label": `Timeline of ${t.camera_id} from ${clock(tl.since)} to ${clock(tl.until)}` });
  s.append(svg("rect", { class: "tl-bg", x: 0, y: 0, width: W, height: h }));
  for (let i = 0; i <= 4; i++) s.append(svg("line", { class: "tl-tick", x1: (W * i) / 4, x2: (W * i) / 4, y1: 0, y2: h }));
  for (const a of list(tl.alerts)) {
    const ax1 = x(a.start), ax2 = Math.max(a.end ? x(a.end) : ax1, ax1 + 5);  // a mark one can see and click
    const link = svg("a", { href: `#/alert/${encodeURIComponent(a.event_id)}`, class: "tl-alert" });
    const title = svg("title", {});
    title.textContent = `Alert: ${String(a.type ?? "").replaceAll("_", " ")}, priority ${a.priority}, ${clock(a.start)}`;
    link.append(title, svg("rect", { x: ax1, y: 2, width: ax2 - ax1, height: TOP - 6 }),
      svg("rect", { class: "tl-alert-span", x: ax1, y: TOP - 4, width: ax2 - ax1, height: h - TOP - 16 }));
    s.append(link);
  }
  for (const { o, x1, x2, lane } of placed) {
    const me = o.track_uid === t.track_uid;
    const y = TOP + lane * LANE;
    const title = svg("title", {});
    const colours = Object.entries(o.colours || {}).map(([k, v]) => `${v} ${k}`).join(", ");
    title.textContent = `${labelWords(o.label)}${colours ? ` (${colours})` : ""}, ${clock(o.first_seen)}${me ? " — this track" : ""}`;
    const bar = svg("rect", { x: x1, y: y + 1, width: x2 - x1, height: LANE - 3, rx: 1 });
    if (me) {  // a bar and a line down the whole strip: where this track is, at a glance
      const g = svg("g", { class: "tl-track tl-me", "aria-current": "true" });
      g.append(title, svg("line", { class: "tl-me-line", x1: x1, x2: x1, y1: 0, y2: h }), bar);
      s.append(g);
    } else {
      const link = svg("a", { href: `#/track/${encodeURIComponent(o.track_uid)}`, class: `tl-track tl-${o.label === "person" ? "person" : "other"}` });
      link.append(title, bar);
      s.append(link);
    }
  }
  const axis = el("div", { class: "tl-axis", "aria-hidden": "true" },
    [0, 1, 2, 3, 4].map((i) => el("span", {}, new Date(since + ((until - since) * i) / 4).toLocaleTimeString())));
  const others = placed.length - 1;
  const key = (cls, words) => el("span", { class: "tl-key" }, el("span", { class: `key ${cls}` }), " ", words);
  box.replaceChildren(s, axis, el("p", { class: "hint tl-legend" },
    key("key-me", "this track"), key("key-person", "other people"), key("key-other", "other objects"),
    key("key-alert", "alerts (select one to open it)"), el("br"),
    `${others} other track${others === 1 ? "" : "s"} and ${list(tl.alerts).length} alert${list(tl.alerts).length === 1 ? "" : "s"} `
    + `on ${t.camera_id} from ${clock(tl.since)} to ${clock(tl.until)}; select a bar to open that track.`));
}

export function keyAction(key) {
  if (key === "Escape" || key === "Backspace") { location.hash = resultsHref(); return true; }
  return false;
}
