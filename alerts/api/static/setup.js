// Camera setup (#/setup?camera=ID), for admins (cameras.manage): a fleet camera's current
// picture with its zones and lines drawn over it in an SVG in frame pixels; draw, move,
// rename and delete them; the camera's rules, each edited in a form built from its type's
// JSON Schema; checked here, then saved whole (PUT /api/v1/fleet/cameras/ID): the worker
// that runs the camera applies it without a restart.
//
// Drawing: "Draw zone", then click the vertices; click the first vertex again or press
// Enter to close it, Esc to cancel.  "Draw line": two clicks; its arrow shows the "+"
// direction ("Flip" turns it).  Drag a vertex to move it, or focus it (Tab) and use the
// arrow keys (Shift: 10 pixels); Delete removes a focused zone vertex or floor point.
// "Mark floor points": click points on the floor whose positions you measured, then give
// each its position in metres: the camera's ground calibration (rules then measure
// distances and speeds on the floor, and may use their *_m keys).
import { ApiError, api, getJson, putJson } from "./api.js";
import { ruleForm } from "./ruleform.js";
import { freshName, plusNormal, shapeProblems } from "./shapes.js";
import { $, el, svg } from "./text.js";

let types = [];          // GET /rule-types
let cameras = [];        // the fleet's cameras (GET /fleet/cameras)
let def = null;          // the definition being edited: {camera, rules, model}
let cameraId = "";
let frame = null;        // {width, height}: the frame pixels zones are measured in
let pictureUrl = null;   // blob: URL of the picture shown
let drawing = null;      // {kind: "zone"|"line", points: [[x, y]...]} while drawing
let selected = null;     // {kind, index} of the shape selected
let dragging = null;     // {kind, index, vertex} while a vertex is dragged
let editing = null;      // {index (-1: new), form} of the rule being edited
let loadSeq = 0;

const view = () => $("view-setup");
const zones = () => def.camera.zones || (def.camera.zones = []);
const lines = () => def.camera.lines || (def.camera.lines = []);
const floor = () => { const g = def.camera.ground || (def.camera.ground = {}); return g.points || (g.points = []); };
const pointsOf = (kind, i) => (kind === "zone" ? zones()[i].polygon : kind === "line" ? lines()[i].points : floor().map((f) => f.image));
function setVertex(kind, i, v, p) {
  if (kind === "floor") floor()[v].image = p;
  else pointsOf(kind, i)[v] = p;
}
const typeWords = (t) => (t.charAt(0).toUpperCase() + t.slice(1)).replaceAll("_", " ");

// -- the view ---------------------------------------------------------------------------
export async function show(params) {
  const seq = ++loadSeq;
  view().replaceChildren(el("h2", {}, "Camera setup"), el("p", { class: "count", role: "status" }, "Loading the fleet's cameras…"));
  try {
    const [fleet, rt] = await Promise.all([getJson("/api/v1/fleet/cameras"), getJson("/api/v1/rule-types")]);
    if (seq !== loadSeq) return;
    cameras = fleet.cameras;
    types = rt;
  } catch (e) {
    if (seq !== loadSeq) return;
    const words = e instanceof ApiError && e.status === 503
      ? "Camera setup needs the fleet: this alert service has none (its cameras come from the config file). "
        + "Give it a fleet section (see \"Many workers: a fleet sharing the cameras\")."
      : `The fleet's cameras could not be loaded: ${e.message}`;
    view().replaceChildren(el("h2", {}, "Camera setup"), el("p", { class: "error", role: "alert", id: "setup-error" }, words));
    return;
  }
  const wanted = params.get("camera") || "";
  const pick = el("select", { id: "setup-camera" }, el("option", { value: "" }, "Choose a camera"),
    cameras.map((c) => el("option", { value: c.camera_id }, c.camera_id)));
  pick.value = cameras.some((c) => c.camera_id === wanted) ? wanted : "";
  pick.addEventListener("change", () => { location.hash = "#/setup" + (pick.value ? "?camera=" + encodeURIComponent(pick.value) : ""); });
  view().replaceChildren(
    el("h2", {}, "Camera setup"),
    el("div", { class: "filters" }, el("label", { for: "setup-camera" }, "Camera"), pick,
      el("span", { class: "hint" }, `${cameras.length} in the fleet`)),
    el("div", { id: "setup-body" }));
  if (pick.value) await open(pick.value, seq);
  else $("setup-body").append(el("p", { class: "empty" }, cameras.length ? "Choose a camera to set up its zones, lines and rules." : "The fleet has no cameras yet."));
}

