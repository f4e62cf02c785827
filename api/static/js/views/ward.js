// The ward: one tile per chair, readable across the room.

import { h, setAttr, setText } from "../dom.js";
import { sparkline } from "../chart.js";
import { batteryIcon, gaugeIcon, heartIcon, priorityIcon } from "../icons.js";
import {
  ALERT_KIND_LABELS,
  CATEGORY_LABELS,
  CONNECTION_LABELS,
  FLAG_LABELS,
  PHASE_LABELS,
  PRIORITY_LABELS,
  age,
  clockTime,
  bloodPressure,
  CHECK_KIND_LABELS,
  countdown,
  duration,
  initials,
  labelOf,
  mmHg,
  parseTime,
} from "../format.js";
import { figuresShort } from "./alert-figures.js";
import { WardLayout, SORTS, byAcuity } from "./ward-layout.js";

// DESIGN.md "Clinical protocol": a chair with no reading for a configurable time is
// stale; the clinic's default (vitalsd.clinic.DEFAULT_STALE_AFTER) is 30 minutes. The
// server's `stale` alert marks it too, whatever the clinic configured.
export const STALE_AFTER_MS = 30 * 60_000;
// Live cuff pressure arrives about once a second while the cuff inflates.
const LIVE_PRESSURE_MS = 4000;
const SPARK_W = 340;
const SPARK_H = 44;

function slot(cls, tag = "div") {
  return h(tag, { class: cls });
}

class Tile {
  constructor(chair) {
    this.chairId = chair.id;
    this.sparkKey = null;
    this.name = slot("chair-name", "span");
    this.patient = slot("patient", "span");
    this.phase = slot("tile-phase");
    this.alertIcon = h("span", { class: "tile-alert-icon" });
    this.alertText = h("span", { class: "tile-alert-text" });
    this.alert = h("div", { class: "tile-alert" }, this.alertIcon, this.alertText);
    // Every other open alert of the session, one line each (issue #14: not "(+1)").
    this.alertMore = h("ul", { class: "tile-alert-more" });
    this.bp = slot("bp-value", "span");
    this.pulse = slot("pulse-value", "span");
    this.vitals = h(
      "div",
      { class: "tile-vitals" },
      h("span", { class: "bp" }, this.bp, h("span", { class: "unit" }, "mmHg")),
      h(
        "span",
        { class: "pulse" },
        heartIcon(),
        h("span", { class: "visually-hidden" }, "pulse"),
        this.pulse,
        h("span", { class: "visually-hidden" }, "per minute"),
      ),
    );
    this.category = slot("category", "span");
    this.age = slot("age", "span");
    this.note = slot("reading-note", "span");
    this.meta = h("div", { class: "tile-meta" }, this.category, this.age, this.note);
    this.spark = h("div", { class: "tile-spark" });
    this.check = slot("tile-check");
    this.battery = h("span", { class: "cuff-battery" });
    this.connection = slot("cuff-connection", "span");
    this.live = h("span", { class: "live-pressure" });
    this.cuff = h("div", { class: "tile-cuff" }, this.battery, this.connection, this.live);
    this.empty = h("div", { class: "tile-empty-text" }, "Empty");
    this.root = h(
      "a",
      { class: "tile", "data-chair-id": chair.id },
      h("div", { class: "tile-head" }, this.name, this.patient),
      this.phase,
      h("div", { class: "tile-alerts" }, this.alert, this.alertMore),
      this.vitals,
      this.meta,
      this.spark,
      this.check,
      this.cuff,
      this.empty,
    );
  }

