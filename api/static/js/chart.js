// Charts drawn as SVG by our own code (issue #7: no CDN, no build step).
//
// Blood pressure follows the anaesthesia-record convention: systolic a downward
// triangle, diastolic an upward one, pulse a dot, all on one mmHg (and /min) axis.

import { s } from "./dom.js";
import {
  CHECK_KIND_LABELS,
  FLAG_LABELS,
  SIDE_EFFECT_LABELS,
  SEVERITY_LABELS,
  clockTime,
  labelOf,
  mmHg,
  parseTime,
} from "./format.js";

// The default protocol's thresholds (DESIGN.md "Thresholds", ketamine-psychotherapy.toml);
// a session's own protocol may differ: the page passes what the API tells it when it can.
export const DEFAULT_THRESHOLDS = {
  severe_systolic: 180,
  severe_diastolic: 110,
  elevated_systolic: 140,
  elevated_diastolic: 90,
  hypotension_systolic: 90,
};

const SPARK_RANGE = [50, 200]; // one scale on every tile, so tiles compare at a glance

function scale(domainLo, domainHi, rangeLo, rangeHi) {
  const span = domainHi - domainLo || 1;
  return (v) => rangeLo + ((v - domainLo) / span) * (rangeHi - rangeLo);
}

function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, v));
}

function pathOf(points) {
  return points.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
}

function triangle(x, y, size, down) {
  const half = size / 2;
  // The apex sits on the value: down for systolic, up for diastolic.
  return down
    ? `M${x - half},${y - size} L${x + half},${y - size} L${x},${y} Z`
    : `M${x - half},${y + size} L${x + half},${y + size} L${x},${y} Z`;
}

/** A tile's trend since baseline: systolic and diastolic over the session. */
// Labels must not overlap (issue #14). Widths are estimated while the SVG is built (no
// layout pass): about 8.2 px a character for the chart's bold 13 px labels (DejaVu Sans
// Bold, the widest font a tablet falls back to), plus a little air.
const LABEL_CHAR_PX = 8.2;
const LABEL_LINE_PX = 15;

function labelWidth(text) {
  return String(text).length * LABEL_CHAR_PX + 8;
}

/** The first row whose last label ends left of `x` (-1: none is free). */
function freeRow(rowEnds, x) {
  return rowEnds.findIndex((end) => end <= x);
}

export function sparkline(readings, { width, height, baseline, from, to }) {
  const valid = readings.filter((r) => r.valid !== false && r.systolic !== null);
  const root = s("svg", {
    class: "sparkline",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": valid.length
      ? `Trend: ${valid.map((r) => `${mmHg(r.systolic)}/${mmHg(r.diastolic)}`).join(", ")}`
      : "No readings yet",
  });
  const pad = 4;
  const y = (v) => scale(SPARK_RANGE[0], SPARK_RANGE[1], height - pad, pad)(
    clamp(v, SPARK_RANGE[0], SPARK_RANGE[1]),
  );
  root.append(
    s("line", { class: "spark-severe", x1: 0, x2: width, y1: y(180), y2: y(180) }),
  );
  if (baseline) {
    root.append(
      s("line", {
        class: "spark-baseline",
        x1: 0,
        x2: width,
        y1: y(baseline.systolic),
        y2: y(baseline.systolic),
      }),
    );
  }
  if (!valid.length) return root;
  const start = Math.min(from ?? Infinity, parseTime(valid[0].measured_at));
  const end = Math.max(to ?? -Infinity, parseTime(valid[valid.length - 1].measured_at));
  const x = scale(start, end === start ? start + 1 : end, pad, width - pad);
  for (const [field, cls] of [
    ["systolic", "spark-sys"],
    ["diastolic", "spark-dia"],
  ]) {
    const points = valid.map((r) => [x(parseTime(r.measured_at)), y(r[field])]);
    root.append(s("path", { class: cls, d: pathOf(points) }));
    const [lx, ly] = points[points.length - 1];
    root.append(s("circle", { class: `${cls}-dot`, cx: lx, cy: ly, r: 3.5 }));
  }
  return root;
}

// The longest time axis the session view draws (vitalsd.timebounds.MAX_CHART_SPAN).
const MAX_SPAN_MS = 48 * 3600_000;

function niceStep(spanMinutes) {
  for (const step of [5, 10, 15, 30, 60, 120, 240, 480]) if (spanMinutes / step <= 8) return step;
  return 720;
}

const CHECK_STATE_TEXT = {
  satisfied: "done",
  due: "due",
  overdue: "overdue",
  pending: "planned",
  waived: "waived",
};

/**
 * The session timeline: readings, baseline, thresholds, doses, check windows and side
 * effects against time. `now` is the server's clock (ms).
 */
