// Alerts: the always-visible banner and the full list, most urgent first.
// Colour (red / yellow / cyan, IEC 60601-1-8) always comes with an icon and words.

import { h, setAttr, setText } from "../dom.js";
import { priorityIcon } from "../icons.js";
import { figuresRow } from "./alert-figures.js";
import { receiptLine } from "./receipts.js";
import {
  ALERT_KIND_LABELS,
  PRIORITY_LABELS,
  PRIORITY_MARKS,
  age,
  clockTime,
  initials,
  labelOf,
  parseTime,
} from "../format.js";

// A snooze is always time-limited (DESIGN.md "Alerts"); the clinic's maximum applies.
export const SNOOZE_MINUTES = 5;

export function mayAcknowledge(app, alert) {
  if (!app.can("acknowledge_alerts")) return false;
  if (alert.state !== "active" && alert.state !== "snoozed") return false;
  // A dosing hold is the clinician's to acknowledge (vitalsd.clinic.acknowledge_alert).
  return alert.kind !== "dosing_hold" || app.me.role === "clinician";
}

export function maySnooze(app, alert) {
  return app.can("acknowledge_alerts") && alert.state === "active";
}

function whereOf(app, alert) {
  const parts = [];
  if (alert.chair_id) parts.push(app.state.chairName(alert.chair_id));
  const session = alert.session_id ? app.state.sessions.get(alert.session_id) : null;
  const patient = session ? app.state.patients.get(session.patient_id) : null;
  if (patient) parts.push(`${initials(patient.display_name)} ${patient.identifier}`);
  // A technical alarm of the ward itself (nobody_watching, channel_failing).
  if (!alert.chair_id && !alert.session_id) parts.push("Ward");
  return parts.join(" · ");
}

function statusOf(alert, now) {
  if (alert.state === "acknowledged") {
    return `Acknowledged by ${alert.acknowledged_by} at ${clockTime(alert.acknowledged_at)}`;
  }
  if (alert.state === "snoozed" && alert.snoozed_until) {
    const left = Math.max(0, parseTime(alert.snoozed_until) - now);
    return `Snoozed until ${clockTime(alert.snoozed_until)} (${Math.ceil(left / 60_000)} min)`;
  }
  if (alert.state === "resolved") {
    return `Resolved${alert.resolved_by ? ` by ${alert.resolved_by}` : ""} at ${clockTime(alert.resolved_at)}`;
  }
  return alert.escalated_at ? `Escalated to ${alert.addressed_to} at ${clockTime(alert.escalated_at)}` : "Not acknowledged";
}

/** The latest value of the alert's condition, beside the one that raised it (DESIGN.md
 * "Alarm behaviour": an alert always shows both). Nothing when they are the same. */
function latestOf(alert) {
  if (!alert.latest_message || alert.latest_message === alert.message) return null;
  return h("div", { class: "alert-latest" }, `Latest: ${alert.latest_message}`);
}

/** A latched high alert whose condition cleared stays on screen until acknowledged. */
function latchedOf(alert) {
  if (!alert.condition_cleared_at || alert.state === "resolved") return null;
  return h(
    "div",
    { class: "alert-latched", "data-latched": "true" },
    `Condition cleared at ${clockTime(alert.condition_cleared_at)} - acknowledge`,
  );
}

/** Acknowledge and snooze buttons for one alert, as the user's role allows. */
export function alertActions(app, alert) {
  const actions = h("div", { class: "alert-actions" });
  if (mayAcknowledge(app, alert)) {
    actions.append(
      h(
        "button",
        {
          type: "button",
          class: "button button-primary",
          "data-action": "acknowledge",
          "data-alert-id": alert.id,
          onclick: () => app.act(() => app.api.acknowledge(alert.id), "Acknowledged"),
        },
        "Acknowledge",
      ),
    );
  }
  if (maySnooze(app, alert)) {
    actions.append(
      h(
        "button",
        {
          type: "button",
          class: "button",
          "data-action": "snooze",
          "data-alert-id": alert.id,
          onclick: () => app.act(() => app.api.snooze(alert.id, SNOOZE_MINUTES), "Snoozed"),
        },
        `Snooze ${SNOOZE_MINUTES} min`,
      ),
    );
  }
  return actions;
}

export function alertItem(app, alert, now) {
  const kind = labelOf(ALERT_KIND_LABELS, alert.kind);
  return h(
    "li",
    {
      class: "alert-item",
      "data-alert-id": alert.id,
      "data-priority": alert.priority,
      "data-state": alert.state,
      "data-kind": alert.kind,
    },
    h(
      "div",
      { class: "alert-badge" },
      priorityIcon(alert.priority),
      h("span", { class: "alert-priority" }, `${PRIORITY_LABELS[alert.priority]} ${PRIORITY_MARKS[alert.priority]}`),
    ),
    h(
      "div",
      { class: "alert-body" },
      h(
        "div",
        { class: "alert-title" },
        h("span", { class: "alert-kind" }, kind),
        h("span", { class: "alert-where" }, whereOf(app, alert)),
      ),
      h("div", { class: "alert-message" }, alert.message, alert.unverified ? " (unverified reading)" : ""),
      figuresRow(alert),
      latestOf(alert),
      latchedOf(alert),
      h(
        "div",
        { class: "alert-meta" },
        h("span", {}, `Raised ${clockTime(alert.raised_at)} (${age(now - parseTime(alert.raised_at))})`),
        h("span", { class: "alert-status" }, statusOf(alert, now)),
      ),
      receiptLine(app, alert),
    ),
    alertActions(app, alert),
  );
}

