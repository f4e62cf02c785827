// The dashboard: sign-in, then the ward, alerts, a session, or the cuffs, kept live by
// the `/ws` stream. Routes are URL fragments: #/ward, #/alerts, #/devices, #/session/12.

import { Api } from "./api.js";
import { AlarmSound } from "./alarm-sound.js";
import { AlarmControl } from "./alarm-control.js";
import { StreamWatch } from "./stream-watch.js";
import { ServerClock } from "./clock.js";
import { h, setAttr, setText } from "./dom.js";
import { clockTime, parseTime } from "./format.js";
import { ClinicState } from "./state.js";
import { EventStream, StreamStatus } from "./stream.js";
import { registerServiceWorker } from "./push.js";
import { AccountView } from "./views/account.js";
import { AdminView, seesAdmin } from "./views/admin.js";
import { AdmitView } from "./views/admit.js";
import { AlertBanner, AlertsView } from "./views/alerts.js";
import { AlertHistoryView } from "./views/alert-history.js";
import { DevicesView } from "./views/devices.js";
import { LoginView } from "./views/login.js";
import { PatientsView, PatientView } from "./views/patients.js";
import { SessionView } from "./views/session.js";
import { WardView } from "./views/ward.js";

const TICK_MS = 1000;
const TOAST_MS = 5000;
const STATUS_TEXT = {
  [StreamStatus.CONNECTING]: "Connecting…",
  [StreamStatus.LIVE]: "Live",
  [StreamStatus.RECONNECTING]: "Reconnecting…",
  [StreamStatus.BEHIND]: "Updates delayed",
  [StreamStatus.SIGNED_OUT]: "Signed out",
  [StreamStatus.STOPPED]: "Offline",
};
const SESSION_EVENTS = new Set([
  "reading",
  "measurement_failed",
  "session_updated",
  "check_due",
  "check_overdue",
  "alert",
  "alert_updated",
]);

class Dashboard {
  constructor(root) {
    this.api = new Api({ onUnauthorized: () => this.signedOut() });
    this.state = new ClinicState();
    this.clock = new ServerClock();
    this.sound = new AlarmSound();
    this.alarms = new AlarmControl({ sound: this.sound, alerts: () => this.state.openAlerts() });
    this.me = null;
    this.view = null;
    this.stream = null;
    this.ticker = null;
    this.renderQueued = false;
    this.sessionLoads = new Map();
    this.readingsLoaded = new Set();
    this.connectionAt = null;
    this.build(root);
  }

  build(root) {
    this.connection = h("div", { class: "connection", id: "connection", role: "status", "aria-live": "polite", "data-status": "connecting" }, h("span", { class: "connection-dot", "aria-hidden": "true" }), h("span", { class: "connection-text" }, "Connecting…"));
    this.clockText = h("span", { class: "clinic-clock", "aria-label": "Clinic time" });
    this.userText = h("span", { class: "user" });
    this.alertCount = h("span", { class: "nav-count", "data-count": "0" });
    this.nav = h(
      "nav",
      { class: "nav", "aria-label": "Views" },
      h("a", { href: "#/ward", "data-route": "ward" }, "Ward"),
      h("a", { href: "#/alerts", "data-route": "alerts" }, "Alerts", this.alertCount),
      h("a", { href: "#/devices", "data-route": "devices" }, "Cuffs"),
      h("a", { href: "#/patients", "data-route": "patients" }, "Patients"),
    );
    this.adminLink = h("a", { href: "#/admin", "data-route": "admin", hidden: true }, "Admin");
    this.nav.append(this.adminLink);
    this.signOut = h("button", { type: "button", class: "button button-quiet", onclick: () => this.logOut() }, "Sign out");
    this.account = h("a", { href: "#/account", class: "button button-quiet", "data-route": "account" }, "Account");
    this.header = h(
      "header",
      { class: "topbar" },
      h("span", { class: "brand" }, "vitalsd"),
      this.nav,
      h("div", { class: "topbar-right" }, this.clockText, this.connection, this.userText, this.account, this.signOut),
    );
    this.banner = new AlertBanner(this);
    this.banner.root.append(this.alarms.root); // always on screen, every layout
    this.streamWatch = new StreamWatch(this);
    this.main = h("main", { id: "main", tabindex: "-1" });
    this.toast = h("div", { class: "toast", role: "status", "aria-live": "polite", hidden: true });
    root.replaceChildren(this.header, this.banner.root, this.streamWatch.root, this.main, this.toast);
    this.chrome = [this.header, this.banner.root];
  }

