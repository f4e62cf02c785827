// The alarm history (issue #14): every alert from the server (so it survives a reload),
// filtered by chair, patient, priority and time range, with who acknowledged, snoozed,
// escalated or resolved it and when. Newest first, a page at a time.

import { h, setAttr, setText } from "../dom.js";
import { priorityIcon } from "../icons.js";
import { ALERT_KIND_LABELS, PRIORITY_LABELS, clockTime, initials, labelOf } from "../format.js";
import { figuresRow } from "./alert-figures.js";

const PAGE = 50;
const ACTION_LABELS = {
  raised: "Raised",
  acknowledged: "Acknowledged",
  snoozed: "Snoozed",
  snooze_expired: "Snooze ended",
  escalated: "Escalated",
  resolved: "Resolved",
  priority_raised: "Priority raised",
  verified: "Verified",
  condition_cleared: "Condition cleared",
  condition_returned: "Condition returned",
  worsened: "Worsened",
  renotified: "Sounded again",
  latest_value: "New value",
};
// Transitions that say who did something or what the alarm did; "latest value" updates
// are many and are shown in the figures row instead.
const QUIET_ACTIONS = new Set(["latest_value"]);

function dayTime(iso) {
  const date = new Date(iso);
  return `${date.toLocaleDateString([], { day: "2-digit", month: "short" })} ${clockTime(date)}`;
}

function field(label, control) {
  const id = `history-${label.toLowerCase().replaceAll(" ", "-")}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

function option(value, text) {
  return h("option", { value }, text);
}

export class AlertHistoryView {
  constructor(app) {
    this.app = app;
    this.chair = h("select", { name: "chair_id" });
    this.patient = h("select", { name: "patient_id" });
    this.priority = h(
      "select",
      { name: "priority" },
      option("", "Any priority"),
      ...["high", "medium", "low"].map((p) => option(p, PRIORITY_LABELS[p])),
    );
    this.from = h("input", { type: "datetime-local", name: "from" });
    this.to = h("input", { type: "datetime-local", name: "to" });
    this.status = h("p", { class: "form-status", role: "status" });
    this.list = h("ol", { class: "history-list", "aria-label": "Alarm history, newest first" });
    this.more = h("button", { type: "button", class: "button", hidden: true, "data-action": "older", onclick: () => this.load(true) }, "Older alerts");
    this.form = h(
      "form",
      { class: "history-filters card", "data-form": "alert-history" },
      field("Chair", this.chair),
      field("Patient", this.patient),
      field("Priority", this.priority),
      field("From", this.from),
      field("To", this.to),
      h("div", { class: "history-apply" }, h("button", { type: "submit", class: "button button-primary" }, "Show")),
    );
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.load(false);
    });
    this.root = h(
      "section",
      { class: "view history-view", "data-view": "alert-history" },
      h("div", { class: "history-head" }, h("h1", {}, "Alarm history"), h("a", { href: "#/alerts", class: "button" }, "Open alerts ›")),
      this.form,
      this.status,
      this.list,
      this.more,
    );
    this.nextBefore = null;
    this.optionsKey = null;
    this.shown = []; // the alerts listed, to redraw when the patients arrive
  }

  mount(container) {
    container.replaceChildren(this.root);
    this.fillOptions();
    this.load(false);
  }

  /** Chairs and patients as the tablet knows them (kept when the lists grow). */
  fillOptions() {
    const { state } = this.app;
    const chairs = [...state.chairs.values()].sort((a, b) => a.id - b.id);
    const patients = [...state.patients.values()].sort((a, b) => a.identifier.localeCompare(b.identifier));
    const key = `${chairs.map((c) => c.id)}|${patients.map((p) => p.id)}`;
    if (key === this.optionsKey) return;
    this.optionsKey = key;
    const keepChair = this.chair.value;
    const keepPatient = this.patient.value;
    this.chair.replaceChildren(option("", "Every chair"), ...chairs.map((c) => option(String(c.id), c.name)));
    this.patient.replaceChildren(
      option("", "Every patient"),
      ...patients.map((p) => option(String(p.id), `${p.identifier} · ${initials(p.display_name)}`)),
    );
    this.chair.value = keepChair;
    this.patient.value = keepPatient;
    if (this.shown.length) this.list.replaceChildren(...this.shown.map((alert) => this.item(alert)));
  }

  query(older) {
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (this.chair.value) params.set("chair_id", this.chair.value);
    if (this.patient.value) params.set("patient_id", this.patient.value);
    if (this.priority.value) params.set("priority", this.priority.value);
    // datetime-local is the tablet's wall clock: sent as an instant.
    if (this.from.value) params.set("from", new Date(this.from.value).toISOString());
    if (this.to.value) params.set("to", new Date(this.to.value).toISOString());
    if (older && this.nextBefore) params.set("before_id", String(this.nextBefore));
    return `/api/alerts/history?${params}`;
  }

  async load(older) {
    const url = this.query(older);
    this.loading = url;
    setText(this.status, "Loading…");
    setAttr(this.status, "data-kind", null);
    try {
      const page = await this.app.api.get(url);
      if (this.loading !== url) return;
      if (!older) {
        this.list.replaceChildren();
        this.shown = [];
      }
      this.shown.push(...page.items);
      this.list.append(...page.items.map((alert) => this.item(alert)));
      this.nextBefore = page.next_before_id;
      this.more.hidden = !page.next_before_id;
      const shown = this.list.children.length;
      setText(this.status, shown ? `${shown} alert${shown === 1 ? "" : "s"}` : "No alerts match.");
      setAttr(this.root, "data-loaded", "true");
    } catch (error) {
      setText(this.status, error.message);
      setAttr(this.status, "data-kind", "error");
    }
  }

  item(alert) {
    const { state } = this.app;
    const patient = alert.patient_id ? state.patients.get(alert.patient_id) : null;
    const where = [
      alert.chair_id ? state.chairName(alert.chair_id) : null,
      patient
        ? `${initials(patient.display_name)} ${patient.identifier}`
        : alert.patient_id
          ? `Patient ${alert.patient_id}`
          : null,
    ].filter(Boolean).join(" · ");
    const steps = alert.transitions.filter((t) => !QUIET_ACTIONS.has(t.action));
    return h(
      "li",
      { class: "history-item", "data-alert-id": alert.id, "data-priority": alert.priority, "data-state": alert.state },
      h(
        "div",
        { class: "alert-badge" },
        priorityIcon(alert.priority),
        h("span", { class: "alert-priority" }, PRIORITY_LABELS[alert.priority]),
      ),
      h(
        "div",
        { class: "alert-body" },
        h(
          "div",
          { class: "alert-title" },
          h("span", { class: "alert-kind" }, labelOf(ALERT_KIND_LABELS, alert.kind)),
          h("span", { class: "alert-where" }, where),
          h("span", { class: "history-state" }, alert.state),
        ),
        h("div", { class: "alert-message" }, alert.message),
        figuresRow(alert),
        h(
          "ol",
          { class: "history-steps" },
          ...steps.map((t) =>
            h(
              "li",
              { "data-action": t.action },
              h("span", { class: "step-time" }, dayTime(t.at)),
              ` ${labelOf(ACTION_LABELS, t.action)}`,
              t.actor && t.actor !== "system" ? ` by ${t.actor}` : "",
              t.note ? ` · ${t.note}` : "",
            ),
          ),
        ),
      ),
    );
  }

  update() {
    this.fillOptions();
  }

  tick() {}
}
