// Small inline SVG icons (no icon font, no emoji: tablets differ in which they have).

import { s } from "./dom.js";

/** IEC 60601-1-8 style alarm marks: a triangle with "!" for high, a circle for medium,
 * a square for low, so priority never rests on colour alone. */
export function priorityIcon(priority) {
  const root = s("svg", {
    class: `icon priority-icon priority-icon-${priority}`,
    viewBox: "0 0 24 24",
    width: 24,
    height: 24,
    "aria-hidden": "true",
  });
  if (priority === "high") {
    root.append(s("path", { d: "M12 2 L23 21 L1 21 Z", class: "icon-shape" }));
  } else if (priority === "medium") {
    root.append(s("circle", { cx: 12, cy: 12, r: 10.5, class: "icon-shape" }));
  } else {
    root.append(s("rect", { x: 2, y: 2, width: 20, height: 20, rx: 2, class: "icon-shape" }));
  }
  root.append(
    s("rect", { x: 10.6, y: priority === "high" ? 8 : 6, width: 2.8, height: 8, class: "icon-mark" }),
    s("rect", { x: 10.6, y: priority === "high" ? 17.2 : 16.2, width: 2.8, height: 2.8, class: "icon-mark" }),
  );
  return root;
}

export function batteryIcon(percent) {
  const level = Math.max(0, Math.min(100, percent ?? 0));
  const low = percent !== null && percent !== undefined && percent <= 20;
  return s(
    "svg",
    { class: `icon battery${low ? " battery-low" : ""}`, viewBox: "0 0 28 14", width: 28, height: 14, "aria-hidden": "true" },
    s("rect", { x: 0.75, y: 0.75, width: 23.5, height: 12.5, rx: 2, class: "battery-case" }),
    s("rect", { x: 24.5, y: 4, width: 3, height: 6, rx: 1, class: "battery-tip" }),
    s("rect", { x: 2.5, y: 2.5, width: (20 * level) / 100, height: 9, class: "battery-fill" }),
  );
}

/** Signal bars from RSSI (dBm): four bars at -60, -70, -80, -90 and above. */
export function signalIcon(rssi) {
  const bars = rssi === null || rssi === undefined ? 0 : [-90, -80, -70, -60].filter((t) => rssi >= t).length;
  const root = s("svg", { class: "icon signal", viewBox: "0 0 20 16", width: 20, height: 16, "aria-hidden": "true" });
  for (let i = 0; i < 4; i++) {
    root.append(
      s("rect", {
        x: i * 5,
        y: 12 - i * 4,
        width: 3.5,
        height: 4 + i * 4,
        class: i < bars ? "bar-on" : "bar-off",
      }),
    );
  }
  return root;
}

export function heartIcon() {
  return s(
    "svg",
    { class: "icon heart", viewBox: "0 0 24 24", width: 24, height: 24, "aria-hidden": "true" },
    s("path", {
      d: "M12 21s-7.5-4.6-9.6-9.2C.9 8.4 3 4.5 6.6 4.5c2.2 0 3.6 1.3 4.4 2.6.8-1.3 2.2-2.6 4.4-2.6 3.6 0 5.7 3.9 4.2 7.3C19.5 16.4 12 21 12 21z",
    }),
  );
}

export function gaugeIcon() {
  return s(
    "svg",
    { class: "icon gauge", viewBox: "0 0 24 24", width: 20, height: 20, "aria-hidden": "true" },
    s("circle", { cx: 12, cy: 13, r: 9, class: "gauge-ring" }),
    s("path", { d: "M12 13 L17 8", class: "gauge-needle" }),
  );
}