  async start() {
    // Alerts that came before the first touch sound as soon as it comes.
    this.sound.onArmed = () => this.alarms.tick();
    this.sound.armOnInteraction(this.alarms.root);
    window.addEventListener("hashchange", () => this.route());
    if (!Api.mayBeSignedIn()) {
      this.showLogin();
      return;
    }
    try {
      this.me = await this.api.me();
    } catch (error) {
      this.showLogin(error.status === 401 ? "" : error.message);
      return;
    }
    await this.signedIn();
  }

  async signedIn() {
    this.me = this.me || (await this.api.me());
    document.body.dataset.role = this.me.role;
    setText(this.userText, `${this.me.username} · ${this.me.role}`);
    this.adminLink.hidden = !seesAdmin(this);
    for (const node of this.chrome) node.hidden = false;
    this.loadPatients();
    this.stream = new EventStream({
      api: this.api,
      lastSeq: () => this.state.lastSeq,
      onMessage: (message, meta) => this.onMessage(message, meta),
      onStatus: (status, detail) => this.onStatus(status, detail),
    });
    this.stream.start();
    this.alarms.start();
    clearInterval(this.ticker);
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.route();
  }

  showLogin(message = "") {
    for (const node of this.chrome) node.hidden = true;
    document.body.dataset.role = "";
    this.setView(new LoginView(this));
    if (message) this.view.status.textContent = message;
  }

  signedOut() {
    Api.forgetSignIn();
    if (!this.me) return;
    this.me = null;
    if (this.stream) this.stream.stop();
    this.stream = null;
    this.alarms.stop();
    clearInterval(this.ticker);
    for (const timer of this.sessionLoads.values()) clearTimeout(timer);
    this.sessionLoads.clear();
    this.state = new ClinicState();
    this.readingsLoaded.clear();
    this.showLogin("Your sign-in ended: please sign in again.");
  }

  async logOut() {
    // Quiet first (no stream, no timers asking with a cookie about to go), then forget.
    if (this.stream) this.stream.stop();
    this.stream = null;
    clearInterval(this.ticker);
    for (const timer of this.sessionLoads.values()) clearTimeout(timer);
    this.sessionLoads.clear();
    try {
      await this.api.logOut();
    } catch {
      // signed out either way
    }
    this.signedOut();
    this.view.status.textContent = "";
  }

  can(permission) {
    return Boolean(this.me && this.me.permissions.includes(permission));
  }

  /** Run an action from a button; say what happened (or why not) in plain words. */
  async act(action, done) {
    try {
      await action();
      this.say(done, "ok");
    } catch (error) {
      this.say(error.message, "error");
    }
  }

