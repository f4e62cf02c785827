// The high-priority alarm tone, synthesised with Web Audio (no sound file to vendor).
//
// Browsers only let a page make sound after the user has interacted with it, so the
// audio context is created on the first tap or key press ("armed"); before that the
// page shows that sound is off. The burst follows the shape of IEC 60601-1-8's
// high-priority signal: ten pulses, 3 + 2, a pause, 3 + 2.

const HIGH_BURST_S = [0, 0.2, 0.4, 0.8, 1.0, 2.0, 2.2, 2.4, 2.8, 3.0];
const PULSE_S = 0.15;
const PITCH_HZ = 880;

export class AlarmSound {
  constructor() {
    this.context = null;
    this.played = 0;
    this.busyUntil = 0;
    this.onArmed = () => {};
  }

  get armed() {
    return this.context !== null;
  }

  /** Listen for the first interaction; call once at start-up. */
  armOnInteraction() {
    const arm = () => {
      if (this.context) return;
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      try {
        this.context = new Context();
      } catch {
        return;
      }
      for (const type of ["pointerdown", "keydown"]) window.removeEventListener(type, arm, true);
      this.onArmed();
    };
    for (const type of ["pointerdown", "keydown"]) window.addEventListener(type, arm, true);
  }

  /** Play the high-priority burst once (only when armed). */
  playHigh() {
    if (!this.context) return false;
    const ctx = this.context;
    if (ctx.state === "suspended") ctx.resume();
    if (ctx.currentTime < this.busyUntil) return true; // one burst at a time, not a din
    const start = ctx.currentTime + 0.05;
    this.busyUntil = start + HIGH_BURST_S[HIGH_BURST_S.length - 1] + PULSE_S;
    for (const offset of HIGH_BURST_S) {
      const oscillator = ctx.createOscillator();
      const gain = ctx.createGain();
      oscillator.type = "square";
      oscillator.frequency.value = PITCH_HZ;
      gain.gain.setValueAtTime(0, start + offset);
      gain.gain.linearRampToValueAtTime(0.25, start + offset + 0.01);
      gain.gain.setValueAtTime(0.25, start + offset + PULSE_S - 0.02);
      gain.gain.linearRampToValueAtTime(0, start + offset + PULSE_S);
      oscillator.connect(gain).connect(ctx.destination);
      oscillator.start(start + offset);
      oscillator.stop(start + offset + PULSE_S + 0.01);
    }
    this.played += 1;
    document.body.dataset.alarmSounds = String(this.played);
    return true;
  }
}
