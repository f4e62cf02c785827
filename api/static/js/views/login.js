// Sign in: the OAuth2 password form of issue #6, with the dashboard's HttpOnly cookie.

import { h } from "../dom.js";

export class LoginView {
  constructor(app) {
    this.app = app;
    this.status = h("p", { class: "form-status", role: "alert" });
    this.username = h("input", { id: "login-username", name: "username", autocomplete: "username", required: true, autocapitalize: "none" });
    this.password = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
    this.button = h("button", { type: "submit", class: "button button-primary" }, "Sign in");
    this.form = h(
      "form",
      { class: "card login-form", "data-form": "login" },
      h("h1", {}, "vitalsd"),
      h("p", { class: "login-lead" }, "Blood pressure during treatment sessions"),
      h("div", { class: "field" }, h("label", { for: "login-username" }, "User name"), this.username),
      h("div", { class: "field" }, h("label", { for: "login-password" }, "Password"), this.password),
      h("div", { class: "form-actions" }, this.button),
      this.status,
    );
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.root = h("section", { class: "view login-view", "data-view": "login" }, this.form);
  }

  mount(container) {
    container.replaceChildren(this.root);
    this.username.focus();
  }

  async submit() {
    this.button.disabled = true;
    this.status.textContent = "";
    try {
      await this.app.api.logIn(this.username.value.trim(), this.password.value);
      this.password.value = "";
      await this.app.signedIn();
    } catch (error) {
      this.status.textContent =
        error.status === 401 ? "Wrong user name or password." : `Could not sign in: ${error.message}`;
    } finally {
      this.button.disabled = false;
    }
  }

  update() {}

  tick() {}
}