export function stop() {
  loadSeq++;
  drawing = dragging = editing = selected = null;
  if (pictureUrl) { URL.revokeObjectURL(pictureUrl); pictureUrl = null; }
}

async function open(id, seq) {
  const found = cameras.find((c) => c.camera_id === id);
  cameraId = id;
  def = structuredClone({ camera: found.camera, rules: found.rules, model: found.model });
  drawing = dragging = editing = selected = null;
  frame = null;
  $("setup-body").replaceChildren(layout());
  renderShapes();
  renderFloor();
  renderRules();
  await loadPicture(seq);
}

function layout() {
  const stage = el("div", { class: "setup-stage", id: "setup-stage" },
    el("p", { class: "no-media", id: "setup-picture-note", role: "status" }, "Asking the camera's worker for a picture…"));
  const tools = el("div", { class: "setup-tools", role: "toolbar", "aria-label": "Drawing" },
    button("setup-draw-zone", "Draw zone", () => startDrawing("zone")),
    button("setup-draw-line", "Draw line", () => startDrawing("line")),
    button("setup-draw-floor", "Mark floor points", () => startDrawing("floor")),
    button("setup-reload", "Reload picture", () => loadPicture(loadSeq)),
    el("span", { id: "setup-drawing", class: "hint", role: "status" }, ""));
  const source = el("input", { id: "setup-source", value: def.camera.source || "", maxlength: 2048 });
  const evidence = el("input", { id: "setup-evidence", value: def.camera.evidence_source || "", maxlength: 2048,
    placeholder: "rtsp://user:${CAM_NAME}@host/main" });
  const sourceNote = [def.camera.source, def.camera.evidence_source].some((v) => String(v || "").includes("***"))
    ? el("p", { class: "error", id: "setup-source-note" }, "A source is shown redacted: enter it again, "
      + "its password as a reference (${CAM_NAME} or ${file:/run/secrets/name}), before saving.")
    : null;
  return el("div", { class: "setup" },
    el("section", { class: "setup-picture", "aria-label": "Picture, zones and lines" }, tools, stage,
      el("p", { class: "hint" }, "The picture shows what the worker runs now (people blurred); your zones "
        + "(amber) and lines (blue) are drawn over it. Drag a vertex to move it, or focus it with Tab and use "
        + "the arrow keys.")),
    el("section", { class: "setup-side", "aria-label": "Definition" },
      el("h3", {}, "Zones and lines"), el("ul", { id: "setup-shapes", class: "setup-list" }),
      el("h3", {}, "Floor points"),
      el("p", { class: "hint", id: "setup-floor-hint" }, "Optional: four or more points on the floor, no three in a row (the "
        + "corners of a parking bay, floor tiles), each with its position in metres from any corner you choose. "
        + "Rules then measure distances and speeds on the floor. Without them the floor is estimated from the people seen."),
      el("ul", { id: "setup-floor", class: "setup-list" }),
      el("h3", {}, "Rules"), el("ul", { id: "setup-rules", class: "setup-list" }),
      el("div", { class: "filters" },
        el("label", { for: "setup-rule-type" }, "New rule"),
        el("select", { id: "setup-rule-type" }, types.map((t) => el("option", { value: t.type, title: t.summary }, typeWords(t.type)))),
        button("setup-add-rule", "Add rule", () => editRule(-1))),
      el("div", { id: "setup-rule-editor" }),
      el("h3", {}, "Source"),
      el("label", { for: "setup-source", class: "visually-hidden" }, "Source"), source,
      el("h3", {}, "Evidence stream"),
      el("label", { for: "setup-evidence", class: "hint" }, "Optional: the camera's main stream, when the source "
        + "is its sub-stream. Alert clips are cut from it, at its full resolution."), evidence, sourceNote,
      el("div", { class: "setup-save" }, button("setup-save", "Save camera", save)),
      el("div", { id: "setup-result", role: "status", "aria-live": "polite" })));
}
function button(id, text, fn, attrs = {}) {
  const b = el("button", { type: "button", id, ...attrs }, text);
  b.addEventListener("click", fn);
  return b;
}

