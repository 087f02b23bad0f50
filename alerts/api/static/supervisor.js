// The supervisors' views: the audit log, the operators' open claims and times, and the
// share of alerts closed as false alarms per rule and per camera over a day and a week
// (the number that says which rule or camera needs tuning).
import { getJson } from "./api.js";
import { $, clock, duration, el, isNumber } from "./text.js";

const DAY_S = 86400, WEEK_S = 7 * DAY_S;

function table(caption, heads, rows, empty) {
  if (rows.length === 0) return el("p", { class: "empty" }, empty);
  return el("table", { class: "figures" },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, heads.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) => (i === 0 ? el("th", { scope: "row" }, c) : el("td", {}, c)))))));
}
function failed(view, what, e) {
  view.append(el("p", { role: "alert", class: "error" }, `${what} could not be loaded: ${e.message}`));
}
const pct = (x) => (isNumber(x) ? `${Math.round(x * 100)} %` : "—");
const secs = (x) => (isNumber(x) ? duration(x) : "—");

// -- the audit log ------------------------------------------------------------------------
export async function audit(params) {
  const view = $("view-audit");
  const form = el("form", { id: "audit-filters", class: "filters", "aria-label": "Audit filters" },
    el("label", { for: "audit-actor" }, "Who"),
    el("input", { id: "audit-actor", name: "actor", value: params.get("actor") || "", maxlength: 128 }),
    el("label", { for: "audit-action" }, "Action"),
    el("input", { id: "audit-action", name: "action", value: params.get("action") || "", maxlength: 64,
      placeholder: "e.g. alert.close" }),
    el("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const k of ["actor", "action"]) { const v = form.elements[k].value.trim(); if (v) p.set(k, v); }
    location.hash = "#/audit" + (p.toString() ? "?" + p : "");
  });
  view.replaceChildren(el("h2", {}, "Audit log"), form);
  const q = new URLSearchParams({ limit: "200" });
  for (const k of ["actor", "action"]) if (params.get(k)) q.set(k, params.get(k));
  try {
    const page = await getJson("/api/v1/audit?" + q);
    view.append(table(`The ${page.items.length} latest of ${page.total} entries`,
      ["When", "Who", "Action", "Target", "From", "Details"],
      page.items.map((e) => [clock(e.at), `${e.actor} (${e.actor_kind})`, e.action,
        e.target_kind ? `${e.target_kind} ${e.target_id ?? ""}` : "", e.client || "",
        Object.entries(e.detail || {}).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : v}`).join("; ")]),
      "No entries."));
  } catch (e) { failed(view, "The audit log", e); }
}

// -- the operators ------------------------------------------------------------------------
export async function operators() {
  const view = $("view-operators");
  view.replaceChildren(el("h2", {}, "Operators"));
  const now = Date.now() / 1000;
  try {
    const [day, week] = await Promise.all([
      getJson(`/api/v1/stats/operators?since=${now - DAY_S}&until=${now}`),
      getJson(`/api/v1/stats/operators?since=${now - WEEK_S}&until=${now}`),
    ]);
    const weekBy = new Map(week.items.map((o) => [o.name, o]));
    const names = [...new Set([...day.items.map((o) => o.name), ...week.items.map((o) => o.name)])];
    const dayBy = new Map(day.items.map((o) => [o.name, o]));
    view.append(table("Open claims now; claims, closes and median times over the last 24 hours and 7 days",
      ["Operator", "Open claims", "Claimed (24 h)", "Closed (24 h)", "Time to claim (24 h)", "Time to close (24 h)",
        "Claimed (7 d)", "Time to claim (7 d)", "Time to close (7 d)"],
      names.map((n) => {
        const d = dayBy.get(n) || {}, w = weekBy.get(n) || {};
        return [n, String(d.open_claims ?? w.open_claims ?? 0), String(d.claimed ?? 0), String(d.closed ?? 0),
          secs(d.median_to_claim_s), secs(d.median_to_close_s), String(w.claimed ?? 0),
          secs(w.median_to_claim_s), secs(w.median_to_close_s)];
      }),
      "No operator has claimed an alert in the last 7 days."));
  } catch (e) { failed(view, "The operators' figures", e); }
}

// -- false alarms per rule and camera -------------------------------------------------------
export async function tuning() {
  const view = $("view-tuning");
  view.replaceChildren(el("h2", {}, "False alarms"),
    el("p", { class: "hint" }, "The share of closed alerts that were false alarms. A high share says the rule or " +
      "camera needs tuning (zone, thresholds, schedule)."));
  const now = Date.now() / 1000;
  for (const by of ["rule", "camera"]) {
    try {
      const [day, week] = await Promise.all([
        getJson(`/api/v1/stats/dispositions?by=${by}&since=${now - DAY_S}&until=${now}`),
        getJson(`/api/v1/stats/dispositions?by=${by}&since=${now - WEEK_S}&until=${now}`),
      ]);
      const dayBy = new Map(day.items.map((x) => [x.key, x]));
      const rows = week.items
        .slice().sort((a, b) => (b.false_alarm_share ?? -1) - (a.false_alarm_share ?? -1))
        .map((w) => {
          const d = dayBy.get(w.key) || {};
          return [w.key, String(d.alerts ?? 0), pct(d.false_alarm_share), String(w.alerts), String(w.closed),
            String(w.false_alarms), pct(w.false_alarm_share), secs(w.median_time_to_claim_s)];
        });
      view.append(table(`Per ${by}`,
        [by === "rule" ? "Rule" : "Camera", "Alerts (24 h)", "False-alarm share (24 h)", "Alerts (7 d)",
          "Closed (7 d)", "False alarms (7 d)", "False-alarm share (7 d)", "Time to claim (7 d)"],
        rows, `No alerts in the last 7 days.`));
    } catch (e) { failed(view, `The figures per ${by}`, e); }
  }
}
