// Alarm audio that holds a ward's attention (issue #14, IEC 60601-1-8 style).
//
// While an alert is active (not acknowledged, not snoozed) its tone repeats: high
// priority every 5 s, medium every 20 s (IEC 60601-1-8 Table 4 allows 2.5-15 s and
// 2.5-30 s between bursts). A new or re-notified alert sounds at once. A nurse may pause
// the audio for at most 2 minutes; it resumes by itself. The control is always on screen
// (the alert banner, every layout) and says which state sound is in: off until a first
// tap (browsers need a gesture before sound), on, or paused with a countdown.

import { h, setAttr, setText } from "./dom.js";
import { PRIORITY_RANK, countdown } from "./format.js";

export const REPEAT_MS = { high: 5_000, medium: 20_000 };
// IEC 60601-1-8 6.3.3.1: AUDIO PAUSED is time-limited; 2 minutes is the usual ceiling.
export const AUDIO_PAUSE_MS = 120_000;
const TICK_MS = 250;

/** The priority whose tone the ward must hear now, or null: active alerts only. */
export function soundingPriority(alerts) {
  let best = null;
  for (const alert of alerts) {
    if (alert.state !== "active" || !(alert.priority in REPEAT_MS)) continue;
    if (best === null || PRIORITY_RANK[alert.priority] > PRIORITY_RANK[best]) best = alert.priority;
  }
  return best;
}

/**
 * Which tone to play at `now`, or null (a pure rule: no clock, no audio).
 * `heard`: ids of the alerts already sounded while active; `last`: {priority, at} of the
 * last burst; `pausedUntil`: ms, or null.
 */
export function toneDue({ alerts, heard, last, now, pausedUntil }) {
  if (pausedUntil !== null && now < pausedUntil) return null;
  const priority = soundingPriority(alerts);
  if (priority === null) return null;
  const fresh = alerts.some((a) => a.state === "active" && a.priority in REPEAT_MS && !heard.has(a.id));
  if (fresh || !last || PRIORITY_RANK[priority] > PRIORITY_RANK[last.priority]) return priority;
  return now - last.at >= REPEAT_MS[priority] ? priority : null;
}

export class AlarmControl {
  /** sound: an AlarmSound; alerts(): the open alerts; now(): ms (the tablet's clock). */
  constructor({ sound, alerts, now = () => Date.now() }) {
    this.sound = sound;
    this.alerts = alerts;
    this.now = now;
    this.heard = new Set();
    this.last = null;
    this.pausedUntil = null;
    this.timer = null;
    this.button = h(
      "button",
      {
        type: "button",
        class: "sound-state alarm-audio",
        "data-armed": "false",
        "data-sound": "off",
        onclick: () => this.pressed(),
      },
      h("span", { class: "alarm-audio-dot", "aria-hidden": "true" }),
      h("span", { class: "alarm-audio-text" }),
      h("span", { class: "alarm-audio-short" }), // a portrait tablet's banner is narrow
    );
    this.root = this.button;
    this.sound.onArmed = () => this.update();
    this.update();
  }

  start() {
    clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.sound.silence();
  }

  get paused() {
    return this.pausedUntil !== null && this.now() < this.pausedUntil;
  }

  pressed() {
    if (!this.sound.armed) {
      this.sound.arm(); // this click is the gesture browsers want
    } else if (this.paused) {
      this.pausedUntil = null;
    } else {
      this.pausedUntil = this.now() + AUDIO_PAUSE_MS;
      this.sound.silence();
    }
    this.tick();
  }

  /** The server sounded an alert again (re-notification, worsening): play it now. */
  renotified(alert) {
    this.heard.delete(alert.id);
    this.tick();
  }

  tick() {
    const now = this.now();
    if (this.pausedUntil !== null && now >= this.pausedUntil) this.pausedUntil = null;
    const alerts = this.alerts();
    const active = new Set(alerts.filter((a) => a.state === "active").map((a) => a.id));
    // An alert that stopped being active (acknowledged, snoozed) and comes back is new.
    for (const id of this.heard) if (!active.has(id)) this.heard.delete(id);
    if (soundingPriority(alerts) === null) {
      this.sound.silence(); // acknowledged mid-burst: quiet now
      this.last = null;
    }
    if (this.sound.armed) {
      const tone = toneDue({ alerts, heard: this.heard, last: this.last, now, pausedUntil: this.pausedUntil });
      if (tone && this.sound.play(tone)) {
        this.last = { priority: tone, at: now };
        for (const id of active) this.heard.add(id);
      }
    }
    this.update();
  }

  update() {
    const armed = this.sound.armed;
    const paused = armed && this.paused;
    const mode = !armed ? "off" : paused ? "paused" : "on";
    setAttr(this.button, "data-armed", armed ? "true" : "false");
    setAttr(this.button, "data-sound", mode);
    const text = {
      off: "Sound off: tap to enable",
      on: "Sound on · Pause 2 min",
      paused: `Audio paused ${countdown(this.pausedUntil - this.now())} · Resume`,
    }[mode];
    setText(this.button.querySelector(".alarm-audio-text"), text);
    const short = {
      off: "Tap for sound",
      on: "Sound on · Pause",
      paused: `Paused ${countdown(this.pausedUntil - this.now())}`,
    }[mode];
    setText(this.button.querySelector(".alarm-audio-short"), short);
    setAttr(
      this.button,
      "aria-label",
      { off: "Alarm sound is off: tap to enable", on: "Alarm sound on: pause audio for 2 minutes", paused: `${text}: resume audio now` }[mode],
    );
  }
}
