// How a tablet lays out its ward (issue #14): chair order or acuity order, the usual
// tiles or a compact grid that shows twelve chairs on a 1280x800 tablet. Both are kept
// per tablet (localStorage), as each tablet sits in its own place on the ward.

import { h, setAttr, setText } from "../dom.js";
import { PRIORITY_RANK, parseTime } from "../format.js";

const SORT_KEY = "vitalsd.ward.sort";
const COMPACT_KEY = "vitalsd.ward.compact";
export const SORTS = Object.freeze({ CHAIR: "chair", ACUITY: "acuity" });

function stored(key, fallback) {
  try {
    return localStorage.getItem(key) ?? fallback;
  } catch {
    return fallback; // storage refused (private mode): the default, every time
  }
}

function keep(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // not kept across reloads; the choice still holds on this page
  }
}

/** The highest priority among a session's active (unacknowledged) alerts: -1 if none. */
export function activePriorityRank(alerts) {
  let rank = -1;
  for (const alert of alerts) {
    if (alert.state === "active") rank = Math.max(rank, PRIORITY_RANK[alert.priority] ?? -1);
  }
  return rank;
}

/** When a session's next check is due (ms): an overdue one's closed window is earliest. */
export function checkDueAt(checks, nextCheck, now) {
  const overdue = checks.filter((c) => c.state === "overdue");
  if (overdue.length) return Math.min(...overdue.map((c) => parseTime(c.window_end) ?? now));
  if (!nextCheck) return Infinity;
  if (nextCheck.state === "due") return parseTime(nextCheck.window_end) ?? now;
  return parseTime(nextCheck.window_start) ?? Infinity;
}

/**
 * Chairs in acuity order: the highest active alert priority first, then the check soonest
 * due, then chair order; empty chairs last.
 */
export function byAcuity(chairs, state, now) {
  const keyOf = (chair) => {
    const session = state.openSessionOfChair(chair);
    if (!session) return { occupied: 0, rank: -2, due: Infinity };
    return {
      occupied: 1,
      rank: activePriorityRank(state.alertsOfSession(session.id)),
      due: checkDueAt(state.sessionChecks(session.id), session.next_check, now),
    };
  };
  const keys = new Map(chairs.map((c) => [c.id, keyOf(c)]));
  return [...chairs].sort((a, b) => {
    const ka = keys.get(a.id);
    const kb = keys.get(b.id);
    return kb.occupied - ka.occupied || kb.rank - ka.rank || (ka.due === kb.due ? 0 : ka.due < kb.due ? -1 : 1) || a.id - b.id;
  });
}

/** The ward's two per-tablet choices and the toolbar that changes them. */
export class WardLayout {
  constructor(onChange) {
    this.onChange = onChange;
    this.sort = stored(SORT_KEY, SORTS.CHAIR) === SORTS.ACUITY ? SORTS.ACUITY : SORTS.CHAIR;
    this.compact = stored(COMPACT_KEY, "false") === "true";
    this.sortButton = h("button", { type: "button", class: "button ward-toggle", "data-action": "ward-sort", onclick: () => this.toggleSort() });
    this.compactButton = h("button", { type: "button", class: "button ward-toggle", "data-action": "ward-compact", onclick: () => this.toggleCompact() });
    this.root = h("div", { class: "ward-toolbar", role: "toolbar", "aria-label": "Ward layout" }, this.sortButton, this.compactButton);
    this.update();
  }

  toggleSort() {
    this.sort = this.sort === SORTS.ACUITY ? SORTS.CHAIR : SORTS.ACUITY;
    keep(SORT_KEY, this.sort);
    this.update();
    this.onChange();
  }

  toggleCompact() {
    this.compact = !this.compact;
    keep(COMPACT_KEY, String(this.compact));
    this.update();
    this.onChange();
  }

  update() {
    setText(this.sortButton, this.sort === SORTS.ACUITY ? "Order: most urgent first" : "Order: by chair");
    setAttr(this.sortButton, "aria-pressed", this.sort === SORTS.ACUITY ? "true" : "false");
    setAttr(this.sortButton, "data-sort", this.sort);
    setText(this.compactButton, this.compact ? "Compact tiles: on" : "Compact tiles: off");
    setAttr(this.compactButton, "aria-pressed", this.compact ? "true" : "false");
  }
}