export function timeline({
  width,
  height,
  session,
  readings,
  doses,
  checks,
  sideEffects,
  thresholds = DEFAULT_THRESHOLDS,
  now,
}) {
  const margin = { left: 56, right: 150, top: 48, bottom: 120 };
  const plotW = Math.max(100, width - margin.left - margin.right);
  const plotH = Math.max(100, height - margin.top - margin.bottom);

  // The axis is the session's span (issue #17): from its start to its close (or now),
  // stretched to a later check window or late reading, at most MAX_SPAN_MS long (the last
  // part kept), whatever times the data holds; what falls outside it is not drawn.
  const sessionEnd = parseTime(session.closed_at) ?? now;
  const later = [];
  for (const r of readings) later.push(parseTime(r.measured_at));
  for (const c of checks) if (c.window_end) later.push(parseTime(c.window_end));
  let end = sessionEnd;
  for (const t of later) if (t > end && t <= sessionEnd + MAX_SPAN_MS) end = t;
  const start = Math.max(parseTime(session.started_at), end - MAX_SPAN_MS);
  end = Math.max(end, start + 30 * 60_000);
  const shown = (value) => {
    const t = parseTime(value);
    return t !== null && t >= start && t <= end;
  };
  readings = readings.filter((r) => shown(r.measured_at));
  doses = doses.filter((d) => shown(d.given_at));
  sideEffects = sideEffects.filter((e) => shown(e.observed_at));
  checks = checks.filter((c) => !c.window_start || shown(c.window_start));
  const valid = readings.filter((r) => r.valid !== false && r.systolic !== null);

  let lo = 40;
  let hi = 200;
  for (const r of valid) {
    lo = Math.min(lo, r.diastolic - 10, (r.pulse_rate ?? lo) - 10);
    hi = Math.max(hi, r.systolic + 10, (r.pulse_rate ?? hi) + 10);
  }
  lo = Math.floor(lo / 20) * 20;
  hi = Math.ceil(hi / 20) * 20;

  const x = scale(start, end, margin.left, margin.left + plotW);
  const y = scale(lo, hi, margin.top + plotH, margin.top);

  const root = s("svg", {
    class: "timeline",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": "Session timeline: blood pressure, pulse, doses, checks and side effects",
  });

  // Grid and axes.
  const grid = s("g", { class: "grid" });
  for (let v = lo; v <= hi; v += 20) {
    grid.append(
      s("line", { x1: margin.left, x2: margin.left + plotW, y1: y(v), y2: y(v) }),
      s("text", { class: "axis-label", x: margin.left - 8, y: y(v) + 5, "text-anchor": "end" }, v),
    );
  }
  const stepMin = niceStep((end - start) / 60_000);
  const firstTick = Math.ceil(start / (stepMin * 60_000)) * stepMin * 60_000;
  for (let t = firstTick; t <= end; t += stepMin * 60_000) {
    grid.append(
      s("line", { class: "tick", x1: x(t), x2: x(t), y1: margin.top, y2: margin.top + plotH }),
      s(
        "text",
        { class: "axis-label", x: x(t), y: margin.top + plotH + 20, "text-anchor": "middle" },
        clockTime(t),
      ),
    );
  }
  grid.append(
    s("text", { class: "axis-title", x: 8, y: margin.top - 14 }, "mmHg · /min"),
  );
  root.append(grid);

  // Thresholds, labelled at the right edge.
  const lines = s("g", { class: "thresholds" });
  // Lines at the same height share one label ("elevated dia · low sys" at 90).
  const byValue = new Map();
  for (const [value, cls, label] of [
    [thresholds.severe_systolic, "severe", "severe sys"],
    [thresholds.severe_diastolic, "severe", "severe dia"],
    [thresholds.elevated_systolic, "elevated", "elev. sys"],
    [thresholds.elevated_diastolic, "elevated", "elev. dia"],
    [thresholds.hypotension_systolic, "low", "low sys"],
  ]) {
    if (value === undefined || value < lo || value > hi) continue;
    const entry = byValue.get(value) || { cls, labels: [] };
    entry.labels.push(label);
    byValue.set(value, entry);
  }
  // Labels of nearby lines step down so that none covers another.
  let lastLabelY = -Infinity;
  for (const [value, { cls, labels }] of [...byValue].sort((a, b) => b[0] - a[0])) {
    const labelY = Math.max(y(value) + 4, lastLabelY + LABEL_LINE_PX);
    lastLabelY = labelY;
    lines.append(
      s("line", {
        class: `threshold threshold-${cls}`,
        x1: margin.left,
        x2: margin.left + plotW,
        y1: y(value),
        y2: y(value),
      }),
      s(
        "text",
        { class: `threshold-label threshold-${cls}`, x: margin.left + plotW + 6, y: labelY },
        labels.join(" · "),
      ),
    );
  }
  root.append(lines);

  // Baseline.
  if (session.baseline) {
    const base = s("g", { class: "baseline", "data-baseline": "" });
    for (const [value, name] of [
      [session.baseline.systolic, "sys"],
      [session.baseline.diastolic, "dia"],
    ]) {
      base.append(
        s("line", {
          x1: margin.left,
          x2: margin.left + plotW,
          y1: y(value),
          y2: y(value),
        }),
        s(
          "text",
          { class: "baseline-label", x: margin.left + 4, y: y(value) - 6 },
          `baseline ${name} ${mmHg(value)}`,
        ),
      );
    }
    root.append(base);
  }

  // Check windows: bands under the plot, coloured and labelled by state; overlapping
  // windows (a baseline and its confirming reading) take the second lane.
  const bands = s("g", { class: "checks" });
  const laneY = [28, 50, 72].map((offset) => margin.top + plotH + offset);
  const laneEnds = laneY.map(() => -Infinity);
  const ordered = checks
    .filter((c) => c.window_start)
    .sort((a, b) => parseTime(a.window_start) - parseTime(b.window_start));
  for (const check of ordered) {
    const x0 = x(parseTime(check.window_start));
    const x1 = check.window_end ? x(Math.min(parseTime(check.window_end), end)) : x0 + 8;
    // The first free lane, else the one that frees up first.
    let lane = laneEnds.findIndex((end) => end <= x0);
    if (lane < 0) lane = laneEnds.indexOf(Math.min(...laneEnds));
    laneEnds[lane] = Math.max(x1, x0 + 74);
    const stateText = CHECK_STATE_TEXT[check.state] ?? check.state;
    const mark = check.state === "satisfied" ? "✓ " : check.state === "overdue" ? "! " : "";
    bands.append(
      s(
        "g",
        { class: `check-window check-${check.state}`, "data-check-id": check.id, "data-state": check.state },
        s("title", {}, `${check.label || labelOf(CHECK_KIND_LABELS, check.kind)}: ${stateText}`),
        s("rect", { x: x0, y: laneY[lane], width: Math.max(8, x1 - x0), height: 20, rx: 4 }),
        s("text", { x: x0 + 5, y: laneY[lane] + 15, class: "check-label" }, `${mark}${stateText}`),
      ),
      // The window, faintly, over the plot.
      s("rect", {
        class: `check-shade check-${check.state}`,
        x: x0,
        y: margin.top,
        width: Math.max(2, x1 - x0),
        height: plotH,
      }),
    );
  }
  root.append(bands);

  // Doses: vertical lines with the drug and amount; an infusion is a band.
  const doseLayer = s("g", { class: "doses" });
  // Two rows of labels above the plot; a dose whose label has no room in either keeps
  // its marker and tooltip (the session view's dose list names it).
  const doseRowEnds = [-Infinity, -Infinity];
  for (const dose of [...doses].sort((a, b) => parseTime(a.given_at) - parseTime(b.given_at))) {
    const dx = x(parseTime(dose.given_at));
    const label = `${dose.increase ? "↑ " : ""}${dose.drug} ${mmHg(dose.amount_mg)} mg ${dose.route}`;
    const marker = s("g", { class: "dose", "data-dose-id": dose.id }, s("title", {}, label));
    if (dose.ended_at) {
      marker.append(
        s("rect", {
          class: "infusion",
          x: dx,
          y: margin.top,
          width: Math.max(2, x(Math.min(parseTime(dose.ended_at), end)) - dx),
          height: plotH,
        }),
      );
    }
    marker.append(
      s("line", { x1: dx, x2: dx, y1: margin.top - 4, y2: margin.top + plotH }),
      s("path", { d: `M${dx - 7},${margin.top - 18} L${dx + 7},${margin.top - 18} L${dx},${margin.top - 6} Z` }),
    );
    const doseRow = freeRow(doseRowEnds, dx + 10);
    if (doseRow >= 0) {
      doseRowEnds[doseRow] = dx + 10 + labelWidth(label);
      marker.append(s("text", { class: "dose-label", x: dx + 10, y: margin.top - 8 - doseRow * 18 }, label));
    }
    doseLayer.append(marker);
  }
  root.append(doseLayer);

  // Side effects: diamonds along the top of the plot with the effect and severity.
  const effectLayer = s("g", { class: "side-effects" });
  // Three rows of labels; an effect whose label has no room keeps its diamond and
  // tooltip (the session view's side-effect list names it).
  const effectRowEnds = [-Infinity, -Infinity, -Infinity];
  for (const effect of [...sideEffects].sort((a, b) => parseTime(a.observed_at) - parseTime(b.observed_at))) {
    const ex = x(parseTime(effect.observed_at));
    const label = `${labelOf(SIDE_EFFECT_LABELS, effect.effect)} (${SEVERITY_LABELS[effect.severity] ?? effect.severity})`;
    const free = freeRow(effectRowEnds, ex - 10);
    const row = free >= 0 ? free : effectRowEnds.indexOf(Math.min(...effectRowEnds));
    if (free >= 0) effectRowEnds[row] = ex + 12 + labelWidth(label);
    const ey = margin.top + 16 + row * 22;
    effectLayer.append(
      s(
        "g",
        { class: `side-effect severity-${effect.severity}`, "data-side-effect-id": effect.id },
        s("title", {}, `${label}${effect.note ? `: ${effect.note}` : ""}`),
        s("line", { class: "effect-stem", x1: ex, x2: ex, y1: ey, y2: margin.top + plotH }),
        s("path", { d: `M${ex},${ey - 8} L${ex + 8},${ey} L${ex},${ey + 8} L${ex - 8},${ey} Z` }),
        free >= 0 ? s("text", { class: "effect-label", x: ex + 12, y: ey + 5 }, label) : null,
      ),
    );
  }
  root.append(effectLayer);

  // Readings: lines first, markers over them.
  const series = s("g", { class: "readings" });
  const line = (field, cls) => {
    const points = valid
      .filter((r) => r[field] !== null && r[field] !== undefined)
      .map((r) => [x(parseTime(r.measured_at)), y(r[field])]);
    if (points.length > 1) series.append(s("path", { class: `series ${cls}`, d: pathOf(points) }));
  };
  line("systolic", "series-sys");
  line("diastolic", "series-dia");
  line("pulse_rate", "series-pulse");
  for (const r of readings) {
    const rx = x(parseTime(r.measured_at));
    const flags = (r.flags || []).map((f) => labelOf(FLAG_LABELS, f));
    if (r.valid === false || r.systolic === null) {
      series.append(
        s(
          "g",
          { class: "reading failed", "data-reading-id": r.id },
          s("title", {}, `Failed measurement at ${clockTime(r.measured_at)}`),
          s("text", { x: rx, y: margin.top + plotH - 6, "text-anchor": "middle" }, "✕"),
        ),
      );
      continue;
    }
    const title =
      `${r.source === "manual" ? "Manual" : "Cuff"} reading at ${clockTime(r.measured_at)}: ` +
      `${mmHg(r.systolic)}/${mmHg(r.diastolic)} mmHg` +
      (r.pulse_rate ? `, pulse ${mmHg(r.pulse_rate)}/min` : "") +
      (flags.length ? ` (${flags.join(", ")})` : "");
    const group = s(
      "g",
      {
        class: `reading source-${r.source}${flags.length ? " flagged" : ""}`,
        "data-reading-id": r.id,
        "data-source": r.source,
      },
      s("title", {}, title),
      s("path", { class: "mark-sys", d: triangle(rx, y(r.systolic), 12, true) }),
      s("path", { class: "mark-dia", d: triangle(rx, y(r.diastolic), 12, false) }),
    );
    if (r.pulse_rate) {
      group.append(s("circle", { class: "mark-pulse", cx: rx, cy: y(r.pulse_rate), r: 5 }));
    }
    if (r.source === "manual") {
      group.append(
        s("text", { class: "manual-tag", x: rx, y: y(r.systolic) - 16, "text-anchor": "middle" }, "M"),
      );
    }
    series.append(group);
  }
  root.append(series);

  // Now.
  if (!closed && now >= start && now <= end) {
    root.append(
      s("line", { class: "now-line", x1: x(now), x2: x(now), y1: margin.top, y2: margin.top + plotH }),
    );
  }

  // Legend (the markers' shapes, never colour alone).
  const legend = s("g", { class: "legend", transform: `translate(${margin.left}, ${height - 10})` });
  const items = [
    ["mark-sys", triangle(6, 0, 12, true), "systolic"],
    ["mark-dia", triangle(6, -12, 12, false), "diastolic"],
  ];
  let lx = 0;
  for (const [cls, d, label] of items) {
    legend.append(
      s("path", { class: cls, d, transform: `translate(${lx},-2)` }),
      s("text", { x: lx + 18, y: 0 }, label),
    );
    lx += 110;
  }
  legend.append(
    s("circle", { class: "mark-pulse", cx: lx + 6, cy: -6, r: 5 }),
    s("text", { x: lx + 18, y: 0 }, "pulse"),
    s("text", { x: lx + 90, y: 0, class: "manual-tag" }, "M"),
    s("text", { x: lx + 106, y: 0 }, "manual reading"),
  );
  root.append(legend);
  return root;
}