// -- the picture -------------------------------------------------------------------------
async function loadPicture(seq) {
  const note = $("setup-picture-note");
  if (note) note.textContent = "Asking the camera's worker for a picture…";
  let r;
  try {
    r = await api(`/api/v1/cameras/${encodeURIComponent(cameraId)}/picture`);
  } catch (e) {
    if (seq !== loadSeq) return;
    const why = e instanceof ApiError && e.detail ? e.detail : e.message;
    $("setup-stage").replaceChildren(el("p", { class: "no-media", id: "setup-picture-note", role: "alert" },
      `No picture: ${why}. Zones and lines can be drawn once the camera streams; its rules can be edited now.`));
    for (const id of ["setup-draw-zone", "setup-draw-line", "setup-draw-floor"]) $(id).disabled = true;
    return;
  }
  const width = Number(r.headers.get("X-Frame-Width")), height = Number(r.headers.get("X-Frame-Height"));
  const blob = await r.blob();
  if (seq !== loadSeq) return;
  frame = { width, height };
  if (pictureUrl) URL.revokeObjectURL(pictureUrl);
  pictureUrl = URL.createObjectURL(blob);
  const img = el("img", { id: "setup-picture", src: pictureUrl, alt: `Current picture of ${cameraId}` });
  const overlay = svg("svg", { id: "setup-overlay", class: "setup-overlay", viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: "none", role: "application", tabindex: -1, "aria-label": `Zones and lines over the picture, ${width} by ${height} pixels` });
  overlay.addEventListener("pointerdown", onPointerDown);
  overlay.addEventListener("pointermove", onPointerMove);
  overlay.addEventListener("pointerup", onPointerUp);
  overlay.addEventListener("keydown", onVertexKey);
  $("setup-stage").replaceChildren(img, overlay,
    el("span", { class: "setup-size hint" }, `Frame ${width}×${height} px`));
  for (const id of ["setup-draw-zone", "setup-draw-line", "setup-draw-floor"]) $(id).disabled = false;
  draw();
}

// Frame pixels of a pointer event (integers, inside the picture).
function framePoint(ev) {
  const box = $("setup-overlay").getBoundingClientRect();
  const x = Math.round(((ev.clientX - box.left) / box.width) * frame.width);
  const y = Math.round(((ev.clientY - box.top) / box.height) * frame.height);
  return [Math.min(Math.max(x, 0), frame.width), Math.min(Math.max(y, 0), frame.height)];
}
const handleRadius = () => Math.max(frame.width, frame.height) / 110;

// -- drawing -------------------------------------------------------------------------------
function startDrawing(kind) {
  if (!frame) return;
  drawing = { kind, points: [] };
  selected = null;
  $("setup-drawing").textContent = kind === "zone"
    ? "Drawing a zone: click its vertices; click the first one or press Enter to close it; Esc cancels."
    : kind === "line" ? "Drawing a line: click its two ends; Esc cancels."
      : "Marking floor points: click each point on the floor whose position you know; Enter or Esc ends.";
  $("setup-overlay").focus();
  draw();
}
function finishDrawing() {
  const d = drawing;
  drawing = null;
  $("setup-drawing").textContent = "";
  if (!d) return;
  if (d.kind === "zone") {
    if (d.points.length < 3) { say(`A zone needs at least 3 vertices: that one had ${d.points.length}; not kept.`); draw(); return; }
    zones().push({ name: freshName("zone", zones().map((z) => z.name)), polygon: d.points });
    selected = { kind: "zone", index: zones().length - 1 };
  } else {
    lines().push({ name: freshName("line", lines().map((l) => l.name)), points: d.points });
    selected = { kind: "line", index: lines().length - 1 };
  }
  renderShapes();
  renderRules();
  draw();
  const input = $(`setup-name-${selected.kind}-${selected.index}`);
  if (input) input.focus();
}
function cancelDrawing() {
  drawing = null;
  $("setup-drawing").textContent = "Drawing cancelled.";
  draw();
}
document.addEventListener("keydown", (ev) => {
  if (!drawing || view().hidden) return;
  if (drawing.kind === "floor" && (ev.key === "Escape" || ev.key === "Enter")) {
    ev.preventDefault();
    drawing = null;
    $("setup-drawing").textContent = `${floor().length} floor points: give each its position in metres.`;
    draw();
    const first = floor().findIndex((f) => !Array.isArray(f.ground) || f.ground.some((v) => typeof v !== "number"));
    if (first >= 0) $(`setup-floor-x-${first}`).focus();
    return;
  }
  if (ev.key === "Escape") { ev.preventDefault(); cancelDrawing(); }
  else if (ev.key === "Enter" && drawing.kind === "zone") { ev.preventDefault(); finishDrawing(); }
});

