// A modal question before a step that is hard to undo (close a session, retire a chair,
// move a cuff away from a patient): the tablet's own <dialog>, never window.confirm, so
// it reads like the rest of the dashboard and can ask for a reason at the same time.

import { h } from "./dom.js";

let dialogCounter = 0;

function control(spec) {
  if (spec.type === "select") {
    return h(
      "select",
      { name: spec.name, required: spec.required },
      spec.options.map(([value, label]) => h("option", { value, selected: value === spec.value }, label)),
    );
  }
  return h("input", {
    name: spec.name,
    type: spec.type || "text",
    required: spec.required,
    minlength: spec.minlength,
    maxlength: spec.maxlength || 2000,
    value: spec.value,
    autocomplete: spec.type === "password" ? "new-password" : "off",
  });
}

/**
 * Ask; resolves to the fields' values ({} without fields) on confirm, null on cancel.
 * `fields`: [{name, label, type?: "text"|"password"|"select", required?, options?, value?}].
 */
export function confirmDialog({ title, text, confirmLabel, cancelLabel = "Cancel", fields = [], danger = false }) {
  dialogCounter += 1;
  const titleId = `dialog-title-${dialogCounter}`;
  const inputs = fields.map((spec) => {
    const input = control(spec);
    input.id = `dialog-${dialogCounter}-${spec.name}`;
    return [spec, input];
  });
  const cancel = h("button", { type: "button", class: "button" }, cancelLabel);
  const confirm = h("button", { type: "submit", class: danger ? "button button-danger" : "button button-primary" }, confirmLabel);
  const form = h(
    "form",
    { class: "dialog-form" },
    h("h2", { id: titleId }, title),
    text ? h("p", { class: "dialog-text" }, text) : null,
    inputs.map(([spec, input]) => h("div", { class: "field" }, h("label", { for: input.id }, spec.label), input)),
    h("div", { class: "form-actions dialog-actions" }, cancel, confirm),
  );
  const dialog = h("dialog", { class: "confirm-dialog", "aria-labelledby": titleId }, form);
  document.body.append(dialog);
  return new Promise((resolve) => {
    const finish = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    cancel.addEventListener("click", () => finish(null));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault(); // Escape: the same as Cancel
      finish(null);
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const values = {};
      for (const [spec, input] of inputs) values[spec.name] = input.value.trim();
      finish(values);
    });
    dialog.showModal();
    (inputs.length ? inputs[0][1] : confirm).focus();
  });
}
