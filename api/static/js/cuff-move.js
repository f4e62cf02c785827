// Putting a cuff on a chair (or taking it off) from any screen. When a chair's open
// session would change cuff, the server answers 409 (DESIGN.md "Cuffs and chairs"):
// the nurse sees why, and confirms with a reason (audited), or leaves it as it was.

import { confirmDialog } from "./confirm-dialog.js";

function send(api, address, chairId, fromChairId, extra) {
  if (chairId) {
    return api.post(`/api/devices/${encodeURIComponent(address)}/assign`, { chair_id: chairId, ...extra });
  }
  const query = extra.confirm ? `?confirm=true&reason=${encodeURIComponent(extra.reason)}` : "";
  return api.request("DELETE", `/api/chairs/${fromChairId}/cuff${query}`);
}

/**
 * Assign `address` to `chairId` (null: unassign it from `fromChairId`). Resolves to the
 * chair answered, or null when the user kept things as they were; throws other errors.
 */
export async function moveCuff(app, address, chairId, fromChairId) {
  try {
    return await send(app.api, address, chairId, fromChairId, {});
  } catch (error) {
    if (error.status !== 409) throw error;
    const why = error.message.split(": moving it")[0];
    const answer = await confirmDialog({
      title: "This chair is in session",
      text: `${why.charAt(0).toUpperCase()}${why.slice(1)}. Moving the cuff changes whose record its readings go to.`,
      confirmLabel: "Move cuff anyway",
      cancelLabel: "Keep it where it is",
      danger: true,
      fields: [{ name: "reason", label: "Reason (kept in the audit trail)", required: true }],
    });
    if (!answer) return null;
    return send(app.api, address, chairId, fromChairId, { confirm: true, reason: answer.reason });
  }
}