  update(app, chair, now) {
    const { state } = app;
    const session = state.openSessionOfChair(chair);
    setText(this.name, chair.name);
    setAttr(this.root, "data-occupied", session ? "true" : "false");
    // An empty chair opens the admission to whoever may start a session (#14).
    const admit = !session && app.can("run_sessions");
    setAttr(this.root, "href", session ? `#/session/${session.id}` : admit ? `#/admit/${chair.id}` : "#/ward");
    setAttr(this.root, "aria-disabled", session || admit ? null : "true");
    setAttr(this.root, "tabindex", session || admit ? null : "-1");
    setAttr(this.root, "data-admit", admit ? "true" : null);
    setText(this.empty, admit ? "Empty · Admit" : "Empty");
    this.updateCuff(app, chair, now);
    if (!session) {
      setAttr(this.root, "data-alert", "none");
      setAttr(this.root, "data-category", null);
      setAttr(this.root, "aria-label", admit ? `${chair.name}: empty, admit a patient` : `${chair.name}: empty`);
      this.updateMore([], []);
      return;
    }
    setAttr(this.root, "data-session-id", session.id);
    const patient = state.patients.get(session.patient_id);
    setText(
      this.patient,
      patient ? `${initials(patient.display_name)} · ${patient.identifier}` : `Patient ${session.patient_id}`,
    );
    const doses = state.doses.get(session.id) || [];
    const lastDose = doses.length ? doses[doses.length - 1] : null;
    const phase = labelOf(PHASE_LABELS, session.phase);
    setText(
      this.phase,
      lastDose ? `${phase} · ${duration(now - parseTime(lastDose.given_at))} since dose` : phase,
    );

    // The session's most urgent open alert.
    const alerts = state.alertsOfSession(session.id);
    const top = alerts[0];
    const attention = top && top.state === "active" ? top.priority : "none";
    setAttr(this.root, "data-alert", attention);
    setAttr(this.alert, "data-priority", top ? top.priority : null);
    setAttr(this.alert, "data-state", top ? top.state : null);
    if (top) {
      if (this.alertIcon.dataset.priority !== top.priority) {
        this.alertIcon.replaceChildren(priorityIcon(top.priority));
        this.alertIcon.dataset.priority = top.priority;
      }
      setText(this.alertText, tileAlertText(top));
    } else {
      this.alertIcon.replaceChildren();
      delete this.alertIcon.dataset.priority;
      setText(this.alertText, "");
    }
    this.updateMore(alerts.slice(1), alerts);

    // The latest reading, its category and age.
    const reading = state.latestReading(session.id);
    const failure = state.latestFailure(session.id);
    const staleAlert = alerts.some((a) => a.kind === "stale");
    const readingAge = reading ? now - parseTime(reading.measured_at) : null;
    const stale = Boolean(reading) && (staleAlert || readingAge >= STALE_AFTER_MS);
    setAttr(this.root, "data-stale", stale ? "true" : "false");
    setAttr(this.root, "data-category", reading ? reading.category : null);
    setText(this.bp, reading ? bloodPressure(reading) : "--/--");
    setText(this.pulse, reading && reading.pulse_rate ? mmHg(reading.pulse_rate) : "--");
    setAttr(this.category, "data-category", reading ? reading.category : null);
    setText(this.category, reading ? labelOf(CATEGORY_LABELS, reading.category) : "No reading");
    setText(this.age, reading ? `${age(readingAge)}${reading.source === "manual" ? " · manual" : ""}` : "");
    // Never dropped (DESIGN.md "Thresholds": an irregular pulse is clinical information).
    const flags = reading ? (reading.flags || []).map((f) => labelOf(FLAG_LABELS, f)) : [];
    const notLive = app.streamWatch ? app.streamWatch.notLiveSince : null;
    const notes = [notLive, failure ? "last try failed" : null, stale ? "STALE" : null, ...flags];
    setText(this.note, notes.filter(Boolean).join(", "));
    setAttr(
      this.note,
      "data-kind",
      notLive ? "notlive" : failure ? "failure" : stale ? "stale" : flags.length ? "flags" : null,
    );
    setAttr(this.root, "data-live", notLive ? "false" : "true");
    setAttr(
      this.root,
      "aria-label",
      `${chair.name}: ${reading ? `${bloodPressure(reading)} mmHg, ${age(readingAge)}` : "no reading"}` +
        (top ? `, ${PRIORITY_LABELS[top.priority]} alert ${labelOf(ALERT_KIND_LABELS, top.kind)}` : ""),
    );

    // The trend since baseline: redrawn only when the readings change.
    const readings = state.sessionReadings(session.id);
    // Drawn at the size the layout gives it (portrait tablets give it more height).
    const width = this.spark.clientWidth || SPARK_W;
    const height = this.spark.clientHeight || SPARK_H;
    const key = `${readings.length}:${readings.at(-1)?.id}:${session.baseline?.systolic}:${width}x${height}`;
    if (key !== this.sparkKey) {
      this.sparkKey = key;
      this.spark.replaceChildren(
        sparkline(readings, {
          width,
          height,
          baseline: session.baseline,
          from: parseTime(session.started_at),
        }),
      );
    }

    this.updateCheck(state, session, now);
  }