  say(text, kind) {
    this.toast.textContent = text;
    this.toast.dataset.kind = kind;
    this.toast.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => {
      this.toast.hidden = true;
    }, TOAST_MS);
  }

  // -- routing -----------------------------------------------------------------------------

  route() {
    if (!this.me) return;
    const hash = location.hash || "#/ward";
    const session = hash.match(/^#\/session\/(\d+)$/);
    // Issue #14: admission (from an empty chair's tile or a patient) and the patients.
    const admit = hash.match(/^#\/admit(?:\/(\d+))?(?:\?patient=(\d+))?$/);
    const patient = hash.match(/^#\/patient\/(\d+)$/);
    let view;
    let name;
    if (admit) {
      view = new AdmitView(this, admit[1] ? Number(admit[1]) : null, admit[2] ? Number(admit[2]) : null);
      name = "patients";
    } else if (patient) {
      view = new PatientView(this, Number(patient[1]));
      name = "patients";
    } else if (hash === "#/patients") {
      view = new PatientsView(this);
      name = "patients";
    } else if (session) {
      view = new SessionView(this, Number(session[1]));
      name = "session";
    } else if (hash === "#/alerts/history") {
      view = new AlertHistoryView(this);
      name = "alerts";
    } else if (hash === "#/alerts") {
      view = new AlertsView(this);
      name = "alerts";
    } else if (hash === "#/devices") {
      view = new DevicesView(this);
      name = "devices";
    } else if (/^#\/admin(\/|$)/.test(hash) && seesAdmin(this)) {
      view = new AdminView(this, hash.split("/")[2]);
      name = "admin";
    } else if (hash === "#/account") {
      view = new AccountView(this);
      name = "account";
    } else {
      view = new WardView(this);
      name = "ward";
    }
    for (const link of this.nav.querySelectorAll("a")) {
      setAttr(link, "aria-current", link.dataset.route === name ? "page" : null);
    }
    this.setView(view);
  }

  setView(view) {
    if (this.view && this.view.unmount) this.view.unmount();
    const focusWasLost = !document.activeElement || document.activeElement === document.body ||
      this.main.contains(document.activeElement);
    this.view = view;
    document.body.dataset.view = view.root.dataset.view;
    view.mount(this.main);
    // A keyboard user who opened a view from inside the old one continues in the new one.
    if (focusWasLost && !(view instanceof LoginView)) this.main.focus({ preventScroll: true });
  }

  // -- the stream ----------------------------------------------------------------------------

  onStatus(status, detail) {
    this.connection.dataset.status = status;
    setText(this.connection.querySelector(".connection-text"), STATUS_TEXT[status] || status);
    setAttr(this.connection, "title", detail || null);
    this.streamWatch.status(status);
    if (status === StreamStatus.SIGNED_OUT) this.signedOut();
  }

  onMessage(message, { resumed }) {
    if (message.type === "snapshot") {
      this.clock.restart();
      this.connectionAt = parseTime(message.at);
      this.clock.observe(message.at);
    } else if (parseTime(message.at) >= this.connectionAt) {
      this.clock.observe(message.at); // live (replayed events are older than the snapshot)
    }
    const effects = this.state.apply(message, { resumed });
    if (message.type === "snapshot" && !resumed) this.readingsLoaded.clear();
    if (effects.patients.size) this.loadPatients();
    for (const id of effects.sessions) this.loadSessionDetails(id);
    if (message.type === "snapshot") {
      for (const session of this.state.sessions.values()) this.loadSessionDetails(session.id);
    }
    for (const alert of effects.renotify) this.alarms.renotified(alert);
    if (effects.newAlerts.length) this.alarms.tick();
    if (this.view instanceof SessionView && SESSION_EVENTS.has(message.type)) {
      const data = message.data || {};
      const id = message.type === "session_updated" ? data.id : data.session_id;
      if (id === this.view.sessionId) this.view.scheduleReload();
    }
    this.queueRender();
  }

  async loadPatients() {
    if (this.patientsLoading) return;
    this.patientsLoading = true;
    try {
      for (const patient of await this.api.patients()) this.state.patients.set(patient.id, patient);
      this.queueRender();
    } catch (error) {
      console.warn("vitalsd: patients not loaded:", error.message);
    } finally {
      this.patientsLoading = false;
    }
  }

  /** Doses and checks are not in the events; readings only once (then the stream). */
  loadSessionDetails(sessionId) {
    clearTimeout(this.sessionLoads.get(sessionId));
    this.sessionLoads.set(
      sessionId,
      setTimeout(async () => {
        this.sessionLoads.delete(sessionId);
        const session = this.state.sessions.get(sessionId);
        if (!session || session.closed_at || !this.me) return;
        try {
          const [doses, checks] = await Promise.all([
            this.api.sessionDoses(sessionId),
            this.api.sessionChecks(sessionId),
          ]);
          this.state.doses.set(sessionId, doses);
          this.state.setSessionChecks(sessionId, checks);
          if (!this.readingsLoaded.has(sessionId)) {
            this.state.setSessionReadings(sessionId, await this.api.sessionReadings(sessionId));
            this.readingsLoaded.add(sessionId);
          }
          this.queueRender();
        } catch (error) {
          if (error.status !== 401) console.warn(`vitalsd: session ${sessionId} details:`, error.message);
        }
      }, 100),
    );
  }

  queueRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  render() {
    if (!this.me) return;
    this.banner.update();
    const open = this.state.openAlerts().filter((a) => a.state === "active");
    setText(this.alertCount, open.length ? String(open.length) : "");
    this.alertCount.dataset.count = String(open.length);
    const top = open[0];
    this.alertCount.dataset.priority = top ? top.priority : "none";
    if (this.view) this.view.update();
  }

  tick() {
    setText(this.clockText, clockTime(this.clock.now()));
    this.render();
  }
}

const dashboard = new Dashboard(document.getElementById("app"));
window.vitalsd = dashboard; // for the browser tests and for debugging at the console
dashboard.start();
registerServiceWorker(); // issue #15: alerts by Web Push when the dashboard is closed
