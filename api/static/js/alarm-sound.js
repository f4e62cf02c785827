// The alarm tones, synthesised with Web Audio (no sound file to vendor).
//
// Browsers only let a page make sound after the user has interacted with it, so the
// audio context is created on the first tap or key press ("armed"); before that the
// page shows that sound is off. The bursts follow the shape of IEC 60601-1-8's signals:
// high priority, ten pulses (3 + 2, a pause, 3 + 2); medium priority, three pulses at a
// lower pitch. How often a burst repeats is the alarm control's business (alarm-control.js).

const BURSTS = {
  high: { offsets: [0, 0.2, 0.4, 0.8, 1.0, 2.0, 2.2, 2.4, 2.8, 3.0], pulse: 0.15, pitch: 880 },
  medium: { offsets: [0, 0.25, 0.5], pulse: 0.2, pitch: 660 },
};

export class AlarmSound {
  constructor() {
    this.context = null;
    this.played = 0;
    this.playedBy = { high: 0, medium: 0 };
    this.sounding = []; // the gain nodes of the burst now playing, to cut it short
    this.onArmed = () => {};
  }

  get armed() {
    return this.context !== null;
  }

  /** Listen for the first interaction; call once at start-up. A tap on `own` (the
   * sound button) is left to that button, which arms on its own click. */
  armOnInteraction(own = null) {
    const arm = (event) => {
      if (own && own.contains(event.target)) return;
      if (this.arm()) {
        for (const type of ["pointerdown", "keydown"]) window.removeEventListener(type, arm, true);
      }
    };
    for (const type of ["pointerdown", "keydown"]) window.addEventListener(type, arm, true);
  }

  /** Create the audio context (inside a user gesture); true once armed. */
  arm() {
    if (this.context) return true;
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return false;
    try {
      this.context = new Context();
    } catch {
      return false;
    }
    this.onArmed();
    return true;
  }

  /** Play one burst of `priority` ("high" or "medium"); false when not armed. Counted on
   * <body data-alarm-sounds data-alarm-high-plays data-alarm-medium-plays> for the tests. */
  play(priority) {
    const burst = BURSTS[priority];
    if (!this.context || !burst) return false;
    const ctx = this.context;
    if (ctx.state === "suspended") ctx.resume();
    this.silence(); // one burst at a time, not a din
    const start = ctx.currentTime + 0.05;
    for (const offset of burst.offsets) {
      const oscillator = ctx.createOscillator();
      const gain = ctx.createGain();
      oscillator.type = "square";
      oscillator.frequency.value = burst.pitch;
      gain.gain.setValueAtTime(0, start + offset);
      gain.gain.linearRampToValueAtTime(0.25, start + offset + 0.01);
      gain.gain.setValueAtTime(0.25, start + offset + burst.pulse - 0.02);
      gain.gain.linearRampToValueAtTime(0, start + offset + burst.pulse);
      oscillator.connect(gain).connect(ctx.destination);
      oscillator.start(start + offset);
      oscillator.stop(start + offset + burst.pulse + 0.01);
      this.sounding.push(gain);
    }
    this.played += 1;
    this.playedBy[priority] += 1;
    document.body.dataset.alarmSounds = String(this.played);
    document.body.dataset[`alarm${priority === "high" ? "High" : "Medium"}Plays`] = String(this.playedBy[priority]);
    return true;
  }

  /** Cut the burst now playing (acknowledged, or audio paused). */
  silence() {
    for (const gain of this.sounding) {
      try {
        gain.disconnect();
      } catch {
        // already finished
      }
    }
    this.sounding = [];
  }

  /** Kept for callers of the first version: one high-priority burst. */
  playHigh() {
    return this.play("high");
  }
}