  /** The other alerts, one line each; under a latched alert whose condition cleared, a
   * line saying so (it stays until someone acknowledges it), where no ellipsis cuts it. */
  updateMore(rest, all) {
    const key = JSON.stringify(
      all.map((a) => [a.id, a.state, a.priority, a.message, a.latest_message, a.condition_cleared_at]),
    );
    if (key === this.moreKey) return;
    this.moreKey = key;
    const latchedLine = (a) =>
      a.condition_cleared_at && a.state !== "resolved"
        ? h(
          "li",
          { class: "tile-alert-line tile-alert-latched", "data-alert-id": a.id, "data-latched": "true" },
          `Cleared at ${clockTime(a.condition_cleared_at)} — acknowledge`,
        )
        : null;
    const top = all.length > rest.length ? all[0] : null;
    const lines = [top ? latchedLine(top) : null];
    for (const a of rest) {
      lines.push(
        h("li", { class: "tile-alert-line", "data-alert-id": a.id, "data-priority": a.priority, "data-state": a.state }, tileAlertText(a)),
        latchedLine(a),
      );
    }
    this.alertMore.replaceChildren(...lines.filter(Boolean));
  }

  updateCheck(state, session, now) {
    const overdue = state.sessionChecks(session.id).filter((c) => c.state === "overdue");
    const next = session.next_check;
    let text = "No check scheduled";
    let mode = "none";
    if (overdue.length) {
      const check = overdue[0];
      const late = check.window_end ? ` · ${duration(now - parseTime(check.window_end))} late` : "";
      text = `OVERDUE: ${labelOf(CHECK_KIND_LABELS, check.kind)}${late}`;
      mode = "overdue";
    } else if (next && next.state === "due") {
      text = next.window_end
        ? `${labelOf(CHECK_KIND_LABELS, next.kind)} due · closes in ${countdown(parseTime(next.window_end) - now)}`
        : `${labelOf(CHECK_KIND_LABELS, next.kind)} due now`;
      mode = "due";
    } else if (next && next.window_start) {
      const opensIn = parseTime(next.window_start) - now;
      // Past its opening on our estimate of the clinic's clock: the server says "due" soon.
      text = `${labelOf(CHECK_KIND_LABELS, next.kind)} ${opensIn > 0 ? `in ${countdown(opensIn)}` : "due now"}`;
      mode = opensIn > 0 ? "pending" : "due";
    }
    setText(this.check, text);
    setAttr(this.check, "data-check", mode);
  }

  updateCuff(app, chair, now) {
    const device = app.state.deviceOfChair(chair);
    if (!device) {
      this.battery.replaceChildren();
      delete this.battery.dataset.level;
      setText(this.connection, chair.cuff_address ? "cuff not seen yet" : "no cuff assigned");
      setAttr(this.connection, "data-state", "none");
      setText(this.live, "");
      return;
    }
    const level = device.battery_percent === null ? "?" : String(device.battery_percent);
    if (this.battery.dataset.level !== level) {
      this.battery.dataset.level = level;
      this.battery.replaceChildren(
        batteryIcon(device.battery_percent),
        h("span", {}, device.battery_percent === null ? "--%" : `${device.battery_percent}%`),
      );
    }
    setText(this.connection, labelOf(CONNECTION_LABELS, device.connection_state));
    setAttr(this.connection, "data-state", device.connection_state);
    const live = app.state.cuffPressure.get(device.address);
    const measuring = live && performance.now() - live.receivedAt < LIVE_PRESSURE_MS;
    if (measuring) {
      if (!this.live.firstChild || this.live.firstChild.nodeType === Node.TEXT_NODE) {
        this.live.replaceChildren(
          gaugeIcon(),
          h("span", { class: "visually-hidden" }, "measuring:"),
          h("span", { class: "live-value" }),
        );
      }
      setText(this.live.querySelector(".live-value"), `${mmHg(live.pressure)} mmHg`);
    } else if (this.live.firstChild) {
      this.live.replaceChildren();
    }
    setAttr(this.root, "data-measuring", measuring ? "true" : "false");
  }
}

