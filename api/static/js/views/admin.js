// Admin screens (issue #14): users, chairs, cuffs and the protocol's numbers. Shown to a
// role holding manage_users or manage_equipment (the admin); the server checks every
// call again (vitalsd/auth.py ROLE_PERMISSIONS), so hiding is a convenience, not a guard.
// Routes: #/admin/users, #/admin/chairs, #/admin/cuffs, #/admin/protocol.

import { h } from "../dom.js";
import { confirmDialog } from "../confirm-dialog.js";
import { moveCuff } from "../cuff-move.js";
import { clockTime } from "../format.js";

const MIN_PASSWORD = 12; // vitalsd.passwords.MIN_PASSWORD_LENGTH
const ROLES = [
  ["nurse", "Nurse"],
  ["clinician", "Clinician"],
  ["admin", "Admin"],
];
export const ADMIN_SECTIONS = [
  ["users", "Users", "manage_users"],
  ["chairs", "Chairs", "manage_equipment"],
  ["cuffs", "Cuffs", "manage_equipment"],
  ["protocol", "Protocol", null],
];

/** Whether the signed-in user sees the admin screens at all. */
export function seesAdmin(app) {
  return app.can("manage_users") || app.can("manage_equipment");
}

let fieldCounter = 0;

function field(label, control) {
  fieldCounter += 1;
  control.id = control.id || `admin-f${fieldCounter}`;
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control);
}

