// The clinic's readings of a date range, as CSV or a FHIR Bundle (issue #14), for staff
// who may export records. Days are the tablet's (the clinic's) days.

import { h } from "../dom.js";
import { day } from "./records-format.js";

const DEFAULT_DAYS = 7;
const DAY_MS = 86_400_000;

/** Midnight starting `isoDay` (yyyy-mm-dd) in the tablet's time zone, as an ISO instant. */
function startOf(isoDay, plusDays = 0) {
  const [y, m, d] = isoDay.split("-").map(Number);
  return new Date(y, m - 1, d + plusDays).toISOString();
}

export function clinicExportsCard(app) {
  const today = day(app.clock.now());
  const from = h("input", { type: "date", id: "export-from", name: "from", value: day(app.clock.now() - (DEFAULT_DAYS - 1) * DAY_MS), max: today });
  const to = h("input", { type: "date", id: "export-to", name: "to", value: today, max: today });
  const csv = h("a", { class: "button", "data-export": "range-csv", download: "" }, "Readings CSV");
  const fhir = h("a", { class: "button", "data-export": "range-fhir", download: "" }, "FHIR Bundle");
  const note = h("p", { class: "hint", role: "status" });
  const refresh = () => {
    if (!from.value || !to.value || to.value < from.value) {
      for (const link of [csv, fhir]) link.removeAttribute("href");
      note.textContent = "Pick a first day on or before the last day.";
      return;
    }
    const range = `since=${encodeURIComponent(startOf(from.value))}&until=${encodeURIComponent(startOf(to.value, 1))}`;
    csv.href = `/api/exports/readings.csv?${range}`;
    csv.download = `readings-${from.value}-to-${to.value}.csv`;
    fhir.href = `/api/exports/fhir?${range}`;
    fhir.download = `readings-${from.value}-to-${to.value}-fhir.json`;
    note.textContent = "Every reading of the clinic from the first day's start to the last day's end (at most 366 days).";
  };
  from.addEventListener("change", refresh);
  to.addEventListener("change", refresh);
  refresh();
  return h(
    "section",
    { class: "card clinic-exports", "aria-label": "Clinic exports" },
    h("h2", {}, "Clinic exports"),
    h(
      "div",
      { class: "field-row" },
      h("div", { class: "field" }, h("label", { for: "export-from" }, "First day"), from),
      h("div", { class: "field" }, h("label", { for: "export-to" }, "Last day"), to),
    ),
    h("div", { class: "form-actions" }, csv, fhir),
    note,
  );
}
