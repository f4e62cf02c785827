// The `/ws` event stream with reconnect-and-resume (DESIGN.md "Interfaces": WebSocket).
//
// The first message of every connection is the `snapshot`. When the stream drops the page
// says "reconnecting", waits a little longer each time, and connects again with
// `?since=<last seq applied>`, so the server replays exactly what this tablet missed.

const RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000];
// A quiet stream may be a dead one (a Wi-Fi drop without a TCP reset): while nothing
// arrives, ask /healthz this often whether the server is still reachable.
const LIVENESS_PROBE_MS = 15_000;
// RFC 6455 7.4.1: 1008 Policy Violation, sent by the server when the token expired.
const CLOSE_POLICY_VIOLATION = 1008;

export const StreamStatus = Object.freeze({
  CONNECTING: "connecting",
  LIVE: "live",
  RECONNECTING: "reconnecting",
  // Connected, but this server cannot follow the other servers of the group (#16).
  BEHIND: "behind",
  SIGNED_OUT: "signed_out",
  STOPPED: "stopped",
});

/**
 * Close a socket without a console error: one still connecting is closed once open
 * (closing it mid-handshake makes the browser log "closed before the connection is
 * established").
 */
function closeQuietly(socket, code, reason) {
  socket.onmessage = null;
  socket.onclose = null;
  socket.onerror = () => {};
  if (socket.readyState === WebSocket.CONNECTING) {
    socket.onopen = () => socket.close(code, reason);
  } else if (socket.readyState === WebSocket.OPEN) {
    socket.close(code, reason);
  }
}

export class EventStream {
  /**
   * lastSeq(): the seq of the last stored event the page applied (null: none yet).
   * onMessage(message, {resumed}): every message, snapshot first.
   * onStatus(status, detail): connection state changes, for the indicator.
   */
  constructor({ api, lastSeq, onMessage, onStatus }) {
    this.api = api;
    this.lastSeq = lastSeq;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.socket = null;
    this.attempts = 0;
    this.timer = null;
    this.probe = null;
    this.stopped = true;
    this.status = null;
    this.lastMessageAt = 0;
    this.reconnects = 0;
    this.onBrowserOnline = () => this.reconnectNow();
    this.onBrowserOffline = () => this.drop("the tablet is offline");
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", this.onBrowserOnline);
    window.addEventListener("offline", this.onBrowserOffline);
    this.setStatus(StreamStatus.CONNECTING);
    this.connect(this.lastSeq());
    this.probe = setInterval(() => this.checkLiveness(), LIVENESS_PROBE_MS);
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onBrowserOnline);
    window.removeEventListener("offline", this.onBrowserOffline);
    clearTimeout(this.timer);
    clearInterval(this.probe);
    if (this.socket) closeQuietly(this.socket, 1000, "signed out");
    this.socket = null;
    this.setStatus(StreamStatus.STOPPED);
  }

  setStatus(status, detail = "") {
    if (this.status === status && !detail) return;
    this.status = status;
    this.onStatus(status, detail);
  }

  url(since) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = since === null || since === undefined ? "" : `?since=${since}`;
    return `${scheme}//${location.host}/ws${query}`;
  }

  connect(since) {
    const socket = new WebSocket(this.url(since));
    const resumed = since !== null && since !== undefined;
    let opened = false;
    this.socket = socket;
    socket.onopen = () => {
      opened = true;
    };
    socket.onmessage = (message) => {
      if (socket !== this.socket) return;
      this.lastMessageAt = performance.now();
      let parsed;
      try {
        parsed = JSON.parse(message.data);
      } catch {
        console.warn("vitalsd: ignored a stream message that is not JSON");
        return;
      }
      if (parsed.type === "snapshot") {
        this.attempts = 0;
        this.setStatus(StreamStatus.LIVE);
      } else if (parsed.type === "feed_status") {
        const behind = parsed.data && parsed.data.state === "behind";
        this.setStatus(behind ? StreamStatus.BEHIND : StreamStatus.LIVE, behind ? parsed.data.detail || "" : "");
        return;
      }
      this.onMessage(parsed, { resumed });
    };
    socket.onclose = (event) => {
      if (socket !== this.socket || this.stopped) return;
      this.socket = null;
      if (event.code === CLOSE_POLICY_VIOLATION) {
        this.setStatus(StreamStatus.SIGNED_OUT, event.reason || "signed out");
        return;
      }
      this.scheduleReconnect(opened ? event.reason : "");
    };
    // onerror is always followed by onclose, which decides what to do.
    socket.onerror = () => {};
  }

  /** Treat the connection as lost now (the browser went offline, a probe failed). */
  drop(reason) {
    if (this.stopped || !this.socket) return;
    closeQuietly(this.socket, 4000, reason.slice(0, 100));
    this.socket = null;
    this.scheduleReconnect(reason);
  }

  reconnectNow() {
    if (this.stopped || this.socket) return;
    clearTimeout(this.timer);
    this.attempts = 0;
    this.tryReconnect();
  }

  scheduleReconnect(reason) {
    this.setStatus(StreamStatus.RECONNECTING, reason || "");
    const delay = RETRY_DELAYS_MS[Math.min(this.attempts, RETRY_DELAYS_MS.length - 1)];
    this.attempts += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tryReconnect(), delay);
  }

  async tryReconnect() {
    if (this.stopped) return;
    let since = this.lastSeq();
    try {
      // Reachable at all? And is the server's event log still ours (not a fresh database
      // behind our last seq, which would make `since` mean nothing)?
      const health = await this.api.health();
      const head = health ? (health.last_seq ?? null) : null;
      if (since !== null && head !== null && head !== undefined && since > head) since = null;
      if (this.attempts > 2) {
        await this.api.me(); // a 401 here means the sign-in ended: the app shows the login
      }
    } catch (error) {
      if (error && error.status === 401) {
        this.setStatus(StreamStatus.SIGNED_OUT, "signed out");
        return;
      }
      this.scheduleReconnect("the server cannot be reached");
      return;
    }
    if (this.stopped) return;
    this.reconnects += 1;
    this.connect(since);
  }

  async checkLiveness() {
    if (this.stopped || !this.socket || this.status !== StreamStatus.LIVE) return;
    if (performance.now() - this.lastMessageAt < LIVENESS_PROBE_MS) return;
    try {
      await this.api.health();
    } catch {
      this.drop("the server stopped answering");
    }
  }
}
