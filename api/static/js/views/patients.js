// Patients (issue #14): the list with a search (#/patients), and a patient's page with
// their past sessions (#/patient/<id>): date, protocol, doses, peak blood pressure,
// alerts and side effects; each session opens read-only once closed.

import { h, setText } from "../dom.js";
import { ALERT_KIND_LABELS, CATEGORY_LABELS, SEVERITY_LABELS, SIDE_EFFECT_LABELS, labelOf, mmHg } from "../format.js";
import { clinicExportsCard } from "./clinic-exports.js";
import { dateTime } from "./records-format.js";

const SEARCH_DELAY_MS = 250;
const LIST_LIMIT = 200;

function protocolTitle(protocols, name) {
  const found = protocols.find((p) => p.name === name);
  return found ? found.title : name;
}

export class PatientsView {
  constructor(app) {
    this.app = app;
    this.timer = null;
    this.seq = 0;
    this.search = h("input", {
      type: "search",
      id: "patient-search",
      name: "q",
      autocomplete: "off",
      maxlength: 128,
      placeholder: "Identifier or name",
      oninput: () => {
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.load(), SEARCH_DELAY_MS);
      },
    });
    this.rows = h("tbody");
    this.status = h("p", { class: "empty-note", role: "status" });
    this.root = h(
      "section",
      { class: "view patients-view", "data-view": "patients", "aria-label": "Patients" },
      h(
        "div",
        { class: "session-head" },
        h("div", {}, h("h1", {}, "Patients")),
        app.can("run_sessions") ? h("a", { class: "button button-primary", href: "#/admit" }, "Admit a patient") : null,
      ),
      h("div", { class: "field patient-search" }, h("label", { for: "patient-search" }, "Find a patient"), this.search),
      app.can("export_clinic") ? clinicExportsCard(app) : null,
      h(
        "table",
        { class: "data-table patients-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "Identifier"), h("th", {}, "Name"), h("th", {}, "Date of birth"), h("th", {}, "Now"))),
        this.rows,
      ),
      this.status,
    );
    this.found = [];
    this.openKey = null;
  }

  mount(container) {
    container.replaceChildren(this.root);
    this.load();
  }

  unmount() {
    clearTimeout(this.timer);
  }

  /** Who is in session changes with the stream: the "Now" column follows. */
  update() {
    const key = this.openSessions().map((s) => `${s.id}:${s.patient_id}`).join(",");
    if (key !== this.openKey) this.renderRows();
  }

  openSessions() {
    return [...this.app.state.sessions.values()].filter((s) => !s.closed_at);
  }

  async load() {
    const seq = ++this.seq;
    const q = this.search.value.trim();
    let found;
    try {
      found = await this.app.api.get(`/api/patients?q=${encodeURIComponent(q)}&limit=${LIST_LIMIT}`);
    } catch (error) {
      if (seq === this.seq) setText(this.status, `Could not load patients: ${error.message}`);
      return;
    }
    if (seq !== this.seq) return;
    this.found = found;
    this.renderRows();
    setText(this.status, found.length ? "" : q ? `No patient matches "${q}".` : "No patient registered yet.");
  }

  renderRows() {
    const { state } = this.app;
    const open = this.openSessions();
    this.openKey = open.map((s) => `${s.id}:${s.patient_id}`).join(",");
    const openOf = new Map(open.map((s) => [s.patient_id, s]));
    this.rows.replaceChildren(
      ...this.found.map((p) => {
        const open = openOf.get(p.id);
        return h(
          "tr",
          { "data-patient-id": p.id },
          h("td", {}, h("a", { class: "row-link", href: `#/patient/${p.id}` }, p.identifier)),
          h("td", {}, p.display_name),
          h("td", {}, p.date_of_birth),
          h("td", {}, open ? h("a", { class: "row-link", href: `#/session/${open.id}` }, `In session · ${state.chairName(open.chair_id)}`) : ""),
        );
      }),
    );
  }
}

