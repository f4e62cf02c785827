// Admission (issue #14): find or register the patient, pick the protocol (the clinic's
// default preselected) and the cuff, start. Opened from an empty chair's tile
// (#/admit/<chair id>) or from the patient pages (#/admit?patient=<id>).

import { h, setText } from "../dom.js";
import { ApiError } from "../api.js";
import { dateTime } from "./records-format.js";

// Searching as the nurse types: one request per pause, not per key.
const SEARCH_DELAY_MS = 250;
const SEARCH_LIMIT = 20;

let fieldCounter = 0;

function field(label, control, hint) {
  fieldCounter += 1;
  control.id = control.id || `admit-f${fieldCounter}`;
  return h(
    "div",
    { class: "field" },
    h("label", { for: control.id }, label),
    control,
    hint ? h("span", { class: "hint" }, hint) : null,
  );
}

function patientLine(patient) {
  return `${patient.identifier} · ${patient.display_name} · born ${patient.date_of_birth}`;
}

export class AdmitView {
  constructor(app, chairId = null, patientId = null) {
    this.app = app;
    this.chairId = chairId;
    this.patient = null;
    this.chairs = [];
    this.devices = [];
    this.protocols = [];
    this.searchTimer = null;
    this.searchSeq = 0;
    this.build(patientId);
  }

  build(patientId) {
    this.initialPatient = patientId;
    this.search = h("input", {
      type: "search",
      name: "q",
      autocomplete: "off",
      maxlength: 128,
      placeholder: "Identifier or name",
      oninput: () => this.searchSoon(),
    });
    this.results = h("ul", { class: "patient-results", "aria-label": "Patients found" });
    this.chosen = h("p", { class: "chosen-patient", "data-chosen": "false" }, "No patient chosen yet.");
    this.course = h("p", { class: "hint course-note" });
    this.change = h("button", { type: "button", class: "button", hidden: true, onclick: () => this.choose(null) }, "Change patient");

    this.identifier = h("input", { type: "text", name: "identifier", required: true, maxlength: 64, autocomplete: "off" });
    this.displayName = h("input", { type: "text", name: "display_name", required: true, maxlength: 200, autocomplete: "off" });
    this.birth = h("input", { type: "date", name: "date_of_birth", required: true });
    this.registerStatus = h("p", { class: "form-status", role: "status", "aria-live": "polite" });
    this.register = h(
      "form",
      { class: "register-form", "data-form": "register", onsubmit: (e) => this.registerPatient(e) },
      h("h3", {}, "New patient"),
      h(
        "div",
        { class: "field-row" },
        field("Identifier", this.identifier, "The clinic's record number"),
        field("Name", this.displayName),
        field("Date of birth", this.birth),
      ),
      h("div", { class: "form-actions" }, h("button", { type: "submit", class: "button" }, "Register patient"), this.registerStatus),
    );

    this.chairSelect = h("select", { name: "chair_id", onchange: () => this.chairChanged() });
    this.protocolSelect = h("select", { name: "protocol" });
    this.cuffSelect = h("select", { name: "cuff_address", onchange: () => this.cuffChanged() });
    this.moveNote = h("p", { class: "move-note" });
    this.moveReason = h("input", { type: "text", name: "reason", maxlength: 2000, autocomplete: "off" });
    this.moveConfirm = h(
      "div",
      { class: "move-confirm", role: "alert", hidden: true, "data-confirm": "cuff" },
      h("h3", {}, "Move this cuff?"),
      this.moveNote,
      field("Reason for moving the cuff", this.moveReason, "Kept in the audit trail"),
    );
    this.startStatus = h("p", { class: "form-status", role: "status", "aria-live": "polite" });
    this.startButton = h("button", { type: "submit", class: "button button-primary", disabled: true }, "Start session");
    this.startForm = h(
      "form",
      { class: "card form admit-session", "data-form": "admit", onsubmit: (e) => this.start(e) },
      h("h2", {}, "2 · Session"),
      h("div", { class: "field-row admit-choices" }, field("Chair", this.chairSelect), field("Protocol", this.protocolSelect)),
      field("Cuff", this.cuffSelect, "The chair's own cuff is chosen; another cuff moves to this chair"),
      this.moveConfirm,
      h("div", { class: "form-actions" }, this.startButton, this.startStatus),
    );

    this.root = h(
      "section",
      { class: "view admit-view", "data-view": "admit", "aria-label": "Admit a patient" },
      h(
        "div",
        { class: "session-head" },
        h("a", { class: "back button", href: "#/ward" }, "‹ Ward"),
        h("div", {}, h("h1", {}, "Admit a patient"), h("p", { class: "session-subtitle" }, "Find or register the patient, then start the session on the chair.")),
        h("a", { class: "button", href: "#/patients" }, "Patients"),
      ),
      this.app.can("run_sessions")
        ? h(
            "div",
            { class: "admit-grid" },
            h(
              "div",
              { class: "card form admit-patient" },
              h("h2", {}, "1 · Patient"),
              field("Find a patient", this.search, "Identifier or name, any case"),
              this.results,
              h("div", { class: "chosen-row" }, this.chosen, this.change),
              this.course,
              this.app.can("manage_patients") ? this.register : null,
            ),
            this.startForm,
          )
        : h("p", { class: "empty-note" }, "Only a clinician admits patients and starts sessions."),
    );
  }

