// Devices: every cuff seen, with battery, signal, connection state and chair.

import { h } from "../dom.js";
import { moveCuff } from "../cuff-move.js";
import { batteryIcon, signalIcon } from "../icons.js";
import { CONNECTION_LABELS, age, labelOf, parseTime } from "../format.js";

export class DevicesView {
  constructor(app) {
    this.app = app;
    this.body = h("tbody");
    this.empty = h("p", { class: "empty-note" }, "No cuff seen yet.");
    this.root = h(
      "section",
      { class: "view devices-view", "data-view": "devices" },
      h("h1", {}, "Cuffs"),
      this.empty,
      h(
        "table",
        { class: "data-table devices-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", {}, "Cuff"),
            h("th", {}, "Battery"),
            h("th", {}, "Signal"),
            h("th", {}, "State"),
            h("th", {}, "Last seen"),
            h("th", {}, "Chair"),
          ),
        ),
        this.body,
      ),
    );
    this.key = null;
  }

  mount(container) {
    container.replaceChildren(this.root);
    this.key = null;
    this.update();
  }

  update() {
    const { state } = this.app;
    const now = this.app.clock.now();
    const devices = [...state.devices.values()].sort((a, b) => a.address.localeCompare(b.address));
    const key = JSON.stringify([devices, [...state.chairs.values()], Math.floor(now / 60_000)]);
    if (key === this.key || this.root.contains(document.activeElement?.closest("select") ?? null)) return;
    this.key = key;
    this.empty.hidden = devices.length > 0;
    this.body.replaceChildren(...devices.map((d) => this.row(d, now)));
  }

  row(device, now) {
    const { state } = this.app;
    const seen = parseTime(device.last_seen_at);
    const model = [device.manufacturer, device.model].filter(Boolean).join(" ");
    return h(
      "tr",
      { "data-address": device.address, "data-state": device.connection_state },
      h(
        "td",
        {},
        h("div", { class: "device-name" }, device.name || "Cuff"),
        h("div", { class: "device-detail" }, `${device.address}${model ? ` · ${model}` : ""}`),
      ),
      h(
        "td",
        { class: "nowrap" },
        batteryIcon(device.battery_percent),
        ` ${device.battery_percent === null ? "--" : `${device.battery_percent}%`}`,
      ),
      h("td", { class: "nowrap" }, signalIcon(device.rssi), ` ${device.rssi === null ? "--" : `${device.rssi} dBm`}`),
      h("td", { class: "cuff-state", "data-state": device.connection_state }, labelOf(CONNECTION_LABELS, device.connection_state)),
      h("td", {}, seen ? age(now - seen) : "Never"),
      h("td", {}, this.chairCell(device, state)),
    );
  }

  chairCell(device, state) {
    const current = device.chair_id ? state.chairName(device.chair_id) : "Not assigned";
    if (!this.app.can("manage_equipment")) return current;
    const chairs = [...state.chairs.values()].sort((a, b) => a.id - b.id);
    const picker = h(
      "select",
      { "aria-label": `Chair for cuff ${device.address}`, "data-address": device.address },
      h("option", { value: "", selected: !device.chair_id }, "Not assigned"),
      chairs.map((c) => h("option", { value: String(c.id), selected: c.id === device.chair_id }, c.name)),
    );
    picker.addEventListener("change", () => {
      const chairId = Number(picker.value);
      picker.blur();
      this.app.act(async () => {
        // A chair in session asks for a confirmation and a reason first (cuff-move.js).
        const moved = await moveCuff(this.app, device.address, chairId || null, device.chair_id);
        this.key = null; // show what the server has, whether moved or kept
        if (moved === null) throw new Error("Not moved: the cuff stays where it was.");
      }, "Cuff assignment saved");
    });
    return picker;
  }

  tick() {
    this.update();
  }
}
