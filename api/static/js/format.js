// How values read on screen: short, unambiguous, the same everywhere.

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/** "Alex Doe" -> "A.D." (DESIGN: tiles show initials and identifier, not the full name). */
export function initials(displayName) {
  const parts = String(displayName || "").trim().split(/[\s-]+/).filter(Boolean);
  if (parts.length === 0) return "?";
  const picked = parts.length === 1 ? [parts[0]] : [parts[0], parts[parts.length - 1]];
  return picked.map((p) => p[0].toLocaleUpperCase() + ".").join("");
}

export function mmHg(value) {
  return value === null || value === undefined ? "--" : String(Math.round(value));
}

export function bloodPressure(reading) {
  if (!reading) return "--/--";
  return `${mmHg(reading.systolic)}/${mmHg(reading.diastolic)}`;
}

/** A duration as a nurse says it: "4 min", "1 h 5 min". */
export function duration(ms) {
  const minutes = Math.floor(Math.max(0, ms) / MINUTE_MS);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
}

export function age(ms) {
  if (ms < MINUTE_MS) return "just now";
  return `${duration(ms)} ago`;
}

/** A countdown to a moment: "6:12" under an hour, else "1 h 05 min". */
export function countdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  if (total >= 3600) return duration(total * 1000);
  const minutes = Math.floor(total / 60);
  return `${minutes}:${String(total % 60).padStart(2, "0")}`;
}

export function clockTime(value) {
  const date = value instanceof Date ? value : new Date(value);
  // 24-hour clock: no AM/PM to misread across a room.
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}

export function parseTime(value) {
  return value ? Date.parse(value) : null;
}

// ACC/AHA 2017 categories (vitalsd.thresholds.BloodPressureCategory), always with text.
export const CATEGORY_LABELS = {
  low: "Low",
  normal: "Normal",
  elevated: "Elevated",
  stage_1: "Stage 1",
  stage_2: "Stage 2",
  severe: "Severe",
};

export const PHASE_LABELS = {
  checked_in: "Checked in",
  baseline: "Baseline",
  dosed: "Dosed",
  observation: "Observation",
  closed: "Closed",
};

export const ALERT_KIND_LABELS = {
  elevated_baseline: "Elevated baseline",
  consider_deferring: "Consider deferring",
  dosing_hold: "Dosing hold",
  severe_hypertension: "Severe hypertension",
  rise_over_baseline: "Rise over baseline",
  hypotension: "Hypotension",
  pulse_out_of_range: "Pulse out of range",
  remeasure: "Remeasure",
  check_overdue: "Check overdue",
  stale: "No recent reading",
  severe_side_effect: "Severe side effect",
  cuff_clock_off: "Cuff clock off",
  cuff_offline: "Cuff offline",
  nobody_watching: "Nobody watching",
  channel_failing: "Alert channel failing",
};

// IEC 60601-1-8 marks alarm priority with "!!!", "!!" and "!" beside the colour.
export const PRIORITY_LABELS = { high: "High", medium: "Medium", low: "Low" };
export const PRIORITY_MARKS = { high: "!!!", medium: "!!", low: "!" };
export const PRIORITY_RANK = { high: 2, medium: 1, low: 0 };

export const CHECK_KIND_LABELS = {
  baseline: "Baseline",
  post_dose: "Post-dose check",
  infusion: "Infusion check",
  post_infusion: "Post-infusion check",
  close: "Close-of-session check",
};

export const SIDE_EFFECT_LABELS = {
  dissociation: "Dissociation",
  mood_elevation: "Mood elevation",
  anxiety: "Anxiety",
  nausea: "Nausea",
  vomiting: "Vomiting",
  dizziness: "Dizziness",
  sedation: "Sedation",
  blurred_vision: "Blurred vision",
  numbness: "Numbness",
};

export const SEVERITY_LABELS = ["none", "mild", "moderate", "severe"];

// Measurement status flags (GATT Specification Supplement 3.31.2.6), short enough for
// a tile; the session view's tooltips and table use the same words.
export const FLAG_LABELS = {
  body_movement: "moved",
  cuff_too_loose: "loose cuff",
  irregular_pulse: "irregular pulse",
  pulse_rate_range: "pulse range",
  improper_position: "arm position",
};

export const CONNECTION_LABELS = {
  unknown: "unknown",
  advertising: "in range",
  connecting: "connecting",
  connected: "connected",
  disconnected: "disconnected",
  unreachable: "out of range",
};

export function labelOf(table, key) {
  return table[key] ?? String(key ?? "").replaceAll("_", " ");
}

/** A check's short label: the server's own label when it sent one. */
export function checkLabel(check) {
  return check.label || labelOf(CHECK_KIND_LABELS, check.kind);
}

export { MINUTE_MS, HOUR_MS };