  mount(container) {
    container.replaceChildren(this.root);
    if (!this.app.can("run_sessions")) return;
    this.load();
  }

  unmount() {
    clearTimeout(this.searchTimer);
  }

  update() {}

  async load() {
    const { api } = this.app;
    try {
      const [chairs, devices, protocols] = await Promise.all([api.chairs(), api.devices(), api.get("/api/protocols")]);
      this.chairs = chairs;
      this.devices = devices;
      this.protocols = protocols;
    } catch (error) {
      this.startStatus.textContent = `Could not load chairs and protocols: ${error.message}`;
      this.startStatus.dataset.kind = "error";
      return;
    }
    this.protocolSelect.replaceChildren(
      ...this.protocols.map((p) => h("option", { value: p.name, selected: p.default }, p.default ? `${p.title} (clinic default)` : p.title)),
    );
    const free = this.chairs.filter((c) => !c.session_id);
    if (this.chairId === null && free.length) this.chairId = free[0].id;
    this.chairSelect.replaceChildren(
      ...free.map((c) => h("option", { value: String(c.id), selected: c.id === this.chairId }, c.name)),
    );
    if (!free.length) {
      this.startStatus.textContent = "Every chair is in session: close one first.";
      this.startStatus.dataset.kind = "error";
    }
    this.chairChanged();
    if (this.initialPatient) {
      try {
        this.choose(await api.get(`/api/patients/${this.initialPatient}`));
      } catch (error) {
        this.say(error.message);
      }
    } else {
      this.search.focus({ preventScroll: true });
      this.runSearch();
    }
  }

  say(text) {
    this.startStatus.textContent = text;
    this.startStatus.dataset.kind = "error";
  }

  chair() {
    return this.chairs.find((c) => String(c.id) === this.chairSelect.value) || null;
  }

  chairChanged() {
    const chair = this.chair();
    this.chairId = chair ? chair.id : null;
    const own = chair && chair.cuff_address;
    const options = [];
    if (own) options.push(h("option", { value: own, selected: true }, `${own} (this chair's cuff)`));
    else options.push(h("option", { value: "", selected: true }, "No cuff: readings by hand"));
    for (const device of this.devices) {
      if (device.address === own) continue;
      const holder = this.chairs.find((c) => c.cuff_address === device.address);
      const where = holder ? `on ${holder.name}${holder.session_id ? ", in session" : ""}` : "free";
      options.push(h("option", { value: device.address }, `${device.address} (${where})`));
    }
    this.cuffSelect.replaceChildren(...options);
    this.cuffChanged();
  }

  /** The chosen cuff's chair if that chair is in session: moving the cuff needs a reason. */
  cuffHolderInSession() {
    const address = this.cuffSelect.value;
    const chair = this.chair();
    if (!address || (chair && chair.cuff_address === address)) return null;
    return this.chairs.find((c) => c.cuff_address === address && c.session_id) || null;
  }

  cuffChanged(message) {
    const holder = this.cuffHolderInSession();
    const show = Boolean(holder || message);
    this.moveConfirm.hidden = !show;
    this.moveReason.required = show;
    if (show) {
      setText(
        this.moveNote,
        message ||
          `Cuff ${this.cuffSelect.value} measures the patient on ${holder.name}. Moving it here sends its readings to this patient's record instead.`,
      );
    }
    setText(this.startButton, show ? "Move the cuff and start" : "Start session");
    this.refreshStart();
  }