function onPointerDown(ev) {
  if (!frame || ev.button !== 0) return;
  const t = ev.target;
  if (drawing) {
    ev.preventDefault();
    const p = framePoint(ev);
    if (drawing.kind === "floor") {
      floor().push({ image: p, ground: [null, null] });
      renderFloor();
      draw();
      return;
    }
    const first = drawing.points[0];
    if (drawing.kind === "zone" && first && drawing.points.length >= 3
        && Math.hypot(p[0] - first[0], p[1] - first[1]) <= handleRadius() * 1.5) { finishDrawing(); return; }
    drawing.points.push(p);
    if (drawing.kind === "line" && drawing.points.length === 2) { finishDrawing(); return; }
    draw();
    return;
  }
  if (t.dataset && t.dataset.vertex !== undefined) {
    dragging = { kind: t.dataset.kind, index: Number(t.dataset.index), vertex: Number(t.dataset.vertex) };
    selected = { kind: dragging.kind, index: dragging.index };
    $("setup-overlay").setPointerCapture(ev.pointerId);
    ev.preventDefault();
  } else if (t.dataset && t.dataset.kind) {
    selected = { kind: t.dataset.kind, index: Number(t.dataset.index) };
  } else selected = null;
  renderShapes();
  draw();
}
function onPointerMove(ev) {
  if (!dragging) return;
  setVertex(dragging.kind, dragging.index, dragging.vertex, framePoint(ev));
  draw();
}
function onPointerUp() {
  if (!dragging) return;
  dragging = null;
  renderShapes();
  renderFloor();
}
function onVertexKey(ev) {
  const t = ev.target;
  if (drawing || !t.dataset || t.dataset.vertex === undefined) return;
  const kind = t.dataset.kind, index = Number(t.dataset.index), vertex = Number(t.dataset.vertex);
  const pts = pointsOf(kind, index);
  const step = ev.shiftKey ? 10 : 1;
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  if (moves[ev.key]) {
    const [dx, dy] = moves[ev.key];
    setVertex(kind, index, vertex, [Math.min(Math.max(pts[vertex][0] + dx, 0), frame.width), Math.min(Math.max(pts[vertex][1] + dy, 0), frame.height)]);
  } else if ((ev.key === "Delete" || ev.key === "Backspace") && kind === "zone" && pts.length > 3) {
    pts.splice(vertex, 1);
  } else if ((ev.key === "Delete" || ev.key === "Backspace") && kind === "floor") {
    floor().splice(vertex, 1);
    if (!floor().length) selected = null;
  } else return;
  ev.preventDefault();
  ev.stopPropagation();
  if (kind !== "floor" || floor().length) selected = { kind, index };
  draw();
  renderShapes();
  renderFloor();
  const again = $("setup-overlay").querySelector(`[data-kind="${kind}"][data-index="${index}"][data-vertex="${Math.min(vertex, pts.length - 1)}"]`);
  if (again) again.focus();
}

