// One session: its timeline chart, checks, alerts, and the forms to record what happens.

import { h, setText } from "../dom.js";
import { timeline } from "../chart.js";
import {
  CATEGORY_LABELS,
  CHECK_KIND_LABELS,
  FLAG_LABELS,
  PHASE_LABELS,
  SEVERITY_LABELS,
  SIDE_EFFECT_LABELS,
  bloodPressure,
  clockTime,
  initials,
  labelOf,
  mmHg,
  parseTime,
} from "../format.js";
import { AlertList } from "./alerts.js";
import { confirmDialog } from "../confirm-dialog.js";
import {
  dosesTable,
  rememberDose,
  rememberedDose,
  sentence,
  setFormDefaults,
  sideEffectsTable,
} from "../session-records.js";
import { SessionRecords } from "./session-records.js";

// Alerts that stop a dose until resolved (vitalsd.gates.DOSE_BLOCKING_KINDS).
const DOSE_BLOCKING_KINDS = ["dosing_hold", "severe_hypertension"];

const CHART_HEIGHT = 470;
const DRUGS = ["ketamine", "esketamine", "other"];
const ROUTES = ["IM", "IV", "intranasal", "oral", "sublingual"];
const OPEN_CHECK_STATES = new Set(["pending", "due", "overdue"]);

let fieldCounter = 0;

/** A labelled form field (the label is a real <label>, for touch and screen readers). */
function field(label, control, hint) {
  fieldCounter += 1;
  const id = `f${fieldCounter}`;
  control.id = id;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("span", { class: "hint" }, hint) : null,
  );
}

function numberInput(name, { min, max, step = 1, required = false, value } = {}) {
  return h("input", {
    name,
    type: "number",
    inputmode: "decimal",
    min,
    max,
    step,
    required,
    value,
  });
}

function select(name, options, selected) {
  return h(
    "select",
    { name },
    options.map(([value, label]) => h("option", { value, selected: value === selected }, label)),
  );
}

function formStatus() {
  return h("p", { class: "form-status", role: "status", "aria-live": "polite" });
}

export class SessionView {
  constructor(app, sessionId) {
    this.app = app;
    this.sessionId = sessionId;
    this.session = null;
    this.readings = [];
    this.checks = [];
    this.doses = [];
    this.sideEffects = [];
    this.loading = null;
    this.reloadTimer = null;
    this.chartKey = null;
    this.headKey = null;
    this.statuses = new Map(); // form name -> its last outcome
    this.title = h("h1", {}, `Session ${sessionId}`);
    this.subtitle = h("p", { class: "session-subtitle" });
    this.latest = h("div", { class: "session-latest" });
    this.alertList = new AlertList(app, { "aria-label": "This session's open alerts" });
    this.records = new SessionRecords(app, sessionId); // closed header, exports (#14)
    this.chart = h("div", { class: "chart", "data-chart": "timeline" });
    this.checkTable = h("tbody");
    this.readingTable = h("tbody");
    this.forms = h("div", { class: "forms" });
    this.doseList = h("div", { class: "dose-list" });
    this.sideEffectList = h("div", { class: "side-effect-list" });
    this.root = h(
      "section",
      { class: "view session-view", "data-view": "session", "data-session-id": sessionId },
      h("div", { class: "session-head" }, h("a", { class: "back button", href: "#/ward" }, "‹ Ward"), h("div", {}, this.title, this.subtitle), this.latest),
      this.records.root,
      this.alertList.root,
      this.chart,
      this.forms,
      h(
        "div",
        { class: "tables" },
        h(
          "div",
          {},
          h("h2", {}, "Checks"),
          h(
            "table",
            { class: "data-table checks-table" },
            h("thead", {}, h("tr", {}, h("th", {}, "Check"), h("th", {}, "Window"), h("th", {}, "State"))),
            this.checkTable,
          ),
        ),
        h(
          "div",
          {},
          h("h2", {}, "Readings"),
          h(
            "table",
            { class: "data-table readings-table" },
            h(
              "thead",
              {},
              h("tr", {}, h("th", {}, "Time"), h("th", {}, "mmHg"), h("th", {}, "Pulse"), h("th", {}, "Category"), h("th", {}, "Source")),
            ),
            this.readingTable,
          ),
        ),
        h("div", {}, h("h2", {}, "Doses"), this.doseList),
        h("div", {}, h("h2", {}, "Side effects"), this.sideEffectList),
      ),
    );
    this.resize = new ResizeObserver(() => this.drawChart(true));
  }

