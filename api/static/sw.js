// The dashboard's service worker (issue #15): shows the alerts Web Push brings to this
// device, reports that it showed them, and runs their actions. Served from the root so
// its scope is the whole dashboard. No caching of pages or data: patient data stays
// out of the device's storage (SECURITY.md), and the dashboard is live or it says so.
//
// The push payload (vitalsd/notify/webpush.py `push_payload`) carries a short-lived
// token bound to the nurse, the alert and this notification: the worker cannot use the
// dashboard's CSRF token, so it sends that token instead, without cookies.

const ICON = "/icons/icon-192.png";
const PRIORITY_WORD = { high: "HIGH", medium: "MEDIUM", low: "LOW" };

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

/** The title and body from the payload's facts (the notifier composes both already). */
function describe(p) {
  const who = [PRIORITY_WORD[p.priority] || p.priority, p.chair, p.patient_initials].filter(Boolean);
  const title = p.title || who.join(" - ");
  let body = p.body || "";
  if (!body && p.value) body = p.limit ? `${p.value} (limit ${p.limit})` : p.value;
  return { title, body };
}

async function post(path, body) {
  // `credentials: "omit"`: no cookie, so the server's CSRF rule for cookie sessions does
  // not apply; the token in the body is the proof. The fetch is same-origin (Origin sent).
  return fetch(path, {
    method: "POST",
    credentials: "omit",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
}

async function show(p) {
  const { title, body } = describe(p);
  const high = p.priority === "high";
  await self.registration.showNotification(title, {
    body,
    tag: `alert-${p.alert_id}`, // a newer message about the alert replaces the older one
    renotify: true, // ...and still sounds
    requireInteraction: high, // a high alert stays until the nurse acts on it
    silent: false,
    icon: ICON,
    badge: ICON,
    timestamp: p.at ? Date.parse(p.at) : Date.now(),
    actions: [
      { action: "acknowledge", title: "Acknowledge" },
      { action: "open", title: "Open" },
    ],
    data: {
      alert_id: p.alert_id,
      key: p.key,
      token: p.token,
      url: p.url || "/#/alerts",
      priority: p.priority,
    },
  });
  try {
    await post("/api/push/receipts", { key: p.key, state: "shown", token: p.token });
  } catch {
    // Offline right now: the notification is shown; the notifier escalates on silence.
  }
}

self.addEventListener("push", (event) => {
  let payload = null;
  try {
    payload = event.data ? event.data.json() : null;
  } catch {
    payload = null;
  }
  // A push must always show something (browsers require it, and an alert is never lost).
  if (!payload || typeof payload !== "object") {
    payload = { title: "vitalsd alert", body: "Open the dashboard.", url: "/#/alerts", priority: "high" };
  }
  event.waitUntil(show(payload));
});

async function openDashboard(url) {
  const target = new URL(url || "/#/alerts", self.location.origin).href;
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const found of windows) {
    if (new URL(found.url).origin !== self.location.origin) continue;
    let client = found;
    try {
      client = await found.focus(); // only a tap on the notification may bring it forward
    } catch {
      client = found;
    }
    try {
      await client.navigate(target);
    } catch {
      // Not controlled by this worker yet: it is in front at least.
    }
    return true;
  }
  try {
    await self.clients.openWindow(target);
    return true;
  } catch {
    return false;
  }
}

/** What a tap on the notification (or one of its buttons) does. Returns what happened. */
async function act(notification, action) {
  const data = notification.data || {};
  notification.close();
  if (action === "acknowledge" && data.token) {
    let response = null;
    try {
      response = await post("/api/push/actions/acknowledge", { token: data.token });
    } catch {
      response = null;
    }
    if (response && response.ok) return { action, status: response.status };
    // Expired, signed out, already acknowledged elsewhere, or offline: show the alert
    // where the nurse can act on it rather than fail silently.
    const opened = await openDashboard(data.url);
    return { action, status: response ? response.status : 0, opened };
  }
  return { action: action || "open", opened: await openDashboard(data.url) };
}

self.addEventListener("notificationclick", (event) => {
  event.waitUntil(act(event.notification, event.action));
});

// The dashboard may run a shown notification's action through the same code as a tap
// (the browser tests do: a real tap on a system notification cannot be scripted).
self.addEventListener("message", (event) => {
  const message = event.data || {};
  if (message.type !== "notification-action") return;
  const reply = (result) => {
    if (event.ports && event.ports[0]) event.ports[0].postMessage(result);
  };
  event.waitUntil(
    (async () => {
      const shown = await self.registration.getNotifications({ tag: message.tag });
      if (!shown.length) return reply({ error: `no notification ${message.tag}` });
      try {
        return reply(await act(shown[0], message.action));
      } catch (error) {
        return reply({ error: String(error) });
      }
    })(),
  );
});