function sentence(key) {
  const text = key.replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A protocol number with its unit, from the protocol file's own key names. */
function withUnit(key, value) {
  if (Array.isArray(value)) return value.join(", ") || "--";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (value === null || value === undefined) return "--";
  if (key.endsWith("_minutes")) return `${value} min`;
  if (/systolic|diastolic/.test(key)) return `${value} mmHg`;
  if (/^pulse_/.test(key)) return `${value} /min`;
  if (key.endsWith("_age")) return `${value} years`;
  return String(value);
}

function label(key) {
  return sentence(key.replace(/_minutes$/, "")).replace(/\bbp\b/, "BP").replace(/^Post dose/, "Post-dose");
}

function numbersTable(title, numbers, name) {
  if (!numbers) return null;
  return h(
    "div",
    { class: "card protocol-table", "data-table": name },
    h("h2", {}, title),
    h(
      "table",
      { class: "data-table" },
      h(
        "tbody",
        {},
        Object.entries(numbers).map(([key, value]) =>
          h("tr", { "data-key": key }, h("th", { scope: "row" }, label(key)), h("td", {}, withUnit(key, value))),
        ),
      ),
    ),
  );
}

export class AdminView {
  constructor(app, section) {
    this.app = app;
    const allowed = ADMIN_SECTIONS.filter(([, , permission]) => !permission || app.can(permission));
    this.section = allowed.some(([name]) => name === section) ? section : allowed[0][0];
    this.status = h("p", { class: "form-status admin-status", role: "status", "aria-live": "polite" });
    this.body = h("div", { class: "admin-body" });
    this.root = h(
      "section",
      { class: "view admin-view", "data-view": "admin", "data-section": this.section },
      h("h1", {}, "Administration"),
      h(
        "nav",
        { class: "admin-nav", "aria-label": "Administration" },
        allowed.map(([name, title]) =>
          h("a", { href: `#/admin/${name}`, class: "button", "aria-current": name === this.section ? "page" : null }, title),
        ),
      ),
      this.status,
      this.body,
    );
  }

  mount(container) {
    container.replaceChildren(this.root);
    this.load();
  }

  say(text, kind) {
    this.status.textContent = text;
    this.status.dataset.kind = kind;
  }

  /** Run a call; say what happened; reload the section. */
  async act(action, done) {
    try {
      const answer = await action();
      if (answer === null) return; // the user kept things as they were
      this.say(done, "ok");
    } catch (error) {
      this.say(error.message, "error");
    }
    await this.load();
  }

  async load() {
    try {
      const build = {
        users: () => this.usersSection(),
        chairs: () => this.chairsSection(),
        cuffs: () => this.cuffsSection(),
        protocol: () => this.protocolSection(),
      }[this.section];
      this.body.replaceChildren(...(await build()));
    } catch (error) {
      this.say(error.message, "error");
    }
  }

  // -- users -------------------------------------------------------------------------------

  async usersSection() {
    const users = await this.app.api.users();
    const name = h("input", { name: "username", required: true, maxlength: 128, autocomplete: "off" });
    const role = h("select", { name: "role" }, ROLES.map(([value, text]) => h("option", { value }, text)));
    const password = h("input", { name: "password", type: "password", required: true, minlength: MIN_PASSWORD, autocomplete: "new-password" });
    const create = h(
      "form",
      { class: "card form admin-form", "data-form": "new-user" },
      h("h2", {}, "New user"),
      h("div", { class: "field-row" }, field("User name", name), field("Role", role), field(`Password (at least ${MIN_PASSWORD} characters)`, password)),
      h("div", { class: "form-actions" }, h("button", { type: "submit", class: "button button-primary" }, "Create user")),
    );
    create.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = { username: name.value.trim(), role: role.value, password: password.value };
      this.act(() => this.app.api.post("/api/users", body), `User ${body.username} created.`);
    });
    const rows = users.map((user) => this.userRow(user));
    return [
      create,
      h(
        "table",
        { class: "data-table admin-users" },
        h("thead", {}, h("tr", {}, h("th", {}, "User"), h("th", {}, "Role"), h("th", {}, "State"), h("th", {}, "Actions"))),
        h("tbody", {}, rows),
      ),
    ];
  }

  userRow(user) {
    const path = `/api/users/${encodeURIComponent(user.username)}`;
    const state = user.disabled ? "Disabled" : user.locked ? "Locked" : "Active";
    const role = h(
      "select",
      { "aria-label": `Role of ${user.username}` },
      ROLES.map(([value, text]) => h("option", { value, selected: value === user.role }, text)),
    );
    role.addEventListener("change", () =>
      this.act(() => this.app.api.post(`${path}/role`, { role: role.value }), `${user.username} is now ${role.value}.`),
    );
    const button = (text, onclick) => h("button", { type: "button", class: "button", onclick }, text);
    const actions = [
      user.disabled
        ? button("Enable", () => this.act(() => this.app.api.post(`${path}/enable`), `${user.username} can sign in again.`))
        : button("Disable", () => this.disable(user)),
      button("Reset password", () => this.resetPassword(user)),
      user.locked ? button("Unlock", () => this.act(() => this.app.api.post(`${path}/unlock`), `${user.username} is unlocked.`)) : null,
    ];
    return h(
      "tr",
      { "data-username": user.username, "data-state": state.toLowerCase() },
      h("td", {}, user.username),
      h("td", {}, role),
      h("td", { class: "user-state" }, state),
      h("td", { class: "user-actions" }, actions),
    );
  }

  async disable(user) {
    const answer = await confirmDialog({
      title: `Disable ${user.username}?`,
      text: "They are signed out everywhere at once and cannot sign in until enabled again.",
      confirmLabel: "Disable user",
      danger: true,
    });
    if (!answer) return;
    await this.act(() => this.app.api.post(`/api/users/${encodeURIComponent(user.username)}/disable`), `${user.username} is disabled.`);
  }

  async resetPassword(user) {
    const answer = await confirmDialog({
      title: `New password for ${user.username}`,
      text: "Their sessions end; a lockout is lifted. Tell them the new password in person.",
      confirmLabel: "Set password",
      fields: [{ name: "password", label: `New password (at least ${MIN_PASSWORD} characters)`, type: "password", required: true, minlength: MIN_PASSWORD }],
    });
    if (!answer) return;
    await this.act(
      () => this.app.api.post(`/api/users/${encodeURIComponent(user.username)}/password`, { new_password: answer.password }),
      `Password of ${user.username} reset.`,
    );
  }

  // -- chairs ------------------------------------------------------------------------------

  async chairsSection() {
    const chairs = await this.app.api.chairs();
    this.syncWard(chairs);
    const name = h("input", { name: "name", required: true, maxlength: 64, autocomplete: "off" });
    const create = h(
      "form",
      { class: "card form admin-form", "data-form": "new-chair" },
      h("h2", {}, "New chair"),
      h("div", { class: "field-row" }, field("Chair name", name)),
      h("div", { class: "form-actions" }, h("button", { type: "submit", class: "button button-primary" }, "Add chair")),
    );
    create.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = { name: name.value.trim() };
      this.act(() => this.app.api.post("/api/chairs", body), `${body.name} added to the ward.`);
    });
    return [
      create,
      h(
        "table",
        { class: "data-table admin-chairs" },
        h("thead", {}, h("tr", {}, h("th", {}, "Chair"), h("th", {}, "Cuff"), h("th", {}, "State"), h("th", {}, "Actions"))),
        h("tbody", {}, chairs.map((chair) => this.chairRow(chair))),
      ),
    ];
  }

  chairRow(chair) {
    const state = chair.retired_at ? `Retired ${clockTime(chair.retired_at)}` : chair.session_id ? "In session" : "Free";
    const button = (text, onclick) => h("button", { type: "button", class: "button", onclick }, text);
    return h(
      "tr",
      { "data-chair-id": chair.id, "data-retired": chair.retired_at ? "true" : "false" },
      h("td", { class: "chair-name" }, chair.name),
      h("td", {}, chair.cuff_address || "No cuff"),
      h("td", { class: "chair-state" }, state),
      h(
        "td",
        { class: "chair-actions" },
        button("Rename", () => this.renameChair(chair)),
        chair.retired_at ? null : button("Retire", () => this.retireChair(chair)),
      ),
    );
  }

  async renameChair(chair) {
    const answer = await confirmDialog({
      title: `Rename ${chair.name}`,
      confirmLabel: "Rename chair",
      fields: [{ name: "name", label: "New name", required: true, value: chair.name, maxlength: 64 }],
    });
    if (!answer) return;
    await this.act(() => this.app.api.request("PATCH", `/api/chairs/${chair.id}`, { name: answer.name }), `${chair.name} is now ${answer.name}.`);
  }

  async retireChair(chair) {
    const answer = await confirmDialog({
      title: `Retire ${chair.name}?`,
      text: "It leaves the ward and its cuff is released; its past sessions keep its name. A chair in session cannot be retired.",
      confirmLabel: "Retire chair",
      danger: true,
    });
    if (!answer) return;
    await this.act(() => this.app.api.post(`/api/chairs/${chair.id}/retire`), `${chair.name} is retired.`);
  }

  /** The ward lists chairs from the stream's snapshot, which chair changes do not update:
   * bring this tablet's copy in step (other tablets see them at their next snapshot). */
  syncWard(chairs) {
    const { state } = this.app;
    for (const chair of chairs) {
      if (chair.retired_at) state.chairs.delete(chair.id);
      else state.chairs.set(chair.id, { ...(state.chairs.get(chair.id) || {}), ...chair });
    }
  }

  // -- cuffs -------------------------------------------------------------------------------

  async cuffsSection() {
    const [devices, chairs] = await Promise.all([this.app.api.devices(), this.app.api.chairs()]);
    this.syncWard(chairs);
    const inService = chairs.filter((c) => !c.retired_at);
    if (!devices.length) return [h("p", { class: "empty-note" }, "No cuff seen yet: switch one on near the tablet's daemon.")];
    return [
      h(
        "table",
        { class: "data-table admin-cuffs" },
        h("thead", {}, h("tr", {}, h("th", {}, "Cuff"), h("th", {}, "Chair now"), h("th", {}, "Assign to"))),
        h("tbody", {}, devices.map((device) => this.cuffRow(device, inService))),
      ),
    ];
  }

  cuffRow(device, chairs) {
    const current = chairs.find((c) => c.id === device.chair_id);
    const picker = h(
      "select",
      { "aria-label": `New chair for cuff ${device.address}` },
      h("option", { value: "" }, "Not assigned"),
      chairs.map((c) => h("option", { value: String(c.id), selected: c.id === device.chair_id }, `${c.name}${c.session_id ? " (in session)" : ""}`)),
    );
    const assign = h("button", { type: "button", class: "button button-primary" }, "Assign");
    assign.addEventListener("click", () => {
      const chairId = Number(picker.value) || null;
      if (chairId === (device.chair_id || null)) return;
      const target = chairs.find((c) => c.id === chairId);
      this.act(
        () => moveCuff(this.app, device.address, chairId, device.chair_id),
        target ? `Cuff ${device.address} is on ${target.name}.` : `Cuff ${device.address} is not assigned.`,
      );
    });
    return h(
      "tr",
      { "data-address": device.address },
      h("td", {}, h("div", { class: "device-name" }, device.name || "Cuff"), h("div", { class: "device-detail" }, device.address)),
      h("td", { class: "cuff-chair" }, current ? current.name : "Not assigned"),
      h("td", { class: "cuff-assign" }, picker, assign),
    );
  }

  // -- the protocol ------------------------------------------------------------------------

  async protocolSection() {
    const protocols = await this.app.api.get("/api/protocols");
    const chosen = this.protocolName || protocols[0].name;
    const numbers = await this.app.api.get(`/api/protocols/${encodeURIComponent(chosen)}`);
    const picker = h(
      "select",
      { "aria-label": "Protocol" },
      protocols.map((p) => h("option", { value: p.name, selected: p.name === chosen }, `${p.title}${p.active ? " (active)" : ""}`)),
    );
    picker.addEventListener("change", () => {
      this.protocolName = picker.value;
      this.load();
    });
    const schedule = {};
    for (const [part, rule] of Object.entries({
      baseline: numbers.baseline,
      post_dose: numbers.post_dose,
      infusion: numbers.infusion,
      post_infusion: numbers.post_infusion,
      close: numbers.close,
    })) {
      if (!rule) continue;
      for (const [key, value] of Object.entries(rule)) schedule[`${part}_${key}`] = value;
    }
    const doses = h(
      "div",
      { class: "card protocol-table", "data-table": "doses" },
      h("h2", {}, "Doses"),
      h(
        "table",
        { class: "data-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "Drug"), h("th", {}, "Route"), h("th", {}, "Plausible amount"))),
        h(
          "tbody",
          {},
          numbers.doses.map((d) => h("tr", {}, h("td", {}, d.drug), h("td", {}, d.route), h("td", {}, `${d.min_mg}–${d.max_mg} mg`))),
        ),
      ),
    );
    return [
      h(
        "div",
        { class: "protocol-head" },
        field("Protocol", picker),
        h("p", { class: "empty-note" }, "Read-only: the numbers come from the protocol file (README, \u201cwhere the clinical numbers live\u201d)."),
      ),
      h(
        "div",
        { class: "protocol-grid" },
        numbersTable("Thresholds", numbers.thresholds, "thresholds"),
        numbersTable("Check schedule", schedule, "schedule"),
        numbersTable("Safety", numbers.safety, "safety"),
        doses,
      ),
    ];
  }

  update() {}

  tick() {}
}
