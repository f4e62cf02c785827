// REST calls to the vitalsd API (DESIGN.md "Interfaces"). The dashboard signs in with the
// OAuth2 password form and asks for the HttpOnly cookie, so no token is kept in script.

const SIGNED_IN_UNTIL = "vitalsd.signedInUntil";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
    this.detail = detail;
  }
}

/** The message a nurse can act on, from FastAPI's `detail` (text or a 422 list). */
function detailOf(body, status) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`)
      .join("; ");
  }
  return `request failed (HTTP ${status})`;
}

const CSRF_COOKIE = "vitalsd_csrf";

function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(rest.join("="));
  }
  return "";
}

export class Api {
  constructor({ onUnauthorized } = {}) {
    this.onUnauthorized = onUnauthorized || (() => {});
    // Requests still on the wire: signing out waits for them, so none of them comes back
    // 401 (and shows an error) after the cookie they carried was revoked.
    this.pending = new Set();
    this.signingOut = false;
  }

  request(method, path, body) {
    if (this.signingOut && path !== "/api/auth/logout") {
      return Promise.reject(new ApiError(0, "signing out"));
    }
    const sent = this.send(method, path, body);
    this.pending.add(sent);
    const settled = () => this.pending.delete(sent);
    sent.then(settled, settled);
    return sent;
  }

  async send(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    // Double-submit CSRF token (api/guards.py): the server set it at sign-in in a cookie
    // only this origin's script can read; a forged request from elsewhere cannot send it.
    if (method !== "GET" && method !== "HEAD") {
      const csrf = csrfToken();
      if (csrf) init.headers["X-CSRF-Token"] = csrf;
    }
    if (body instanceof URLSearchParams) {
      init.body = body;
    } else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      throw new ApiError(0, "the server cannot be reached");
    }
    const text = await response.text();
    let parsed = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = { detail: text };
      }
    }
    if (!response.ok) {
      if (response.status === 401 && path !== "/api/auth/token") this.onUnauthorized();
      throw new ApiError(response.status, detailOf(parsed, response.status));
    }
    return parsed;
  }

  get(path) {
    return this.request("GET", path);
  }

  post(path, body = {}) {
    return this.request("POST", path, body);
  }

  /** Items of a list answer, whether a bare array or {"items": [...]} (DESIGN.md). */
  static items(answer) {
    if (Array.isArray(answer)) return answer;
    return (answer && answer.items) || [];
  }

  async logIn(username, password) {
    const form = new URLSearchParams({ username, password, grant_type: "password" });
    const token = await this.request("POST", "/api/auth/token?cookie=true", form);
    // The cookie is HttpOnly (script cannot see it); remember only until when it holds,
    // so a signed-out tablet shows the login without first provoking a 401.
    localStorage.setItem(SIGNED_IN_UNTIL, token.expires_at);
    return token;
  }

  async logOut() {
    localStorage.removeItem(SIGNED_IN_UNTIL);
    this.signingOut = true;
    try {
      await Promise.allSettled([...this.pending]);
      return await this.request("POST", "/api/auth/logout");
    } finally {
      this.signingOut = false;
    }
  }

  /** Whether this browser signed in and the sign-in has not yet expired. */
  static mayBeSignedIn() {
    const until = Date.parse(localStorage.getItem(SIGNED_IN_UNTIL) || "");
    return !Number.isNaN(until) && until > Date.now();
  }

  static forgetSignIn() {
    localStorage.removeItem(SIGNED_IN_UNTIL);
  }

  me() {
    return this.get("/api/auth/me");
  }

  /** Change the signed-in user's password; every session of theirs ends (sign in again). */
  async changePassword(currentPassword, newPassword) {
    await this.post("/api/auth/password", {
      current_password: currentPassword,
      new_password: newPassword,
    });
    localStorage.removeItem(SIGNED_IN_UNTIL);
  }

  async users() {
    return Api.items(await this.get("/api/users"));
  }

  resetPassword(username, newPassword) {
    return this.post(`/api/users/${encodeURIComponent(username)}/password`, {
      new_password: newPassword,
    });
  }

  unlockUser(username) {
    return this.post(`/api/users/${encodeURIComponent(username)}/unlock`);
  }

  health() {
    return this.get("/healthz");
  }

  async patients() {
    return Api.items(await this.get("/api/patients"));
  }

  async chairs() {
    return Api.items(await this.get("/api/chairs"));
  }

  async devices() {
    return Api.items(await this.get("/api/devices"));
  }

  session(id) {
    return this.get(`/api/sessions/${id}`);
  }

  async sessionReadings(id) {
    return Api.items(await this.get(`/api/sessions/${id}/readings`));
  }

  async sessionChecks(id) {
    return Api.items(await this.get(`/api/sessions/${id}/checks`));
  }

  async sessionDoses(id) {
    return Api.items(await this.get(`/api/sessions/${id}/doses`));
  }

  async sessionSideEffects(id) {
    return Api.items(await this.get(`/api/sessions/${id}/side-effects`));
  }

  async sessionAlerts(id) {
    return Api.items(await this.get(`/api/alerts?session_id=${id}`));
  }

  recordReading(id, body) {
    return this.post(`/api/sessions/${id}/readings`, body);
  }

  recordSideEffect(id, body) {
    return this.post(`/api/sessions/${id}/side-effects`, body);
  }

  recordDose(id, body) {
    return this.post(`/api/sessions/${id}/doses`, body);
  }

  waiveCheck(id, checkId, reason) {
    return this.post(`/api/sessions/${id}/checks/${checkId}/waive`, { reason });
  }

  closeSession(id, reason) {
    return this.post(`/api/sessions/${id}/close`, reason ? { reason } : {});
  }

  acknowledge(alertId) {
    return this.post(`/api/alerts/${alertId}/acknowledge`);
  }

  snooze(alertId, minutes) {
    return this.post(`/api/alerts/${alertId}/snooze`, { minutes });
  }

  assignCuff(address, chairId) {
    return this.post(`/api/devices/${encodeURIComponent(address)}/assign`, { chair_id: chairId });
  }

  unassignCuff(chairId) {
    return this.request("DELETE", `/api/chairs/${chairId}/cuff`);
  }
}