// The SVG: every zone and line, the one being drawn, vertex handles of the selected one.
function draw() {
  const overlay = $("setup-overlay");
  if (!overlay || !frame) return;
  const r = handleRadius();
  const parts = [];
  zones().forEach((z, i) => {
    const on = selected && selected.kind === "zone" && selected.index === i;
    parts.push(svg("polygon", { class: "setup-zone" + (on ? " selected" : ""), points: z.polygon.map((p) => p.join(",")).join(" "),
      "data-kind": "zone", "data-index": i }));
    parts.push(label(z.name, z.polygon[0], "zone"));
  });
  lines().forEach((l, i) => {
    const on = selected && selected.kind === "line" && selected.index === i;
    const [a, b] = l.points;
    if (!a || !b) return;
    parts.push(svg("line", { class: "setup-line" + (on ? " selected" : ""), x1: a[0], y1: a[1], x2: b[0], y2: b[1],
      "data-kind": "line", "data-index": i }));
    const [nx, ny] = plusNormal(a, b), mx = (a[0] + b[0]) / 2, my = (a[1] + b[1]) / 2, len = r * 5;
    parts.push(svg("line", { class: "setup-arrow", x1: mx, y1: my, x2: mx + nx * len, y2: my + ny * len }));
    const tip = svg("text", { class: "setup-plus", x: mx + nx * len * 1.35, y: my + ny * len * 1.35, "font-size": r * 3.5,
      "text-anchor": "middle", "dominant-baseline": "middle" });
    tip.textContent = "+";
    parts.push(tip, label(l.name, a, "line"));
  });
  floor().forEach((f, v) => {
    parts.push(svg("circle", { class: "setup-floor", cx: f.image[0], cy: f.image[1], r: r * 0.8, "data-kind": "floor", "data-index": 0 }));
    parts.push(label(`P${v + 1}`, f.image, "floor"));
  });
  if (selected && !drawing) {
    pointsOf(selected.kind, selected.index).forEach((p, v) => {
      const h = svg("circle", { class: "setup-vertex", cx: p[0], cy: p[1], r, tabindex: 0, role: "button",
        "data-kind": selected.kind, "data-index": selected.index, "data-vertex": v,
        "aria-label": `Vertex ${v + 1} of ${selected.kind} ${shapeName(selected)} at ${p[0]}, ${p[1]}: arrow keys move it` });
      parts.push(h);
    });
  }
  if (drawing && drawing.points.length) {
    parts.push(svg("polyline", { class: "setup-drawing", points: drawing.points.map((p) => p.join(",")).join(" ") }));
    drawing.points.forEach((p, v) => parts.push(svg("circle", { class: "setup-vertex" + (v === 0 ? " first" : ""), cx: p[0], cy: p[1], r })));
  }
  overlay.replaceChildren(...parts);
}
function label(text, at, kind) {
  const t = svg("text", { class: `setup-label ${kind}`, x: at[0] + handleRadius(), y: at[1] - handleRadius(),
    "font-size": handleRadius() * 2.6 });
  t.textContent = text;
  return t;
}
const shapeName = (s) => (s.kind === "zone" ? zones()[s.index].name : s.kind === "line" ? lines()[s.index].name : "points");

