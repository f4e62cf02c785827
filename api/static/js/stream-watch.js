// When the stream is down, the whole ward says so (issue #14): after a few seconds
// without it, a bar under the alert banner and every value on screen read "not live
// since hh:mm" (the last moment the tablet was live, on the clinic's clock), until the
// stream is back. A session view opened meanwhile reloads itself on reconnect.

import { h, setAttr, setText } from "./dom.js";
import { clockTime } from "./format.js";
import { StreamStatus } from "./stream.js";

// A reconnect normally takes well under a second: past this the values may be stale.
export const STREAM_DOWN_AFTER_MS = 5_000;

export class StreamWatch {
  constructor(app) {
    this.app = app;
    this.live = false;
    this.wasLive = false;
    this.downAt = null; // performance.now() when the stream stopped being live
    this.lastLiveAt = null; // clinic clock ms, for the words
    this.text = h("span", { class: "stream-down-text" });
    this.root = h(
      "div",
      { class: "stream-down", id: "stream-down", role: "alert", hidden: true },
      this.text,
    );
    this.timer = null;
  }

  /** The stream's status changed (stream.js StreamStatus). */
  status(status) {
    const live = status === StreamStatus.LIVE || status === StreamStatus.BEHIND;
    if (live === this.live) return;
    this.live = live;
    clearTimeout(this.timer);
    if (live) {
      const wasDown = this.wasLive;
      this.wasLive = true;
      this.downAt = null;
      this.show(false);
      // Whatever a view loaded while away may be old or missing: load it again.
      if (wasDown && this.app.view && this.app.view.scheduleReload) this.app.view.scheduleReload();
      return;
    }
    if (!this.wasLive || status === StreamStatus.STOPPED || status === StreamStatus.SIGNED_OUT) return;
    this.downAt = performance.now();
    this.lastLiveAt = this.app.clock.now();
    this.timer = setTimeout(() => this.show(true), STREAM_DOWN_AFTER_MS);
  }

  /** "not live since hh:mm" while the ward is not live, else null. */
  get notLiveSince() {
    return this.root.hidden ? null : `not live since ${clockTime(this.lastLiveAt)}`;
  }

  show(down) {
    if (down && (this.live || this.downAt === null)) return;
    this.root.hidden = !down;
    setAttr(document.body, "data-live", down ? "false" : "true");
    setText(
      this.text,
      down ? `Not live since ${clockTime(this.lastLiveAt)}: the values on screen may be out of date. Reconnecting…` : "",
    );
    this.app.queueRender();
  }
}