  mount(container) {
    container.replaceChildren(this.root);
    this.resize.observe(this.chart);
    this.reload();
  }

  unmount() {
    this.resize.disconnect();
    clearTimeout(this.reloadTimer);
  }

  /** Something about this session changed on the stream: reload it (debounced). */
  scheduleReload() {
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.reload(), 150);
  }

  async reload() {
    const { api } = this.app;
    const id = this.sessionId;
    const load = Promise.all([
      api.session(id),
      api.sessionReadings(id),
      api.sessionChecks(id),
      api.sessionDoses(id),
      api.sessionSideEffects(id),
    ]);
    this.loading = load;
    let answer;
    try {
      answer = await load;
    } catch (error) {
      if (this.loading === load) this.subtitle.textContent = `Could not load the session: ${error.message}`;
      return;
    }
    if (this.loading !== load) return; // a newer reload overtook this one
    [this.session, this.readings, this.checks, this.doses, this.sideEffects] = answer;
    this.app.state.setSessionReadings(id, this.readings);
    this.app.state.setSessionChecks(id, this.checks);
    this.app.state.doses.set(id, this.doses);
    this.render();
  }

  /** The stream's view of this session is newer than the last load for readings. */
  currentReadings() {
    const fromStream = this.app.state.sessionReadings(this.sessionId);
    return fromStream.length >= this.readings.length ? fromStream : this.readings;
  }

  render() {
    if (!this.session) return;
    const { state } = this.app;
    const session = state.sessions.get(this.sessionId) || this.session;
    const patient = state.patients.get(session.patient_id);
    const latest = state.latestReading(this.sessionId);
    const readings = this.currentReadings();
    this.renderAlerts();
    this.records.update(session, this.doses);
    this.drawChart(false);
    this.renderForms(session);
    // The header and tables change only with the session, its readings and its checks:
    // rebuilding them on every cuff-pressure tick would fight a nurse's scrolling.
    const key = JSON.stringify([
      session,
      patient?.id,
      latest?.id,
      readings.map((r) => r.id),
      state.sessionChecks(this.sessionId).map((c) => [c.id, c.state]),
      this.doses.map((d) => d.id),
      this.sideEffects.map((e) => e.id),
    ]);
    if (key === this.headKey) return;
    this.headKey = key;
    // Only what is known goes in the header: never "null" or "undefined" (issue #14).
    const who = patient ? `${initials(patient.display_name)} ${patient.identifier}` : `Patient ${session.patient_id}`;
    setText(this.title, [state.chairName(session.chair_id) || `Session ${session.id}`, who].join(" · "));
    setText(
      this.subtitle,
      [
        labelOf(PHASE_LABELS, session.phase),
        session.protocol,
        session.course_session ? `course session ${session.course_session}` : null,
        session.started_at ? `started ${clockTime(session.started_at)}` : null,
      ]
        .filter(Boolean)
        .join(" · ") +
        (session.baseline ? ` · baseline ${mmHg(session.baseline.systolic)}/${mmHg(session.baseline.diastolic)}${session.baseline.confirmed ? "" : " (unconfirmed)"}` : " · no baseline yet") +
        (session.closed_at ? ` · closed ${clockTime(session.closed_at)}${session.close_reason ? ` (${session.close_reason})` : ""}` : ""),
    );
    this.latest.replaceChildren(
      h("span", { class: "bp-value", "data-category": latest?.category }, bloodPressure(latest)),
      h("span", { class: "unit" }, "mmHg"),
      latest ? h("span", { class: "category", "data-category": latest.category }, labelOf(CATEGORY_LABELS, latest.category)) : null,
    );
    this.renderTables();
  }

  renderAlerts() {
    this.alertList.update(this.app.state.alertsOfSession(this.sessionId));
  }

  drawChart(force) {
    if (!this.session) return;
    const width = Math.max(480, Math.floor(this.chart.clientWidth));
    const session = this.app.state.sessions.get(this.sessionId) || this.session;
    const readings = this.currentReadings();
    const checks = this.app.state.sessionChecks(this.sessionId);
    const key = JSON.stringify([
      width,
      readings.map((r) => r.id),
      checks.map((c) => [c.id, c.state]),
      this.doses.map((d) => d.id),
      this.sideEffects.map((e) => e.id),
      session.baseline,
      session.closed_at,
      Math.floor(this.app.clock.now() / 60_000),
    ]);
    if (!force && key === this.chartKey) return;
    this.chartKey = key;
    this.chart.replaceChildren(
      timeline({
        width,
        height: CHART_HEIGHT,
        session,
        readings,
        doses: this.doses,
        checks,
        sideEffects: this.sideEffects,
        now: this.app.clock.now(),
      }),
    );
  }

  renderTables() {
    this.doseList.replaceChildren(dosesTable(this.doses));
    this.sideEffectList.replaceChildren(sideEffectsTable(this.sideEffects));
    const checks = this.app.state.sessionChecks(this.sessionId);
    this.checkTable.replaceChildren(
      ...checks.map((c) =>
        h(
          "tr",
          { "data-check-id": c.id, "data-state": c.state },
          h("td", {}, c.label || labelOf(CHECK_KIND_LABELS, c.kind)),
          h("td", {}, c.window_start ? `${clockTime(c.window_start)}${c.window_end ? `–${clockTime(c.window_end)}` : ""}` : "--"),
          h("td", { class: "check-state" }, c.state === "waived" && c.waiver_reason ? `Waived: ${c.waiver_reason}` : sentence(c.state)),
        ),
      ),
    );
    const readings = [...this.currentReadings()].reverse();
    this.readingTable.replaceChildren(
      ...readings.map((r) =>
        h(
          "tr",
          { "data-reading-id": r.id },
          h("td", {}, clockTime(r.measured_at)),
          h("td", {}, r.valid === false ? `Failed${r.failure_reason ? `: ${r.failure_reason}` : ""}` : bloodPressure(r)),
          h("td", {}, r.pulse_rate ? mmHg(r.pulse_rate) : "--"),
          h(
            "td",
            {},
            r.category ? labelOf(CATEGORY_LABELS, r.category) : "",
            (r.flags || []).length ? ` (${r.flags.map((f) => labelOf(FLAG_LABELS, f)).join(", ")})` : "",
          ),
          h("td", {}, r.source === "manual" ? `Manual${r.recorded_by ? `, ${r.recorded_by}` : ""}` : "Cuff"),
        ),
      ),
    );
  }

  /**
   * The forms are built once and then only adjusted (a hold appears, a check opens), so
   * what a nurse has typed or picked is never thrown away by a live update.
   */
  renderForms(session) {
    if (session.closed_at) {
      if (!this.closedNote) {
        this.closedNote = h("p", { class: "empty-note" }, "This session is closed.");
        this.forms.replaceChildren(this.closedNote);
      }
      return;
    }
    if (!this.built) {
      this.built = {};
      const forms = [];
      if (this.app.can("record_observations")) {
        forms.push(this.readingForm(), this.sideEffectForm());
      }
      if (this.app.can("run_sessions")) {
        this.built.dose = this.doseForm(session.protocol);
        this.built.waive = this.waiveForm();
        forms.push(this.built.dose.node, this.built.waive.node, this.closeForm());
      }
      if (!forms.length) forms.push(h("p", { class: "empty-note" }, "Your role views sessions only."));
      this.forms.replaceChildren(...forms);
    }
    if (this.built.dose) this.built.dose.update(this.holdStanding());
    if (this.built.waive) {
      this.built.waive.update(
        this.app.state.sessionChecks(this.sessionId).filter((c) => OPEN_CHECK_STATES.has(c.state)),
      );
    }
  }

  /** Whether the dosing gate stands on an alert: an unresolved dosing hold or severe
   * hypertension stops every dose until resolved (acknowledging does not lift it), so
   * the clinician's override reason is asked for (vitalsd.gates.gate_dose). */
  holdStanding() {
    return this.app.state
      .alertsOfSession(this.sessionId)
      .some((a) => DOSE_BLOCKING_KINDS.includes(a.kind) && a.state !== "resolved");
  }

  /** Minutes ago -> an ISO time on the server's clock (never in the future). */
  timeAgo(minutes) {
    const ago = Math.max(0, Number(minutes) || 0);
    return new Date(this.app.clock.now() - ago * 60_000 - 1000).toISOString();
  }

  /** A form card; its last outcome survives a re-render (new checks, a new hold). */
  form(name, title, fields, submitLabel, submit) {
    const status = formStatus();
    const shown = this.statuses.get(name);
    const setStatus = (text, kind) => {
      this.statuses.set(name, { text, kind });
      status.textContent = text;
      status.dataset.kind = kind;
    };
    if (shown) setStatus(shown.text, shown.kind);
    const button = h("button", { type: "submit", class: "button button-primary" }, submitLabel);
    const node = h(
      "form",
      { class: "card form", "data-form": name },
      h("h2", {}, title),
      fields,
      h("div", { class: "form-actions" }, button, status),
    );
    node.addEventListener("submit", async (event) => {
      event.preventDefault();
      const values = Object.fromEntries(new FormData(node).entries());
      button.disabled = true;
      setStatus("Saving…", "pending");
      try {
        await submit(values);
        setStatus("Saved", "ok");
        node.reset();
        if (node.contains(document.activeElement)) document.activeElement.blur();
        this.scheduleReload();
      } catch (error) {
        setStatus(error.message, "error");
      } finally {
        button.disabled = false;
      }
    });
    return node;
  }

  readingForm() {
    return this.form(
      "reading",
      "Manual reading",
      h(
        "div",
        { class: "field-row" },
        field("Systolic", numberInput("systolic", { min: 40, max: 300, required: true }), "mmHg"),
        field("Diastolic", numberInput("diastolic", { min: 20, max: 200, required: true }), "mmHg"),
        field("Pulse", numberInput("pulse_rate", { min: 20, max: 250 }), "/min"),
        field("Taken", numberInput("minutes_ago", { min: 0, max: 600, value: 0 }), "min ago"),
      ),
      "Save reading",
      (v) =>
        this.app.api.recordReading(this.sessionId, {
          systolic: Number(v.systolic),
          diastolic: Number(v.diastolic),
          ...(v.pulse_rate ? { pulse_rate: Number(v.pulse_rate) } : {}),
          measured_at: this.timeAgo(v.minutes_ago),
        }),
    );
  }

  sideEffectForm() {
    return this.form(
      "side-effect",
      "Side effect",
      [
        h(
          "div",
          { class: "field-row" },
          field("Effect", select("effect", Object.entries(SIDE_EFFECT_LABELS), "nausea")),
          field(
            "Severity",
            select(
              "severity",
              SEVERITY_LABELS.slice(1).map((label, i) => [String(i + 1), sentence(label)]),
              "1",
            ),
          ),
          field("Observed", numberInput("minutes_ago", { min: 0, max: 600, value: 0 }), "min ago"),
        ),
        field("Note", h("input", { type: "text", name: "note", maxlength: 2000 })),
      ],
      "Save side effect",
      (v) =>
        this.app.api.recordSideEffect(this.sessionId, {
          effect: v.effect,
          severity: Number(v.severity),
          observed_at: this.timeAgo(v.minutes_ago),
          ...(v.note ? { note: v.note } : {}),
        }),
    );
  }

  doseForm(protocol) {
    const title = h("span", {}, "Dose");
    const reason = h("textarea", { name: "override_reason", rows: 2 });
    const override = field(
      "Override reason",
      reason,
      "A dosing hold stands: a clinician's reason overrides it",
    );
    const node = this.form(
      "dose",
      title,
      [
        h(
          "div",
          { class: "field-row" },
          field("Drug", select("drug", DRUGS.map((d) => [d, d]), "ketamine")),
          field("Amount", numberInput("amount_mg", { min: 0.1, max: 1000, step: 0.1, required: true }), "mg"),
          field("Route", select("route", ROUTES.map((r) => [r, r]), "IM")),
        ),
        h(
          "label",
          { class: "check-field" },
          h("input", { type: "checkbox", name: "increase", value: "yes" }),
          " Dose increase",
        ),
        override,
      ],
      "Record dose",
      async (v) => {
        const dose = await this.app.api.recordDose(this.sessionId, {
          drug: v.drug,
          amount_mg: Number(v.amount_mg),
          route: v.route,
          ...(v.increase ? { increase: true } : {}),
          ...(v.override_reason ? { override_reason: v.override_reason } : {}),
        });
        // This tablet starts the next dose under this protocol from these values.
        const last = { drug: v.drug, route: v.route, amount_mg: Number(v.amount_mg) };
        rememberDose(protocol, last);
        setFormDefaults(node, last);
        return dose;
      },
    );
    this.startDoseForm(node, protocol);
    const button = node.querySelector("button[type=submit]");
    const update = (hold) => {
      setText(title, hold ? "Dose (dosing hold stands)" : "Dose");
      setText(button, hold ? "Override hold and record dose" : "Record dose");
      override.hidden = !hold;
      reason.required = hold;
    };
    return { node, update };
  }

  /** The dose form's first values: the last dose entered on this tablet under the
   * protocol, else the protocol's default (GET /api/protocols/{name}: default_dose). */
  async startDoseForm(node, protocol) {
    const remembered = rememberedDose(protocol);
    if (remembered) {
      setFormDefaults(node, remembered);
      node.dataset.defaults = "ready";
      return;
    }
    let touched = false;
    node.addEventListener("input", () => (touched = true), { once: true });
    try {
      const numbers = await this.app.api.get(`/api/protocols/${encodeURIComponent(protocol)}`);
      if (numbers.default_dose && !touched) setFormDefaults(node, numbers.default_dose);
    } catch (error) {
      console.warn(`vitalsd: protocol ${protocol} not loaded:`, error.message);
    }
    node.dataset.defaults = "ready";
  }

  waiveForm() {
    const picker = select("check_id", []);
    const empty = h("p", { class: "empty-note" }, "No open check to waive.");
    const reason = h("input", { type: "text", name: "reason", required: true, maxlength: 2000 });
    const node = this.form(
      "waive",
      "Waive a check",
      [empty, field("Check", picker), field("Reason", reason)],
      "Waive check",
      (v) => this.app.api.waiveCheck(this.sessionId, Number(v.check_id), v.reason),
    );
    const button = node.querySelector("button[type=submit]");
    let shown = null;
    const update = (open) => {
      const key = JSON.stringify(open.map((c) => [c.id, c.state]));
      if (key === shown) return;
      shown = key;
      const chosen = picker.value;
      picker.replaceChildren(
        ...open.map((c) =>
          h(
            "option",
            { value: String(c.id), selected: String(c.id) === chosen },
            `${c.label || labelOf(CHECK_KIND_LABELS, c.kind)} (${c.state})`,
          ),
        ),
      );
      empty.hidden = open.length > 0;
      for (const part of [picker.closest(".field"), reason.closest(".field"), button]) {
        part.hidden = open.length === 0;
      }
    };
    return { node, update };
  }

  closeForm() {
    return this.form(
      "close",
      "Close session",
      field(
        "Reason",
        h("input", { type: "text", name: "reason", maxlength: 2000 }),
        "A clinician's reason is needed without a close-of-session reading in the last 15 min, or while an alert or an unstable reading stands",
      ),
      "Close session",
      async (v) => {
        // Closing ends the monitoring of this patient: ask before doing it (issue #14).
        const answer = await confirmDialog({
          title: "Close this session?",
          text: "Monitoring of this patient ends and the chair is free for the next one.",
          confirmLabel: "Close session",
          cancelLabel: "Keep it open",
          danger: true,
        });
        if (!answer) throw new Error("Not closed: the session stays open.");
        return this.app.api.closeSession(this.sessionId, v.reason || null);
      },
    );
  }

  update() {
    this.render();
  }

  tick() {
    this.drawChart(false);
  }
}