/**
 * A list of alerts kept in place: an item is rebuilt only when its alert changed, so a
 * button is never swapped out under a finger (a tap would be lost) and focus stays put.
 */
export class AlertList {
  constructor(app, attrs) {
    this.app = app;
    this.root = h("ol", { class: "alert-list", ...attrs });
    this.items = new Map(); // alert id -> {node, key}
  }

  update(alerts) {
    const now = this.app.clock.now();
    const minute = Math.floor(now / 60_000);
    const wanted = new Set();
    const nodes = [];
    for (const alert of alerts) {
      wanted.add(alert.id);
      const key = JSON.stringify([alert, minute, this.app.me.role]);
      let item = this.items.get(alert.id);
      if (!item || item.key !== key) {
        const node = alertItem(this.app, alert, now);
        if (item) {
          const focused = item.node.contains(document.activeElement)
            ? document.activeElement.dataset.action
            : null;
          item.node.replaceWith(node);
          if (focused) node.querySelector(`[data-action="${focused}"]`)?.focus();
        }
        item = { node, key };
        this.items.set(alert.id, item);
      }
      nodes.push(item.node);
    }
    for (const [id, item] of this.items) {
      if (!wanted.has(id)) {
        item.node.remove();
        this.items.delete(id);
      }
    }
    nodes.forEach((node, i) => {
      if (this.root.children[i] !== node) this.root.insertBefore(node, this.root.children[i] || null);
    });
  }
}

export class AlertBanner {
  constructor(app) {
    this.app = app;
    this.icon = h("span", { class: "banner-icon" });
    this.text = h("span", { class: "banner-text" });
    this.more = h("a", { class: "banner-more", href: "#/alerts" });
    this.actions = h("div", { class: "banner-actions" });
    this.root = h(
      "div",
      { class: "banner", id: "alert-banner", role: "status", "aria-live": "assertive", "data-priority": "none" },
      this.icon,
      this.text,
      this.actions,
      this.more,
    );
    this.shown = null;
  }

  update() {
    const open = this.app.state.openAlerts();
    const active = open.filter((a) => a.state === "active");
    const top = active[0];
    setAttr(this.root, "data-priority", top ? top.priority : "none");
    setAttr(this.root, "data-alert-id", top ? top.id : null);
    setAttr(this.root, "data-active-count", active.length);
    const summary = `${open.length} open alert${open.length === 1 ? "" : "s"}`;
    if (!top) {
      if (this.shown !== "calm") {
        this.icon.replaceChildren();
        this.actions.replaceChildren();
        this.shown = "calm";
      }
      setText(this.text, open.length ? "No unacknowledged alerts" : "All quiet: no alerts");
      setText(this.more, open.length ? `${summary} ›` : "Alert list ›");
      return;
    }
    const key = `${top.id}:${top.state}:${top.priority}`;
    if (this.shown !== key) {
      this.icon.replaceChildren(priorityIcon(top.priority));
      this.actions.replaceChildren(...[...alertActions(this.app, top).childNodes]);
      this.shown = key;
    }
    // Where first, then what: on a narrow tablet the end of the line is what gets cut.
    const where = whereOf(this.app, top);
    setText(
      this.text,
      `${PRIORITY_LABELS[top.priority]} ${PRIORITY_MARKS[top.priority]} ` +
        `${where ? `${where} · ` : ""}${labelOf(ALERT_KIND_LABELS, top.kind)}: ${top.message}`,
    );
    setText(this.more, active.length > 1 ? `+${active.length - 1} more ›` : `${summary} ›`);
  }
}

export class AlertsView {
  constructor(app) {
    this.app = app;
    this.list = new AlertList(app, { "aria-label": "Open alerts, most urgent first", "data-list": "open" });
    this.resolved = new AlertList(app, { "aria-label": "Recently resolved", "data-list": "resolved" });
    this.empty = h("p", { class: "empty-note" }, "No open alerts.");
    this.root = h(
      "section",
      { class: "view alerts-view", "data-view": "alerts" },
      h(
        "div",
        { class: "history-head" },
        h("h1", {}, "Alerts"),
        h("a", { href: "#/alerts/history", class: "button", "data-action": "history" }, "Alarm history ›"),
      ),
      this.empty,
      this.list.root,
      h("h2", {}, "Recently resolved"),
      this.resolved.root,
    );
  }

  mount(container) {
    container.replaceChildren(this.root);
    this.update();
  }

  update() {
    const open = this.app.state.openAlerts();
    const resolved = [...this.app.state.alerts.values()]
      .filter((a) => a.state === "resolved")
      .sort((a, b) => (parseTime(b.resolved_at) ?? 0) - (parseTime(a.resolved_at) ?? 0))
      .slice(0, 20);
    this.empty.hidden = open.length > 0;
    this.list.update(open);
    this.resolved.update(resolved);
  }

  tick() {
    this.update();
  }
}