// -- the lists ---------------------------------------------------------------------------------
function renderShapes() {
  const list = $("setup-shapes");
  if (!list) return;
  const items = [];
  for (const kind of ["zone", "line"]) {
    (kind === "zone" ? zones() : lines()).forEach((s, i) => {
      const id = `setup-name-${kind}-${i}`;
      const on = selected && selected.kind === kind && selected.index === i;
      const name = el("input", { id, value: s.name, maxlength: 64, "data-kind": kind, "data-index": i });
      name.addEventListener("change", () => rename(kind, i, name.value.trim()));
      name.addEventListener("focus", () => { if (!on) { selected = { kind, index: i }; draw(); markSelected(); } });
      const pts = kind === "zone" ? s.polygon : s.points;
      items.push(el("li", { class: "setup-shape" + (on ? " selected" : ""), "data-kind": kind, "data-index": i },
        el("label", { for: id }, kind === "zone" ? `Zone ${i + 1} name` : `Line ${i + 1} name`), name,
        el("span", { class: "hint" }, kind === "zone" ? `${pts.length} vertices` : "arrow: + side"),
        kind === "line" ? button(`setup-flip-${i}`, "Flip", () => { s.points.reverse(); draw(); }, { "aria-label": `Flip the direction of line ${s.name}` }) : null,
        button(`setup-delete-${kind}-${i}`, "Delete", () => removeShape(kind, i), { "aria-label": `Delete ${kind} ${s.name}` })));
    });
  }
  list.replaceChildren(...(items.length ? items : [el("li", { class: "hint" }, "None yet: draw a zone or a line on the picture.")]));
}
function renderFloor() {
  const list = $("setup-floor");
  if (!list) return;
  const rows = floor().map((f, i) => {
    const g = Array.isArray(f.ground) ? f.ground : (f.ground = [null, null]);
    const metres = (axis) => {
      const id = `setup-floor-${axis ? "y" : "x"}-${i}`;
      const input = el("input", { id, type: "number", step: "0.01", value: typeof g[axis] === "number" ? String(g[axis]) : "",
        class: "setup-metres", "aria-label": `P${i + 1} ${axis ? "y" : "x"} (m)` });
      input.addEventListener("change", () => {
        const v = input.value.trim() === "" ? null : Number(input.value);
        g[axis] = v !== null && Number.isFinite(v) ? v : null;
      });
      return [el("label", { for: id }, axis ? "y" : "x"), input, el("span", { class: "hint" }, "m")];
    };
    return el("li", { class: "setup-shape", "data-kind": "floor", "data-index": i },
      el("strong", {}, `P${i + 1}`),
      el("span", { class: "hint", title: "Where it is in the picture" }, `${Math.round(f.image[0])}, ${Math.round(f.image[1])} px`),
      ...metres(0), ...metres(1),
      button(`setup-delete-floor-${i}`, "Delete", () => { floor().splice(i, 1); selected = null; renderFloor(); draw(); },
        { "aria-label": `Delete floor point P${i + 1}` }));
  });
  list.replaceChildren(...(rows.length ? rows : [el("li", { class: "hint" }, "None: the floor is estimated from the people seen.")]));
}
function floorProblems() {
  const pts = floor();
  if (!pts.length) return [];
  const problems = [];
  if (pts.length < 4) problems.push(`Floor points: four or more are needed (${pts.length} marked), or none.`);
  pts.forEach((f, i) => {
    if (!Array.isArray(f.ground) || f.ground.some((v) => typeof v !== "number" || !Number.isFinite(v))) {
      problems.push(`Floor point P${i + 1} needs its position in metres (x and y).`);
    }
  });
  return problems;
}
function markSelected() {
  for (const li of $("setup-shapes").children) {
    li.classList.toggle("selected", Boolean(selected) && li.dataset.kind === selected.kind && Number(li.dataset.index) === selected.index);
  }
}
function rename(kind, i, name) {
  const shape = kind === "zone" ? zones()[i] : lines()[i];
  const old = shape.name;
  shape.name = name;
  for (const rule of def.rules) if (rule[kind] === old) rule[kind] = name;  // its rules follow
  draw();
  renderRules();
}
function removeShape(kind, i) {
  (kind === "zone" ? zones() : lines()).splice(i, 1);
  selected = null;
  renderShapes();
  renderRules();
  draw();
}

function ruleText(rule) {
  const where = rule.zone ? ` in zone ${rule.zone}` : rule.line ? ` on line ${rule.line}` : "";
  const what = Array.isArray(rule.classes) ? ` (${rule.classes.join(", ")})` : "";
  return `${typeWords(String(rule.type))}${where}${what}${rule.enabled === false ? " — disabled" : ""}`;
}
function renderRules() {
  const list = $("setup-rules");
  if (!list) return;
  const items = def.rules.map((rule, i) => el("li", { class: "setup-rule" },
    el("span", {}, ruleText(rule)),
    button(`setup-edit-rule-${i}`, "Edit", () => editRule(i), { "aria-label": `Edit rule ${i + 1}: ${ruleText(rule)}` }),
    button(`setup-delete-rule-${i}`, "Delete", () => { def.rules.splice(i, 1); editing = null; $("setup-rule-editor").replaceChildren(); renderRules(); },
      { "aria-label": `Delete rule ${i + 1}: ${ruleText(rule)}` })));
  list.replaceChildren(...(items.length ? items : [el("li", { class: "hint" }, "No rules: this camera raises no alerts.")]));
}

