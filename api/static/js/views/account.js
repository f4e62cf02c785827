// Account: change your own password; an admin also resets others' passwords and unlocks
// accounts locked after failed logins (issue #17). A changed password ends every
// session of that user, this one included: the dashboard then asks to sign in again.

import { h } from "../dom.js";
import { PushControl } from "../push.js";

const MIN_LENGTH = 12; // vitalsd.passwords.MIN_PASSWORD_LENGTH

function passwordField(id, label, autocomplete) {
  const input = h("input", { id, type: "password", autocomplete, required: true, minlength: MIN_LENGTH });
  return [input, h("div", { class: "field" }, h("label", { for: id }, label), input)];
}

export class AccountView {
  constructor(app) {
    this.app = app;
    const [current, currentField] = passwordField("account-current", "Current password", "current-password");
    const [fresh, freshField] = passwordField("account-new", `New password (at least ${MIN_LENGTH} characters)`, "new-password");
    const [again, againField] = passwordField("account-again", "New password again", "new-password");
    current.removeAttribute("minlength");
    Object.assign(this, { current, fresh, again });
    this.status = h("p", { class: "form-status", role: "alert" });
    this.button = h("button", { type: "submit", class: "button button-primary" }, "Change password");
    this.form = h(
      "form",
      { class: "card account-form", "data-form": "password" },
      h("h2", {}, "Your password"),
      currentField,
      freshField,
      againField,
      h("div", { class: "form-actions" }, this.button),
      this.status,
    );
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.users = h("tbody");
    this.admin = h(
      "div",
      { class: "card account-users", hidden: true },
      h("h2", {}, "Users"),
      h(
        "table",
        { class: "data-table users-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "User"), h("th", {}, "Role"), h("th", {}, "State"), h("th", {}, ""))),
        this.users,
      ),
    );
    this.push = new PushControl(app); // issue #15: Web Push to this device
    this.root = h("section", { class: "view account-view", "data-view": "account" }, h("h1", {}, "Account"), this.form, this.push.root, this.admin);
  }

  mount(container) {
    container.replaceChildren(this.root);
    this.push.refresh();
    if (this.app.can("manage_users")) {
      this.admin.hidden = false;
      this.loadUsers();
    }
  }

  say(text, kind) {
    this.status.textContent = text;
    this.status.dataset.kind = kind;
  }

  async submit() {
    if (this.fresh.value !== this.again.value) {
      this.say("The new passwords differ.", "error");
      return;
    }
    this.button.disabled = true;
    try {
      await this.app.api.changePassword(this.current.value, this.fresh.value);
      this.app.signedOut();
      this.app.view.status.textContent = "Password changed: sign in with the new one.";
    } catch (error) {
      this.say(error.status === 401 ? "The current password is wrong." : error.message, "error");
    } finally {
      this.button.disabled = false;
    }
  }

  async loadUsers() {
    let users;
    try {
      users = await this.app.api.users();
    } catch (error) {
      this.app.say(error.message, "error");
      return;
    }
    this.users.replaceChildren(
      ...users.map((user) => {
        const state = user.disabled ? "disabled" : user.locked ? "locked" : "active";
        const actions = h("td", { class: "user-actions" });
        if (user.locked) {
          actions.append(
            h("button", { type: "button", class: "button", onclick: () => this.unlock(user.username) }, "Unlock"),
          );
        }
        actions.append(
          h("button", { type: "button", class: "button", onclick: () => this.reset(user.username) }, "Reset password"),
        );
        return h("tr", { "data-username": user.username }, h("td", {}, user.username), h("td", {}, user.role), h("td", {}, state), actions);
      }),
    );
  }

  async unlock(username) {
    await this.app.act(() => this.app.api.unlockUser(username), `${username} can sign in again.`);
    this.loadUsers();
  }

  async reset(username) {
    const password = window.prompt(`New password for ${username} (at least ${MIN_LENGTH} characters):`);
    if (!password) return;
    await this.app.act(() => this.app.api.resetPassword(username, password), `Password of ${username} reset.`);
    this.loadUsers();
  }

  update() {}

  tick() {}
}
