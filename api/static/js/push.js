// Web Push on this device (issue #15): the service worker that shows alerts when the
// dashboard is closed, and the profile's "Notifications on this device" control.
//
// What a device needs: a secure context (HTTPS, or http://localhost), the Push API and
// notification permission. An iPhone or iPad needs the dashboard added to its Home
// Screen (iOS/iPadOS 16.4 or later) and opened from there; Safari tabs get no push.

import { h } from "./dom.js";

const WORKER = "/sw.js";

export function pushSupported() {
  return (
    window.isSecureContext &&
    "serviceWorker" in navigator &&
    "PushManager" in window &&
    "Notification" in window
  );
}

/** Register the service worker on load (nothing is cached by it; it only shows pushes). */
export function registerServiceWorker() {
  if (!window.isSecureContext || !("serviceWorker" in navigator)) return Promise.resolve(null);
  return navigator.serviceWorker.register(WORKER, { scope: "/" }).catch((error) => {
    console.warn(`service worker not registered: ${error.message}`);
    return null;
  });
}

function fromBase64Url(text) {
  const padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function sameKey(subscription, key) {
  const current = subscription.options && subscription.options.applicationServerKey;
  if (!current) return true;
  const a = new Uint8Array(current);
  return a.length === key.length && a.every((byte, i) => byte === key[i]);
}

function isIos() {
  return /iPad|iPhone|iPod/.test(navigator.userAgent) || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
}

export class PushControl {
  constructor(app) {
    this.app = app;
    this.state = h("p", { class: "push-state", "data-push": "unknown", role: "status" }, "Checking…");
    this.button = h("button", { type: "button", class: "button button-primary", onclick: () => this.toggle() }, "Turn on");
    this.button.hidden = true;
    this.devices = h("ul", { class: "push-devices" });
    this.root = h(
      "div",
      { class: "card account-push", "data-card": "push" },
      h("h2", {}, "Notifications on this device"),
      h(
        "p",
        { class: "hint" },
        "Alerts for your role reach this phone or tablet even when the dashboard is closed, with Acknowledge and Open.",
      ),
      this.state,
      h("div", { class: "form-actions" }, this.button),
      this.devices,
    );
  }

  say(text, state) {
    this.state.textContent = text;
    this.state.dataset.push = state;
  }

  async refresh() {
    if (!pushSupported()) {
      this.button.hidden = true;
      const why = !window.isSecureContext
        ? "Notifications need the dashboard over HTTPS (or on localhost)."
        : isIos()
          ? "On iPhone and iPad: Share → Add to Home Screen, open vitalsd from there (iOS 16.4 or later), then turn notifications on here."
          : "This browser cannot receive notifications.";
      this.say(why, "unsupported");
      return;
    }
    if (Notification.permission === "denied") {
      this.button.hidden = true;
      this.say("Notifications are blocked for this site: allow them in the browser's or the phone's settings.", "denied");
      return;
    }
    const subscription = await this.subscription();
    const mine = await this.listDevices();
    const known = subscription && mine.some((d) => d.endpoint === subscription.endpoint);
    this.button.hidden = false;
    this.button.textContent = known ? "Turn off" : "Turn on";
    this.button.dataset.action = known ? "off" : "on";
    this.say(known ? "On: alerts come to this device." : "Off: this device gets no alerts.", known ? "on" : "off");
  }

  async subscription() {
    const registration = await navigator.serviceWorker.ready;
    return registration.pushManager.getSubscription();
  }

  async listDevices() {
    let devices = [];
    try {
      devices = await this.app.api.get("/api/push/subscriptions");
    } catch (error) {
      this.app.say(error.message, "error");
    }
    this.devices.replaceChildren(
      ...devices.map((device) =>
        h(
          "li",
          { "data-device": String(device.id) },
          h("span", {}, device.user_agent || "A device"),
          " ",
          h("button", { type: "button", class: "button button-quiet", onclick: () => this.remove(device) }, "Remove"),
        ),
      ),
    );
    return devices;
  }

  async toggle() {
    this.button.disabled = true;
    try {
      if (this.button.dataset.action === "off") await this.turnOff();
      else await this.turnOn();
    } catch (error) {
      this.say(`Could not change notifications: ${error.message}`, "error");
      this.button.disabled = false;
      return;
    }
    this.button.disabled = false;
    await this.refresh();
  }

  async turnOn() {
    const permission = await Notification.requestPermission();
    if (permission !== "granted") throw new Error("notifications were not allowed");
    const { public_key: publicKey } = await this.app.api.get("/api/push/vapid-public-key");
    const key = fromBase64Url(publicKey);
    const registration = await navigator.serviceWorker.ready;
    let subscription = await registration.pushManager.getSubscription();
    if (subscription && !sameKey(subscription, key)) {
      await subscription.unsubscribe(); // made for another server key: useless now
      subscription = null;
    }
    if (!subscription) {
      subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    }
    await this.app.api.post("/api/push/subscriptions", subscription.toJSON());
  }

  async turnOff() {
    const subscription = await this.subscription();
    if (!subscription) return;
    const mine = await this.app.api.get("/api/push/subscriptions");
    const device = mine.find((d) => d.endpoint === subscription.endpoint);
    if (device) await this.app.api.request("DELETE", `/api/push/subscriptions/${device.id}`);
    await subscription.unsubscribe();
  }

  async remove(device) {
    await this.app.act(() => this.app.api.request("DELETE", `/api/push/subscriptions/${device.id}`), "That device gets no more alerts.");
    await this.refresh();
  }
}
