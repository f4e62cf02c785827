// Receipts under an alert (issue #15): who was told, through which channel, how far the
// message got (queued -> sent -> delivered -> shown -> acknowledged, or failed with why).

import { h, setText } from "../dom.js";

const last = new Map(); // alert id -> the line last shown (no flicker on a rebuild)

/** "ward-pager: delivered · oncall-sms: failed (HTTP 404)", newest state per recipient. */
export function receiptSummary(receipts) {
  const byRecipient = new Map();
  for (const r of receipts) byRecipient.set(r.recipient, r); // oldest first: the last wins
  return [...byRecipient.values()]
    .map((r) => `${r.recipient}: ${r.state}${r.state === "failed" && r.detail ? ` (${r.detail})` : ""}`)
    .join(" · ");
}

/** A line under the alert, filled from `GET /api/alerts/{id}/receipts`. */
export function receiptLine(app, alert) {
  const node = h("div", { class: "alert-receipts", "data-receipts-for": alert.id });
  const shown = last.get(alert.id);
  if (shown) setText(node, shown);
  app.api
    .get(`/api/alerts/${alert.id}/receipts`)
    .then((receipts) => {
      if (!Array.isArray(receipts) || receipts.length === 0) return;
      const text = `Notified: ${receiptSummary(receipts)}`;
      last.set(alert.id, text);
      setText(node, text);
    })
    .catch(() => {}); // the alert itself is what matters; the line stays as it was
  return node;
}