export class PatientView {
  constructor(app, patientId) {
    this.app = app;
    this.patientId = patientId;
    this.title = h("h1", {}, `Patient ${patientId}`);
    this.subtitle = h("p", { class: "session-subtitle" });
    this.admit = h("a", { class: "button button-primary", href: `#/admit?patient=${patientId}`, hidden: true }, "Admit");
    this.rows = h("tbody");
    this.status = h("p", { class: "empty-note", role: "status" });
    this.root = h(
      "section",
      { class: "view patient-view", "data-view": "patient", "data-patient-id": patientId },
      h("div", { class: "session-head" }, h("a", { class: "back button", href: "#/patients" }, "‹ Patients"), h("div", {}, this.title, this.subtitle), this.admit),
      h("h2", {}, "Sessions"),
      h(
        "div",
        { class: "table-scroll" },
        h(
          "table",
          { class: "data-table history-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", {}, "Date"),
              h("th", {}, "Protocol"),
              h("th", {}, "Doses"),
              h("th", {}, "Peak BP"),
              h("th", {}, "Alerts"),
              h("th", {}, "Side effects"),
              h("th", {}, "Status"),
            ),
          ),
          this.rows,
        ),
      ),
      this.status,
    );
  }

  mount(container) {
    container.replaceChildren(this.root);
    this.load();
  }

  update() {}

  async load() {
    let history;
    let protocols = [];
    try {
      [history, protocols] = await Promise.all([
        this.app.api.get(`/api/patients/${this.patientId}/history`),
        this.app.api.get("/api/protocols").catch(() => []),
      ]);
    } catch (error) {
      setText(this.status, `Could not load the patient: ${error.message}`);
      return;
    }
    const { patient, sessions } = history;
    setText(this.title, `${patient.display_name} · ${patient.identifier}`);
    setText(this.subtitle, `Born ${patient.date_of_birth} · ${sessions.length} session${sessions.length === 1 ? "" : "s"}`);
    this.admit.hidden = !this.app.can("run_sessions") || sessions.some((s) => !s.closed_at);
    this.rows.replaceChildren(...sessions.map((s) => this.row(s, protocols)));
    setText(this.status, sessions.length ? "" : "No session yet.");
  }

  row(s, protocols) {
    const { state } = this.app;
    const doses = s.doses.length
      ? s.doses.map((d) => `${d.drug} ${d.amount_mg} mg ${d.route}${d.increase ? " (increase)" : ""}`).join(", ")
      : "none";
    const peak = s.peak
      ? `${mmHg(s.peak.systolic)}/${mmHg(s.peak.diastolic)}${s.peak.category ? ` · ${labelOf(CATEGORY_LABELS, s.peak.category)}` : ""}`
      : "--";
    const kinds = [...new Set(s.alerts.map((a) => labelOf(ALERT_KIND_LABELS, a.kind)))];
    const effects = s.side_effects.map((e) => `${labelOf(SIDE_EFFECT_LABELS, e.effect)} (${SEVERITY_LABELS[e.severity] || e.severity})`);
    const status = s.closed_at
      ? `Closed ${dateTime(s.closed_at)}${s.closed_by ? ` by ${s.closed_by}` : ""}`
      : `Open · ${state.chairName(s.chair_id)}`;
    return h(
      "tr",
      { "data-session-id": s.id, "data-closed": s.closed_at ? "true" : "false" },
      h("td", {}, h("a", { class: "row-link", href: `#/session/${s.id}` }, dateTime(s.started_at)), h("div", { class: "hint" }, `Session ${s.course_session} of the course`)),
      h("td", {}, protocolTitle(protocols, s.protocol)),
      h("td", {}, doses),
      h("td", { class: "nowrap" }, peak),
      h("td", {}, kinds.length ? `${s.alerts.length}: ${kinds.join(", ")}` : "none"),
      h("td", {}, effects.length ? effects.join(", ") : "none"),
      h("td", {}, status),
    );
  }
}
