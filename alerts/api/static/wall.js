// The selective wall (#/wall) and the camera health board (#/cameras).
//
// One EventSource per view (GET /api/v1/live?view=wall|board) carries the whole view: the
// wall or board as it changes, and the live pictures of the cameras on it (a browser opens
// only ~6 connections per host).  The stream is open only while its view is shown: the
// server makes pictures only of cameras someone watches.  Pictures arrive as base64 JPEGs
// and are shown through blob: URLs (revoked when replaced).
import { $, duration, el, isNumber, typeLabel } from "./text.js";

let source = null;         // the EventSource of the view shown
let shown = "";            // "wall" | "board" | ""
let openAlert = () => {};
let openCamera = () => {};
let signedOutHook = () => {};
const pictures = new Map(); // camera id -> { url, taken_at }
const tiles = new Map();    // camera id -> { article, img, state, ... } (wall)
const rows = new Map();     // camera id -> { tr, img, ... } (board)
let lastDoc = null;
export const stats = { walls: 0, pictures: 0, lastWallAt: 0 };

export function init(opts) {
  openAlert = opts.open;
  openCamera = opts.camera;
  signedOutHook = opts.signedOut;
}

const STATE_WORDS = {
  connecting: "Connecting", streaming: "Streaming", reconnecting: "Reconnecting",
  lost: "Signal lost", frozen: "Picture frozen", covered: "Lens covered", blurred: "Picture blurred",
  moved: "Camera moved", ended: "Ended", failed: "Failed", waiting: "Waiting for a worker",
};
export const stateWords = (s) => (s ? STATE_WORDS[s] || s : "Not reported");
// States in which no live picture can be trusted: the tile shows the state instead.
const NO_PICTURE = new Set(["connecting", "reconnecting", "lost", "ended", "failed", "waiting"]);
const prioClass = (p) => (p >= 70 ? "high" : p >= 40 ? "mid" : "low");
const ago = (t) => (isNumber(t) ? duration(Date.now() / 1000 - t) + " ago" : "");
const at = (t) => (isNumber(t) ? new Date(t * 1000).toLocaleTimeString() : "");

// -- the stream -------------------------------------------------------------------------------
export function show(view) {
  const want = view === "wall" ? "wall" : "board";
  if (shown === want && source) return;
  stop();
  shown = want;
  lastDoc = null;
  for (const cam of [...pictures.keys()]) forgetPicture(cam);
  $(want === "wall" ? "wall-note" : "board-note").textContent = "Connecting…";
  source = new EventSource(`/api/v1/live?view=${want}`);
  source.addEventListener(want, (ev) => {
    const doc = JSON.parse(ev.data);
    lastDoc = doc;
    if (want === "wall") renderWall(doc); else renderBoard(doc);
  });
  source.addEventListener("picture", (ev) => picture(JSON.parse(ev.data)));
  source.addEventListener("signed-out", () => { stop(); signedOutHook(); });
  source.addEventListener("error", () => {
    if (!source) return;
    const note = $(want === "wall" ? "wall-note" : "board-note");
    note.textContent = "Connection lost: reconnecting…";
    note.dataset.state = "down";
  });
}

export function stop() {
  if (source) source.close();
  source = null;
  shown = "";
}

// A camera that leaves the view forgets its picture: when it comes back, it shows only a
// picture taken after that (never an old one under "Streaming").
function forgetPicture(cam) {
  const old = pictures.get(cam);
  if (old) { pictures.delete(cam); URL.revokeObjectURL(old.url); }
}

function picture(p) {
  stats.pictures += 1;
  const bytes = Uint8Array.from(atob(p.jpeg), (c) => c.charCodeAt(0));
  const url = URL.createObjectURL(new Blob([bytes], { type: "image/jpeg" }));
  const old = pictures.get(p.camera_id);
  pictures.set(p.camera_id, { url, taken_at: p.taken_at });
  const t = tiles.get(p.camera_id);
  if (t) showPicture(t, p.camera_id);
  const r = rows.get(p.camera_id);
  if (r) showThumb(r, p.camera_id);
  if (old) setTimeout(() => URL.revokeObjectURL(old.url), 1000);  // after the img swapped
}

// -- the wall -------------------------------------------------------------------------------
function tileFor(cam) {
  let t = tiles.get(cam);
  if (t) return t;
  const img = el("img", { alt: `Live picture of camera ${cam}`, hidden: true });
  const state = el("p", { class: "tile-state" });
  const prio = el("span", { class: "prio" });
  const reason = el("span", { class: "tile-reason" });
  const facts = el("span", { class: "tile-facts" });
  const caption = el("div", { class: "tile-caption" }, prio,
    el("span", { class: "tile-words" }, el("strong", { class: "tile-camera" }, cam), reason, facts));
  const article = el("button", { type: "button", class: "tile", "data-camera": cam },
    el("div", { class: "tile-pic" }, img, state), caption);
  article.addEventListener("click", () => {
    const cur = tiles.get(cam);
    if (cur && cur.doc && cur.doc.alert) openAlert(cur.doc.alert.event_id);
    else openCamera(cam);
  });
  t = { article, img, state, prio, reason, facts, doc: null };
  tiles.set(cam, t);
  return t;
}

function showPicture(t, cam) {
  const p = pictures.get(cam);
  const s = t.doc ? t.doc.state : null;
  const noPicture = !lastDoc || !lastDoc.live || NO_PICTURE.has(s) || !p;
  if (!noPicture && t.img.src !== p.url) t.img.src = p.url;
  t.img.hidden = noPicture;
  t.state.hidden = !noPicture && !["frozen", "covered", "blurred", "moved"].includes(s);
  let words;
  if (!lastDoc || !lastDoc.live) words = "No live picture: no camera worker reports to this server.";
  else if (NO_PICTURE.has(s)) {
    words = `${stateWords(s)} since ${at(t.doc.state_since)}` + (t.doc.detail ? ` — ${t.doc.detail}` : "");
  } else if (!s) words = "No worker reports this camera.";
  else if (!p) words = "Waiting for the live picture…";
  else words = `${stateWords(s)} since ${at(t.doc.state_since)}`;
  t.state.textContent = words;
  t.article.dataset.state = s || "unknown";
}

