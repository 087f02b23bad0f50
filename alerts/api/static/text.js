// Words and DOM helpers shared by the views.  Everything a record says is set as text
// (textContent), never parsed as HTML: a hostile zone name or note stays text.

export const $ = (id) => document.getElementById(id);

// el("td", {class: "x", title: "t"}, "text", child, ...): an element with attributes
// (set with setAttribute; "on*" attributes are refused) and children (strings become text).
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) throw new Error("event handlers are added with addEventListener");
    e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export const SVG_NS = "http://www.w3.org/2000/svg";
export function svg(tag, attrs = {}) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

export const isNumber = (v) => typeof v === "number" && Number.isFinite(v);

// Labels of event types come from the rule types the service knows (GET /rule-types).
const labels = new Map();
export function setRuleTypes(types) {
  labels.clear();
  for (const t of Array.isArray(types) ? types : []) {
    for (const e of Array.isArray(t.events) ? t.events : []) {
      if (typeof e.type === "string" && typeof e.label === "string") labels.set(e.type, e.label);
    }
  }
}
export function knownTypes() { return [...labels.entries()].sort((a, b) => a[1].localeCompare(b[1])); }
export function typeLabel(type) {
  const t = String(type ?? "");
  return labels.get(t) ?? (t.charAt(0).toUpperCase() + t.slice(1)).replaceAll("_", " ");
}

function factsText(a) {
  // what a record without a reason still says: the line and direction, counts, merges
  const d = a.details || {};
  const parts = [];
  if (a.line) parts.push(a.direction ? `${a.line} (${a.direction})` : String(a.line));
  if (isNumber(d.count)) parts.push(`${d.count} counted`);
  if (isNumber(d.members) && d.members > 1) parts.push(`${d.members} events merged`);
  return parts.join(", ");
}
// The reason in words, rendered by the service from the rule's template.
export function reasonText(a) {
  return typeof a.reason === "string" && a.reason ? a.reason : factsText(a);
}

export const DISPOSITION_WORDS = {
  true_incident: "true incident", false_alarm: "false alarm", duplicate: "duplicate",
  test: "test", no_action: "no action needed",
};
export function stateText(a) {
  if (a.state === "claimed") return "claimed by " + a.owner;
  if (a.state === "escalated") {
    const to = a.escalated_to === "external" ? "external" : "supervisors";
    return `escalated to ${to}` + (a.escalation_ref ? ` (${a.escalation_ref})` : "") +
      (a.escalated_by === "sla" ? " by the SLA" : "");
  }
  if (a.state === "closed") return "closed: " + (DISPOSITION_WORDS[a.disposition] || a.disposition || "");
  return String(a.state ?? "");
}

// Whether the event itself still goes on (whatever the alert's state).
export function eventText(a) {
  if (a.end_s === null || a.end_s === undefined) return "ongoing";
  return a.end_reason === "interrupted" ? "interrupted" : "ended";
}

// 75 -> "1 min 15 s"; 7200 -> "2 h 0 min"
export function duration(s) {
  if (!isNumber(s)) return "";
  const neg = s < 0; s = Math.abs(Math.round(s));
  let out;
  if (s < 60) out = `${s} s`;
  else if (s < 3600) out = `${Math.floor(s / 60)} min ${s % 60} s`;
  else if (s < 86400) out = `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  else out = `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  return neg ? "-" + out : out;
}
export function clock(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleString();
}
export const secondsSince = (iso, now) => (now - new Date(iso).getTime()) / 1000;
