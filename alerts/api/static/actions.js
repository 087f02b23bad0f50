// What a person may do with an alert now, and doing it.  Only what their role and the
// alert's state allow is offered (the service checks again and says why when it refuses).
import { alertPath, failure, postJson } from "./api.js";
import { $, typeLabel } from "./text.js";

export const FALSE_ALARM_EXPIRY_S = 86400;
let me = null;
let suppressions = true;  // false: this server has no control channel to suppress with
export function setMe(who) { me = who; }
export function setSuppressions(on) { suppressions = Boolean(on); }
export const may = (permission) => me !== null && me.permissions.includes(permission);
const supervises = () => may("alerts.act_any");

// [{name, key, action}] in the order the buttons show.
export function allowed(a) {
  if (!may("alerts.act")) return [];
  const mine = me !== null && a.owner !== null && a.owner.toLowerCase() === me.name.toLowerCase();
  const out = [];
  const add = (name, key, action) => out.push({ name, key, action });
  if (a.state === "new" || (a.state === "escalated" && supervises())) add("Claim", "c", "claim");
  if (a.state === "claimed" && (mine || supervises())) add("Release", "", "release");
  if (a.state === "new" || (a.state === "claimed" && mine)) add("Escalate", "e", "escalate");
  if (a.state === "new" || (a.state === "claimed" && (mine || supervises()))
      || (a.state === "escalated" && supervises())) {
    add("Close", "x", "close");
    if (suppressions) add("False alarm", "f", "false-alarm");
  }
  const closedByMe = me !== null && typeof a.closed_by === "string"
    && a.closed_by.toLowerCase() === me.name.toLowerCase();
  if (a.state === "closed" && (closedByMe || supervises())) add("Reopen", "", "reopen");
  return out;
}

// Ask for a disposition (and a note) in the close dialog; resolves with the body or null.
function askClose(a) {
  const dialog = $("close-dialog");
  $("close-title").textContent = `Close "${typeLabel(a.type)}" on ${a.camera_id}`;
  $("close-note").value = "";
  $("disposition").value = "true_incident";
  return new Promise((resolve) => {
    dialog.onclose = () => {
      if (dialog.returnValue !== "close") { resolve(null); return; }
      const note = $("close-note").value.trim();
      resolve({ disposition: $("disposition").value, ...(note ? { note } : {}) });
    };
    dialog.returnValue = "";
    dialog.showModal();
    $("disposition").focus();
  });
}
function askFalseAlarm(a) {
  const dialog = $("false-alarm-dialog");
  const hours = Math.round(FALSE_ALARM_EXPIRY_S / 3600);
  $("false-alarm-text").textContent = Array.isArray(a.bbox)
    ? `Similar alerts (same rule, zone and object near this place) from ${a.camera_id} ` +
      `will not be raised for ${hours} h.`
    : `Alerts of this rule from ${a.camera_id} will not be raised for ${hours} h.`;
  return new Promise((resolve) => {
    dialog.onclose = () => resolve(dialog.returnValue === "confirm");
    dialog.returnValue = "";
    dialog.showModal();
    $("false-alarm-confirm").focus();
  });
}

// A refused or failed action: the words for the person, and the HTTP status (0: no answer).
export class ActionError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

// Do `action` on alert `a`; resolves with the alert as the service answered, or throws an
// ActionError (its message in words).  A cancelled dialog resolves with null.
export async function perform(action, a) {
  let body = {};
  let what = action.charAt(0).toUpperCase() + action.slice(1);
  if (action === "close") {
    body = await askClose(a);
    if (body === null) return null;
  } else if (action === "false-alarm") {
    if (!(await askFalseAlarm(a))) return null;
    // region: same rule, zone and label near this box; an alert without a box (camera
    // health) has no region, so its rule on this camera is suppressed instead.
    body = { disposition: "false_alarm",
      suppress: { scope: Array.isArray(a.bbox) ? "region" : "rule", expires_in_s: FALSE_ALARM_EXPIRY_S } };
    action = "close";
    what = "False alarm";
  }
  try {
    return await postJson(alertPath(a.event_id, "/" + action), body);
  } catch (e) {
    throw new ActionError(failure(what, e), e.status || 0);
  }
}
