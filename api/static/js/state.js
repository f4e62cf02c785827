// The clinic as this tablet knows it: the snapshot, then every event applied in order.
//
// Stored events carry `seq`; one is applied only when its seq is above the last applied,
// so a replay after a reconnect can neither double nor lose anything. A resumed
// connection's snapshot describes the state at its own seq: it is merged once the
// replayed events reach that seq (applying it earlier would let older events overwrite
// newer state).

import { PRIORITY_RANK, parseTime } from "./format.js";

const STATE_RANK = { active: 0, snoozed: 1, acknowledged: 2, resolved: 3 };
// Within one priority, the more immediate danger first: a severe reading before a hold.
const KIND_RANK = [
  "severe_hypertension",
  "dosing_hold",
  "hypotension",
  "pulse_out_of_range",
  "rise_over_baseline",
  "check_overdue",
  "consider_deferring",
  "stale",
  "elevated_baseline",
  "remeasure",
];

function kindRank(alert) {
  const rank = KIND_RANK.indexOf(alert.kind);
  return rank < 0 ? KIND_RANK.length : rank;
}

/** The order nurses see: unacknowledged first, then priority, danger, newest. */
export function compareAlerts(a, b) {
  return (
    (STATE_RANK[a.state] ?? 9) - (STATE_RANK[b.state] ?? 9) ||
    (PRIORITY_RANK[b.priority] ?? 0) - (PRIORITY_RANK[a.priority] ?? 0) ||
    kindRank(a) - kindRank(b) ||
    (parseTime(b.raised_at) ?? 0) - (parseTime(a.raised_at) ?? 0) ||
    b.id - a.id
  );
}

export function byTime(field) {
  return (a, b) => (parseTime(a[field]) ?? 0) - (parseTime(b[field]) ?? 0) || a.id - b.id;
}

export class ClinicState {
  constructor() {
    this.patients = new Map();
    this.reset();
  }

  reset() {
    this.lastSeq = null;
    // Bookkeeping that makes "nothing lost, nothing doubled" checkable: stored events
    // applied since the first snapshot, gaps in their seq, and repeats ignored.
    this.stream = { firstSeq: null, applied: 0, gaps: 0, repeats: 0 };
    this.pendingSnapshot = null;
    this.chairs = new Map();
    this.sessions = new Map();
    this.readings = new Map(); // session id -> Map(reading id -> reading), valid or not
    this.alerts = new Map(); // every alert seen, resolved ones too (the list filters)
    this.checks = new Map(); // check id -> check
    this.devices = new Map(); // address -> device
    this.cuffPressure = new Map(); // address -> {pressure, at (server ms)}
    this.doses = new Map(); // session id -> doses, oldest first
    this.sideEffects = new Map(); // session id -> side effects, oldest first
  }

  /**
   * Apply one stream message. Returns what the page must react to:
   * `newAlerts` (first seen, for the sound), `renotify`, and `fetch` (session ids whose
   * doses and checks to load, patient ids not yet known).
   */
  apply(message, { resumed = false } = {}) {
    const effects = { newAlerts: [], renotify: [], sessions: new Set(), patients: new Set() };
    if (message.type === "snapshot") {
      if (!resumed) {
        const patients = this.patients;
        this.reset();
        this.patients = patients;
        this.stream.firstSeq = message.data.seq ?? 0;
        this.mergeSnapshot(message.data, effects);
      } else if (this.lastSeq === null || message.data.seq <= this.lastSeq) {
        this.mergeSnapshot(message.data, effects);
      } else {
        this.pendingSnapshot = message.data;
      }
      return effects;
    }
    if (message.seq !== null && message.seq !== undefined) {
      if (this.lastSeq !== null && message.seq <= this.lastSeq) {
        this.stream.repeats += 1; // delivered twice: applied once
        return effects;
      }
      if (this.lastSeq !== null && message.seq !== this.lastSeq + 1) this.stream.gaps += 1;
      this.stream.applied += 1;
      this.lastSeq = message.seq;
    }
    this.applyEvent(message, effects);
    if (this.pendingSnapshot && this.lastSeq >= this.pendingSnapshot.seq) {
      const snapshot = this.pendingSnapshot;
      this.pendingSnapshot = null;
      this.mergeSnapshot(snapshot, effects);
    }
    return effects;
  }

  mergeSnapshot(data, effects) {
    this.lastSeq = Math.max(this.lastSeq ?? 0, data.seq ?? 0);
    this.chairs = new Map((data.chairs || []).map((c) => [c.id, c]));
    const open = new Set();
    for (const session of data.sessions || []) {
      open.add(session.id);
      this.putSession(session, effects);
    }
    // A session the snapshot no longer lists as open was closed while we were away.
    for (const [id, session] of this.sessions) {
      if (!open.has(id) && !session.closed_at) this.sessions.delete(id);
    }
    for (const reading of data.latest_readings || []) this.putReading(reading);
    const unresolved = new Set();
    for (const alert of data.active_alerts || []) {
      unresolved.add(alert.id);
      if (!this.alerts.has(alert.id)) effects.newAlerts.push(alert);
      this.alerts.set(alert.id, alert);
    }
    for (const [id, alert] of this.alerts) {
      if (alert.state !== "resolved" && !unresolved.has(id)) this.alerts.delete(id);
    }
    for (const check of data.due_checks || []) this.checks.set(check.id, check);
    this.devices = new Map((data.devices || []).map((d) => [d.address, d]));
  }