  refreshStart() {
    this.startButton.disabled = !(this.patient && this.chairId);
  }

  searchSoon() {
    clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => this.runSearch(), SEARCH_DELAY_MS);
  }

  async runSearch() {
    const seq = ++this.searchSeq;
    const q = this.search.value.trim();
    let found;
    try {
      found = await this.app.api.get(`/api/patients?q=${encodeURIComponent(q)}&limit=${SEARCH_LIMIT}`);
    } catch (error) {
      if (seq === this.searchSeq) this.results.replaceChildren(h("li", { class: "empty-note" }, error.message));
      return;
    }
    if (seq !== this.searchSeq) return; // a newer search overtook this one
    this.results.replaceChildren(
      ...(found.length
        ? found.map((p) =>
            h(
              "li",
              {},
              h("button", { type: "button", class: "button patient-pick", "data-patient-id": p.id, onclick: () => this.choose(p) }, patientLine(p)),
            ),
          )
        : [h("li", { class: "empty-note" }, q ? `No patient matches "${q}": register them below.` : "No patient registered yet.")]),
    );
  }

  async choose(patient) {
    this.patient = patient;
    this.change.hidden = !patient;
    this.results.hidden = Boolean(patient);
    this.search.closest(".field").hidden = Boolean(patient);
    this.register.hidden = Boolean(patient);
    this.chosen.dataset.chosen = patient ? "true" : "false";
    setText(this.chosen, patient ? patientLine(patient) : "No patient chosen yet.");
    setText(this.course, "");
    this.refreshStart();
    if (!patient) {
      this.search.focus();
      return;
    }
    try {
      const history = await this.app.api.get(`/api/patients/${patient.id}/history`);
      if (this.patient !== patient) return;
      const open = history.sessions.find((s) => !s.closed_at);
      const last = history.sessions[0];
      setText(
        this.course,
        open
          ? `Already in session on ${this.app.state.chairName(open.chair_id)} (session ${open.id}): close it before admitting again.`
          : `Session ${history.sessions.length + 1} of the course` +
              (last ? ` · last session ${dateTime(last.started_at)} (${last.protocol})` : " · first session"),
      );
      this.course.dataset.kind = open ? "error" : "ok";
    } catch (error) {
      setText(this.course, `History not loaded: ${error.message}`);
    }
  }

  async registerPatient(event) {
    event.preventDefault();
    const body = {
      identifier: this.identifier.value.trim(),
      display_name: this.displayName.value.trim(),
      date_of_birth: this.birth.value,
    };
    this.registerStatus.textContent = "Saving…";
    this.registerStatus.dataset.kind = "pending";
    try {
      const patient = await this.app.api.post("/api/patients", body);
      this.app.state.patients.set(patient.id, patient);
      this.registerStatus.textContent = "";
      this.register.reset();
      this.choose(patient);
    } catch (error) {
      this.registerStatus.textContent = error.message;
      this.registerStatus.dataset.kind = "error";
    }
  }

  async start(event) {
    event.preventDefault();
    if (!this.patient || !this.chairId) return;
    const chair = this.chair();
    const cuff = this.cuffSelect.value;
    const moving = !this.moveConfirm.hidden;
    const body = {
      patient_id: this.patient.id,
      chair_id: this.chairId,
      protocol: this.protocolSelect.value || null,
      ...(cuff && cuff !== chair.cuff_address ? { cuff_address: cuff } : {}),
      ...(moving ? { confirm: true, reason: this.moveReason.value.trim() } : {}),
    };
    this.startButton.disabled = true;
    this.startStatus.textContent = "Starting…";
    this.startStatus.dataset.kind = "pending";
    try {
      const session = await this.app.api.post("/api/admissions", body);
      this.app.say(`Session ${session.course_session} of the course started on ${chair.name}`, "ok");
      location.hash = `#/session/${session.id}`;
    } catch (error) {
      this.startStatus.textContent = "";
      if (error instanceof ApiError && error.status === 409 && /confirm/.test(error.message) && !moving) {
        // The server knows of a session this tablet did not: ask, as for a known one.
        this.cuffChanged(error.message);
        this.moveReason.focus();
      } else {
        this.say(error.message);
      }
    } finally {
      this.refreshStart();
    }
  }
}
