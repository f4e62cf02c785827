// The numbers behind an alert (DESIGN.md "Alarm behaviour": an alert always shows the
// value that raised it and the latest value; issue #14: and the limit crossed). The limit
// is the alert's own `limit` field (the rules' words, e.g. "≥ 180/110 mmHg"); the values
// are read from the server's messages (vitalsd.thresholds.Finding, e.g. "Severe
// hypertension 196/118 (>= 180/110)"), so the screen shows exactly what was judged. Alerts
// stored before the field existed fall back to the limit in their message.

import { h } from "../dom.js";

const PRESSURE = /(\d{2,3})\/(\d{2,3})/;
const LIMIT = /\((>=|<)\s*(\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)\)/;
const PULSE = /Pulse (\d+)\/min outside (\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)/;

function valueOf(message) {
  if (!message) return null;
  const pulse = message.match(PULSE);
  if (pulse) return `pulse ${pulse[1]}/min`;
  const pressure = message.match(PRESSURE);
  return pressure ? `${pressure[1]}/${pressure[2]}` : null;
}

function limitOf(message) {
  if (!message) return null;
  const pulse = message.match(PULSE);
  if (pulse) return `pulse ${pulse[2]}-${pulse[3]}/min`;
  const limit = message.match(LIMIT);
  if (!limit) return null;
  return `${limit[1] === ">=" ? "≥" : "<"} ${limit[2]}/${limit[3]}`;
}

/** {raised, latest, limit}: strings, or null where the alert has no such number. */
export function alertFigures(alert) {
  const raised = valueOf(alert.message);
  return {
    raised,
    latest: valueOf(alert.latest_message) ?? raised,
    limit: alert.limit ?? limitOf(alert.message) ?? limitOf(alert.latest_message),
  };
}

/** A row "Raised at 196/118 · Latest 200/120 · Limit ≥ 180/110" (nothing without numbers). */
export function figuresRow(alert) {
  const { raised, latest, limit } = alertFigures(alert);
  if (!raised && !limit) return null;
  return h(
    "div",
    { class: "alert-figures" },
    raised ? h("span", { class: "figure-raised" }, `Raised at ${raised}`) : null,
    latest ? h("span", { class: "figure-latest" }, `Latest ${latest}`) : null,
    limit ? h("span", { class: "figure-limit" }, `Limit ${limit}`) : null,
  );
}

/** The short form for a tile: "196/118 → 200/120 (≥ 180/110)". */
export function figuresShort(alert) {
  const { raised, latest, limit } = alertFigures(alert);
  if (!raised) return "";
  const values = latest && latest !== raised ? `${raised} → ${latest}` : raised;
  return limit ? `${values} (${limit})` : values;
}
