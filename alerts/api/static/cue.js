// The cue for a new urgent alert: a banner that stays until dismissed, the row flashing,
// and a two-tone sound made by the browser (Web Audio: no sound file, nothing fetched).
// Sound can be switched off; the choice is kept in this browser.
import { $, typeLabel } from "./text.js";

const SOUND_KEY = "argus.sound";
let audio = null;
export let cues = 0;  // how many cues were given (the browser tests read it)

export const soundOn = () => localStorage.getItem(SOUND_KEY) !== "off";
export function setSound(on) {
  localStorage.setItem(SOUND_KEY, on ? "on" : "off");
  showSoundButton();
  if (on) unlockAudio();
}
export function showSoundButton() {
  const b = $("sound");
  b.setAttribute("aria-pressed", soundOn() ? "true" : "false");
  b.textContent = soundOn() ? "Sound on" : "Sound off";
}
// Browsers start audio only after a user gesture: the sign-in click or any key unlocks it.
export function unlockAudio() {
  try {
    if (!audio) audio = new AudioContext();
    if (audio.state === "suspended") audio.resume();
  } catch (_) { audio = null; }
}
function beep() {
  if (!audio || !soundOn()) return false;
  const now = audio.currentTime;
  for (const [at, hz] of [[0, 880], [0.18, 660]]) {
    const osc = audio.createOscillator(), gain = audio.createGain();
    osc.frequency.value = hz;
    gain.gain.setValueAtTime(0.0001, now + at);
    gain.gain.exponentialRampToValueAtTime(0.25, now + at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + at + 0.16);
    osc.connect(gain).connect(audio.destination);
    osc.start(now + at);
    osc.stop(now + at + 0.17);
  }
  return true;
}
export function cue(a, open) {
  cues += 1;
  const banner = $("cue");
  banner.replaceChildren();
  const text = document.createElement("span");
  text.textContent = `New priority ${a.priority} alert: ${typeLabel(a.type)} on ${a.camera_id}`;
  const show = document.createElement("button");
  show.type = "button";
  show.textContent = "Open";
  show.addEventListener("click", () => { banner.hidden = true; open(a.event_id); });
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.textContent = "Dismiss";
  dismiss.addEventListener("click", () => { banner.hidden = true; });
  banner.append(text, show, dismiss);
  banner.dataset.eventId = a.event_id;
  banner.hidden = false;
  banner.dataset.sound = beep() ? "played" : "off";
}
// Someone took the cued alert on (claimed, escalated, closed): the banner has done its job.
export function settle(a) {
  const banner = $("cue");
  if (!banner.hidden && banner.dataset.eventId === a.event_id && a.state !== "new") banner.hidden = true;
}
