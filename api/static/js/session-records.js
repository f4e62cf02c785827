// What a session view lists besides its chart (issue #14): the doses given (with a hold
// override's reason) and the side effects logged, and the dose form's starting values:
// the last ones entered on this tablet for the protocol, else the protocol's own.

import { h } from "./dom.js";
import { SEVERITY_LABELS, SIDE_EFFECT_LABELS, clockTime, labelOf } from "./format.js";

const LAST_DOSE_KEY = "vitalsd.lastDose.";

// What a dose record says about how it was given (vitalsd.domain.DoseFlag), in words; a
// hold override shows its reason in its own column.
const DOSE_FLAG_LABELS = {
  no_baseline: "No baseline reading before it",
  no_recent_bp: "No recent blood pressure before it",
};

function doseFlags(dose) {
  const words = (dose.flags || []).map((flag) => DOSE_FLAG_LABELS[flag]).filter(Boolean);
  return words.length ? words.join("; ") : "--";
}

/** "severe" -> "Severe": labels and buttons read in sentence case on every view. */
export function sentence(text) {
  const value = String(text ?? "");
  return value.charAt(0).toUpperCase() + value.slice(1);
}

/** The last dose entered on this tablet under `protocol` ({drug, route, amount_mg}), or null. */
export function rememberedDose(protocol) {
  try {
    const saved = JSON.parse(localStorage.getItem(LAST_DOSE_KEY + protocol) || "null");
    return saved && typeof saved === "object" ? saved : null;
  } catch {
    return null; // a damaged entry is no reason to stop a dose
  }
}

export function rememberDose(protocol, { drug, route, amount_mg }) {
  localStorage.setItem(LAST_DOSE_KEY + protocol, JSON.stringify({ drug, route, amount_mg }));
}

/** Set a form's values and its reset values (form.reset() comes back to them). */
export function setFormDefaults(form, values) {
  for (const [name, value] of Object.entries(values)) {
    const control = form.elements[name];
    if (!control || value === null || value === undefined) continue;
    if (control.tagName === "SELECT") {
      if (![...control.options].some((o) => o.value === String(value))) continue;
      for (const option of control.options) option.defaultSelected = option.value === String(value);
      control.value = String(value);
    } else {
      control.defaultValue = String(value);
      control.value = String(value);
    }
  }
}

function table(name, headings, rows, empty) {
  return h(
    "div",
    { class: `session-records ${name}` },
    h(
      "table",
      { class: `data-table ${name}-table` },
      h("thead", {}, h("tr", {}, headings.map((text) => h("th", {}, text)))),
      h("tbody", {}, rows),
    ),
    rows.length ? null : h("p", { class: "empty-note" }, empty),
  );
}

export function dosesTable(doses) {
  const rows = [...doses]
    .sort((a, b) => Date.parse(a.given_at) - Date.parse(b.given_at))
    .map((d) =>
      h(
        "tr",
        { "data-dose-id": d.id },
        h("td", {}, clockTime(d.given_at)),
        h("td", {}, `${sentence(d.drug)} ${d.amount_mg} mg ${d.route}${d.increase ? " (increase)" : ""}`),
        h("td", {}, d.recorded_by || "--"),
        h("td", { class: "dose-override" }, d.override_reason ? `Hold overridden: ${d.override_reason}` : "--"),
        h("td", { class: "dose-flags" }, doseFlags(d)),
      ),
    );
  return table("doses", ["Time", "Dose", "By", "Override reason", "Flags"], rows, "No dose yet.");
}

export function sideEffectsTable(effects) {
  const rows = [...effects]
    .sort((a, b) => Date.parse(a.observed_at) - Date.parse(b.observed_at))
    .map((e) =>
      h(
        "tr",
        { "data-side-effect-id": e.id, "data-severity": e.severity },
        h("td", {}, clockTime(e.observed_at)),
        h("td", { class: "side-effect-name" }, labelOf(SIDE_EFFECT_LABELS, e.effect)),
        h("td", { class: "side-effect-severity" }, sentence(SEVERITY_LABELS[e.severity] ?? e.severity)),
        h("td", { class: "side-effect-note" }, e.note || "--"),
      ),
    );
  return table("side-effects", ["Time", "Effect", "Severity", "Note"], rows, "No side effect logged.");
}
