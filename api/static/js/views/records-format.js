// How the admission, patient and record screens write dates (issue #14): the day and
// the 24-hour time, in the tablet's time zone (the clinic's).

function pad(n) {
  return String(n).padStart(2, "0");
}

/** "2026-12-05" for a date-time or a Date. */
export function day(value) {
  const d = value instanceof Date ? value : new Date(value);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** "2026-12-05 14:32" (no AM/PM to misread). */
export function dateTime(value) {
  if (!value) return "--";
  const d = value instanceof Date ? value : new Date(value);
  return `${day(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
