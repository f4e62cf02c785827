"""Checks run inside the page: WCAG contrast of every visible text, touch target sizes,
layout shifts. Each returns what fails, so a test's message names the culprits."""

from __future__ import annotations

from typing import Any, Final

from playwright.sync_api import Page

# WCAG 2.1 SC 1.4.3 (contrast, AA): 4.5:1, or 3:1 for large text (24 px, or 18.66 px
# bold). The background is found by walking up the ancestors, blending translucent
# layers, down to the page's own background.
LOW_CONTRAST_JS: Final = """
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r, g, b, a };
  };
  const lum = ({ r, g, b }) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  const background = (el) => {
    const layers = [];
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
      const bg = parse(getComputedStyle(n).backgroundColor);
      if (bg && bg.a > 0) { layers.push(bg); if (bg.a >= 1) break; }
    }
    let color = { r: 255, g: 255, b: 255, a: 1 };
    for (const layer of layers.reverse()) color = over(layer, color);
    return color;
  };
  const failures = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || !el || seen.has(el)) continue;
    seen.add(el);
    if (el.closest("svg, [hidden], .visually-hidden, noscript")) continue;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility !== "visible" || box.width === 0 || box.height === 0) continue;
    const fg = over(parse(style.color), background(el));
    const bg = background(el);
    const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      const text = el.textContent.trim().slice(0, 40);
      failures.push(`${el.tagName.toLowerCase()}.${el.className} "${text}": ${ratio.toFixed(2)}`);
    }
  }
  return failures;
}
"""

# WCAG 2.5.5 / platform guidance: touch targets at least 44 x 44 CSS px. A checkbox
# counts by its label, which is what a finger hits.
SMALL_TARGETS_JS: Final = """
() => {
  const targets = document.querySelectorAll(
    "a[href], button, select, textarea, input:not([type=checkbox]), label.check-field"
  );
  const failures = [];
  for (const el of targets) {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (box.width === 0 || style.visibility !== "visible" || el.closest("[hidden]")) continue;
    if (box.width < 44 || box.height < 44) {
      const text = (el.textContent || el.name || "").trim().slice(0, 30);
      const size = `${Math.round(box.width)}x${Math.round(box.height)}`;
      failures.push(`${el.tagName.toLowerCase()} "${text}": ${size}`);
    }
  }
  return failures;
}
"""

# Layout Instability API: the shift score since `start_layout_shift_record()`.
START_LAYOUT_SHIFTS_JS: Final = """
() => {
  window.__shifts = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (!entry.hadRecentInput) {
        window.__shifts.push({
          value: entry.value,
          nodes: entry.sources.map((s) => {
            const node = s.node;
            if (!node) return "?";
            const element = node.nodeType === 3 ? node.parentElement : node;
            return `${element.tagName}.${element.className}: ${node.textContent.slice(0, 30)}`;
          }),
        });
      }
    }
  }).observe({ type: "layout-shift" });
}
"""

CLIPPED_VITALS_JS: Final = """
() => [...document.querySelectorAll(".tile[data-occupied='true'] .tile-vitals")]
  .filter((row) => row.scrollWidth > row.clientWidth + 1)
  .map((row) => row.closest(".tile").querySelector(".chair-name").textContent)
"""


def low_contrast(page: Page) -> list[str]:
    found: list[str] = page.evaluate(LOW_CONTRAST_JS)
    return found


def small_targets(page: Page) -> list[str]:
    found: list[str] = page.evaluate(SMALL_TARGETS_JS)
    return found


def start_layout_shift_record(page: Page) -> None:
    page.evaluate(START_LAYOUT_SHIFTS_JS)


def layout_shifts(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate("() => window.__shifts")
    return found


def clipped_vitals(page: Page) -> list[str]:
    found: list[str] = page.evaluate(CLIPPED_VITALS_JS)
    return found