  applyEvent(message, effects) {
    const data = message.data || {};
    switch (message.type) {
      case "reading":
      case "measurement_failed":
        this.putReading(data);
        if (data.device_address) this.cuffPressure.delete(data.device_address);
        break;
      case "cuff_pressure":
        this.cuffPressure.set(data.device_address, {
          pressure: data.pressure_mmhg,
          at: parseTime(message.at),
          receivedAt: performance.now(),
        });
        break;
      case "alert":
      case "alert_updated":
        if (!this.alerts.has(data.id)) effects.newAlerts.push(data);
        else if (data.renotify) effects.renotify.push(data);
        this.alerts.set(data.id, data);
        break;
      case "check_due":
      case "check_overdue":
        this.checks.set(data.id, data);
        effects.sessions.add(data.session_id);
        break;
      case "session_updated":
        this.putSession(data, effects);
        break;
      case "device_status":
        this.putDevice(data);
        break;
      case "chair_updated": // renamed or retired by an admin (a retired chair leaves the ward)
        if (data.retired_at) this.chairs.delete(data.id);
        else this.chairs.set(data.id, { ...(this.chairs.get(data.id) || {}), ...data });
        break;
      default:
        break; // a type added later: nothing this page shows
    }
  }

  putSession(session, effects) {
    this.sessions.set(session.id, session);
    if (session.next_check) this.checks.set(session.next_check.id, session.next_check);
    const chair = this.chairs.get(session.chair_id);
    if (chair) {
      if (!session.closed_at) chair.session_id = session.id;
      else if (chair.session_id === session.id) chair.session_id = null;
    }
    if (!this.patients.has(session.patient_id)) effects.patients.add(session.patient_id);
    // Doses and the full check list are not in the event: the page reloads them.
    effects.sessions.add(session.id);
  }

  putReading(reading) {
    if (reading.session_id === null || reading.session_id === undefined) return;
    let history = this.readings.get(reading.session_id);
    if (!history) {
      history = new Map();
      this.readings.set(reading.session_id, history);
    }
    history.set(reading.id, reading);
  }

  putDevice(device) {
    this.devices.set(device.address, device);
    // A cuff moved between chairs: keep the chairs' cuff addresses in step.
    for (const chair of this.chairs.values()) {
      if (chair.cuff_address === device.address && chair.id !== device.chair_id) {
        chair.cuff_address = null;
      }
    }
    const chair = this.chairs.get(device.chair_id);
    if (chair) chair.cuff_address = device.address;
  }

  setSessionReadings(sessionId, readings) {
    const history = this.readings.get(sessionId) || new Map();
    for (const reading of readings) history.set(reading.id, reading);
    this.readings.set(sessionId, history);
  }

  setSessionChecks(sessionId, checks) {
    for (const [id, check] of this.checks) {
      if (check.session_id === sessionId) this.checks.delete(id);
    }
    for (const check of checks) this.checks.set(check.id, check);
  }

  // -- questions the views ask ----------------------------------------------------------

  openSessionOfChair(chair) {
    if (chair.session_id) {
      const session = this.sessions.get(chair.session_id);
      if (session && !session.closed_at) return session;
    }
    for (const session of this.sessions.values()) {
      if (session.chair_id === chair.id && !session.closed_at) return session;
    }
    return null;
  }

  /** The session's readings, oldest first (failed measurements included). */
  sessionReadings(sessionId) {
    const history = this.readings.get(sessionId);
    return history ? [...history.values()].sort(byTime("measured_at")) : [];
  }

  latestReading(sessionId) {
    const valid = this.sessionReadings(sessionId).filter((r) => r.valid !== false);
    return valid.length ? valid[valid.length - 1] : null;
  }

  latestFailure(sessionId) {
    const all = this.sessionReadings(sessionId);
    const last = all[all.length - 1];
    return last && last.valid === false ? last : null;
  }

  sessionChecks(sessionId) {
    return [...this.checks.values()]
      .filter((c) => c.session_id === sessionId)
      .sort(byTime("window_start"));
  }

  /** Unresolved alerts, the most urgent first (priority, then newest). */
  openAlerts() {
    return [...this.alerts.values()].filter((a) => a.state !== "resolved").sort(compareAlerts);
  }

  alertsOfSession(sessionId) {
    return this.openAlerts().filter((a) => a.session_id === sessionId);
  }

  deviceOfChair(chair) {
    if (chair.cuff_address && this.devices.has(chair.cuff_address)) {
      return this.devices.get(chair.cuff_address);
    }
    for (const device of this.devices.values()) if (device.chair_id === chair.id) return device;
    return null;
  }

  chairName(chairId) {
    const chair = this.chairs.get(chairId);
    return chair ? chair.name : chairId ? `Chair ${chairId}` : "";
  }
}