// -- a rule's form -------------------------------------------------------------------------------
function editRule(index) {
  const rule = index >= 0 ? def.rules[index] : {};
  const typeName = index >= 0 ? rule.type : $("setup-rule-type").value;
  const type = types.find((t) => t.type === typeName);
  const box = $("setup-rule-editor");
  if (!type) { box.replaceChildren(el("p", { class: "error", role: "alert" }, `Unknown rule type ${typeName}.`)); return; }
  const form = ruleForm(type, rule, { camera: cameraId, zones: zones().map((z) => z.name), lines: lines().map((l) => l.name) });
  const problems = el("ul", { class: "problems", id: "setup-rule-problems", role: "alert" });
  const f = el("form", { id: "setup-rule-form", class: "rule-form", "aria-labelledby": "setup-rule-h" },
    el("h4", { id: "setup-rule-h" }, `${index >= 0 ? "Edit" : "New"} rule: ${typeWords(type.type)}`),
    el("p", { class: "hint" }, type.summary), form.el, problems,
    el("div", { class: "buttons" }, el("button", { type: "submit", id: "setup-rule-apply" }, index >= 0 ? "Apply changes" : "Add to camera"),
      button("setup-rule-cancel", "Cancel", () => { editing = null; box.replaceChildren(); })));
  f.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const got = form.read();
    if (got.problems) { problems.replaceChildren(...got.problems.map((p) => el("li", {}, p))); return; }
    if (index >= 0) def.rules[index] = got.rule; else def.rules.push(got.rule);
    editing = null;
    box.replaceChildren(el("p", { class: "hint", role: "status" }, "Rule kept: save the camera to apply it."));
    renderRules();
  });
  editing = { index, form };
  box.replaceChildren(f);
  const first = f.querySelector("input, select");
  if (first) first.focus();
}

// -- saving ----------------------------------------------------------------------------------------
function say(text, problems = [], kind = "hint") {
  const out = $("setup-result");
  out.replaceChildren(el("p", { class: kind }, text), problems.length ? el("ul", { class: "problems" }, problems.map((p) => el("li", {}, p))) : "");
}
async function save() {
  def.camera.source = $("setup-source").value.trim();
  const evidenceSource = $("setup-evidence").value.trim();
  if (evidenceSource) def.camera.evidence_source = evidenceSource;
  else delete def.camera.evidence_source;
  const problems = [...shapeProblems(zones(), lines(), frame), ...floorProblems()];
  const zoneNames = zones().map((z) => z.name), lineNames = lines().map((l) => l.name);
  def.rules.forEach((r, i) => {
    if (r.zone && !zoneNames.includes(r.zone)) problems.push(`Rule ${i + 1} (${ruleText(r)}) names zone "${r.zone}", which is not drawn.`);
    if (r.line && !lineNames.includes(r.line)) problems.push(`Rule ${i + 1} (${ruleText(r)}) names line "${r.line}", which is not drawn.`);
  });
  if (editing) problems.push("A rule is open in its form: add or cancel it first.");
  if (problems.length) { say("Not saved: fix these first.", problems, "error"); return; }
  say("Saving…");
  try {
    const out = await putJson(`/api/v1/fleet/cameras/${encodeURIComponent(cameraId)}`, def);
    const i = cameras.findIndex((c) => c.camera_id === cameraId);
    if (i >= 0) cameras[i] = out;
    def = structuredClone({ camera: out.camera, rules: out.rules, model: out.model });
    $("setup-rule-editor").replaceChildren();
    renderShapes();
    renderFloor();
    renderRules();
    draw();
    say("Saved — the worker applies it (a changed zone or line restarts this camera).", [], "saved");
  } catch (e) {
    const listed = e instanceof ApiError && e.body && Array.isArray(e.body.problems) ? e.body.problems
      : e instanceof ApiError && e.body && Array.isArray(e.body.detail) ? e.body.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`)
        : [];
    const why = e instanceof ApiError && e.status === 422 ? "The service refused the definition:"
      : e instanceof ApiError && e.status === 503 ? `Not saved: ${e.detail || "the broker did not take the change"}. Nothing changed.`
        : `Not saved: ${e.message}.`;
    say(why, listed, "error");
  }
}