function renderWall(doc) {
  stats.walls += 1;
  stats.lastWallAt = Date.now();
  const note = $("wall-note");
  note.dataset.state = "live";
  const n = doc.tiles.length + doc.more;
  note.textContent = (n === 0 ? "Nothing needs attention" : `${n} ${n === 1 ? "camera needs" : "cameras need"} attention`)
    + ` · ${doc.quiet} quiet of ${doc.cameras}` + (doc.more ? ` · ${doc.more} more not shown` : "");
  const keep = new Set(doc.tiles.map((t) => t.camera_id));
  for (const [cam, t] of tiles) {
    if (!keep.has(cam)) { t.article.remove(); tiles.delete(cam); forgetPicture(cam); }
  }
  const grid = $("wall-tiles");
  doc.tiles.forEach((d, i) => {
    const t = tileFor(d.camera_id);
    t.doc = d;
    t.prio.textContent = String(d.priority);
    t.prio.className = "prio " + prioClass(d.priority);
    t.reason.textContent = d.reason;
    const facts = [];
    if (d.alert) facts.push(typeLabel(d.alert.type), d.alert.state);
    if (d.open_alerts > 1) facts.push(`${d.open_alerts} open`);
    if (d.kind === "activity") facts.push("watching");
    t.facts.textContent = facts.join(" · ");
    t.article.dataset.kind = d.kind;
    t.article.setAttribute("aria-label",
      `Camera ${d.camera_id}, priority ${d.priority}: ${d.reason}` + (d.alert ? " (open the alert)" : ""));
    if (grid.children[i] !== t.article) grid.insertBefore(t.article, grid.children[i] || null);
    showPicture(t, d.camera_id);
  });
  $("wall-empty").hidden = doc.tiles.length > 0;
  grid.dataset.count = String(doc.tiles.length);
  const count = doc.tiles.length;  // as many columns as keep the tiles large: 2x2, 3x3, 4x4
  grid.dataset.cols = String(count <= 4 ? 2 : count <= 9 ? 3 : 4);
}

// -- the board ------------------------------------------------------------------------------
function rowFor(cam) {
  let r = rows.get(cam);
  if (r) return r;
  const img = el("img", { alt: `Last picture of camera ${cam}`, hidden: true });
  const cells = {
    camera: el("th", { scope: "row" }, cam), groups: el("td"), state: el("td", { class: "cam-state" }),
    picture: el("td", { class: "thumb" }, img, el("span", { class: "sub" })), fps: el("td", { class: "num" }),
    dropped: el("td", { class: "num" }), alerts: el("td", { class: "num" }), watching: el("td", { class: "num" }),
  };
  const tr = el("tr", { "data-camera": cam }, ...Object.values(cells));
  r = { tr, img, cells, doc: null };
  rows.set(cam, r);
  return r;
}

function showThumb(r, cam) {
  const p = pictures.get(cam);
  const s = r.doc ? r.doc.state : null;
  const ok = p && !NO_PICTURE.has(s);
  if (ok && r.img.src !== p.url) r.img.src = p.url;
  r.img.hidden = !ok;
  // the last frame analysed (the thumbnail, when shown, is at most a few seconds older)
  const when = r.doc && isNumber(r.doc.last_frame_at) ? r.doc.last_frame_at : p ? p.taken_at : null;
  r.cells.picture.lastChild.textContent = when ? "last frame " + at(when) + " (" + ago(when) + ")" : "no frame yet";
}

function renderBoard(doc) {
  const note = $("board-note");
  note.dataset.state = "live";
  const bad = doc.cameras.filter((c) => c.state !== "streaming").length;
  note.textContent = `${doc.cameras.length} cameras · ${bad} not streaming` +
    (doc.live ? "" : " · no camera worker reports to this server");
  const keep = new Set(doc.cameras.map((c) => c.camera_id));
  for (const [cam, r] of rows) if (!keep.has(cam)) { r.tr.remove(); rows.delete(cam); forgetPicture(cam); }
  const body = $("board-rows");
  doc.cameras.forEach((c, i) => {
    const r = rowFor(c.camera_id);
    r.doc = c;
    r.tr.dataset.state = c.state || "unknown";
    r.cells.groups.textContent = c.groups.join(", ");
    r.cells.state.replaceChildren(...[el("strong", {}, stateWords(c.state)),
      el("span", { class: "sub" }, c.since ? "since " + at(c.since) : (c.detail || "")),
      c.detail && c.since ? el("span", { class: "sub" }, c.detail) : null,
      c.quiet ? el("span", { class: "sub" }, "quiet: decoded sparsely") : null].filter(Boolean));
    r.cells.fps.textContent = isNumber(c.fps) ? c.fps.toFixed(1) : "–";
    r.cells.dropped.textContent = isNumber(c.frames_dropped) ? String(c.frames_dropped) : "–";
    r.cells.alerts.textContent = String(c.open_alerts);
    r.cells.watching.textContent = String(c.watching);
    if (body.children[i] !== r.tr) body.insertBefore(r.tr, body.children[i] || null);
    showThumb(r, c.camera_id);
  });
}

// the "since"/"ago" words age with the clock
export function tick() {
  if (shown === "board") for (const [cam, r] of rows) showThumb(r, cam);
}