/** "High: Severe hypertension 196/118 → 200/120 (≥ 180/110) · acknowledged". */
function tileAlertText(alert) {
  const figures = figuresShort(alert);
  const status = alert.state === "active" ? "" : ` · ${alert.state}`;
  return `${PRIORITY_LABELS[alert.priority]}: ` +
    `${labelOf(ALERT_KIND_LABELS, alert.kind)}${figures ? ` ${figures}` : ""}${status}`;
}

export class WardView {
  constructor(app) {
    this.app = app;
    this.tiles = new Map();
    this.layout = new WardLayout(() => this.update());
    this.grid = h("div", { class: "ward", "data-view": "ward" });
    // The ward's own technical alarms (no chair: nobody_watching, channel_failing).
    this.technical = h("ul", { class: "ward-technical", "aria-label": "Technical alarms of the ward", hidden: true });
    this.technicalKey = "";
    this.root = h(
      "section",
      { class: "view ward-view", "aria-label": "Ward" },
      h("h1", { class: "visually-hidden" }, "Ward"),
      this.technical,
      this.layout.root,
      this.grid,
    );
  }

  updateTechnical() {
    const alerts = this.app.state.openAlerts().filter((a) => a.session_id === null && a.chair_id === null);
    const key = JSON.stringify(alerts.map((a) => [a.id, a.state, a.priority, a.message]));
    if (key === this.technicalKey) return;
    this.technicalKey = key;
    this.technical.hidden = alerts.length === 0;
    this.technical.replaceChildren(
      ...alerts.map((a) =>
        h(
          "li",
          { class: "ward-technical-item", "data-alert-id": a.id, "data-priority": a.priority, "data-state": a.state, "data-kind": a.kind },
          priorityIcon(a.priority),
          h("span", {}, `${PRIORITY_LABELS[a.priority]} · ${labelOf(ALERT_KIND_LABELS, a.kind)}: ${a.message}`),
        ),
      ),
    );
  }

  mount(container) {
    container.replaceChildren(this.root);
    this.update();
  }

  update() {
    const { state } = this.app;
    const now = this.app.clock.now();
    this.updateTechnical();
    const byChair = [...state.chairs.values()].sort((a, b) => a.id - b.id);
    const chairs = this.layout.sort === SORTS.ACUITY ? byAcuity(byChair, state, now) : byChair;
    setAttr(this.grid, "data-compact", this.layout.compact ? "true" : "false");
    setAttr(this.grid, "data-sort", this.layout.sort);
    const seen = new Set();
    for (const chair of chairs) {
      seen.add(chair.id);
      let tile = this.tiles.get(chair.id);
      if (!tile) {
        tile = new Tile(chair);
        this.tiles.set(chair.id, tile);
      }
      tile.update(this.app, chair, now);
    }
    for (const [id, tile] of this.tiles) {
      if (!seen.has(id)) {
        tile.root.remove();
        this.tiles.delete(id);
      }
    }
    const order = chairs.map((c) => this.tiles.get(c.id).root);
    if (order.some((node, i) => this.grid.children[i] !== node)) this.grid.replaceChildren(...order);
    if (!chairs.length && !this.grid.querySelector(".ward-empty")) {
      this.grid.replaceChildren(h("p", { class: "ward-empty" }, "No chairs yet: an administrator adds them."));
    }
  }

  tick() {
    this.update();
  }
}
