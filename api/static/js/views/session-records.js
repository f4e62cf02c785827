// A session's record (issue #14): who closed it and when, in plain words at the top of a
// closed session, and the exports of every session: the printable report (HTML, PDF),
// the REMS monitoring form, the FHIR Bundle and the readings as CSV.

import { h, setAttr, setText } from "../dom.js";
import { dateTime } from "./records-format.js";

let protocols = null; // one request per page load: the loaded protocols do not change

function remsProtocols(app) {
  if (!protocols) {
    protocols = app.api.get("/api/protocols").then(
      (list) => new Set(list.filter((p) => p.rems_monitoring_form).map((p) => p.name)),
      () => {
        protocols = null;
        return new Set(["esketamine-rems"]);
      },
    );
  }
  return protocols;
}

function link(label, href, kind, attrs = {}) {
  return h("a", { class: "button", href, "data-export": kind, ...attrs }, label);
}

export class SessionRecords {
  constructor(app, sessionId) {
    this.app = app;
    this.sessionId = sessionId;
    this.rems = null;
    this.closed = h("p", { class: "closed-header", role: "note", hidden: true });
    const base = `/api/sessions/${sessionId}`;
    this.remsLink = link("REMS form", `${base}/rems.html`, "rems", { target: "_blank", rel: "noopener", hidden: true });
    this.exports = app.can("export_records")
      ? h(
          "div",
          { class: "session-exports", role: "group", "aria-label": "Exports" },
          link("Report", `${base}/report`, "report", { target: "_blank", rel: "noopener" }),
          link("Report PDF", `${base}/report.pdf`, "pdf", { download: `session-${sessionId}-report.pdf` }),
          this.remsLink,
          link("FHIR", `${base}/fhir`, "fhir", { download: `session-${sessionId}-fhir.json` }),
          link("CSV", `${base}/readings.csv`, "csv", { download: `session-${sessionId}-readings.csv` }),
        )
      : null;
    this.root = h("div", { class: "session-records" }, this.closed, this.exports);
    remsProtocols(app).then((names) => {
      this.rems = names;
      if (this.last) this.update(...this.last);
    });
  }

  /** `session` as the API gives it, `doses` the session's doses. */
  update(session, doses) {
    this.last = [session, doses];
    const closed = Boolean(session.closed_at);
    this.closed.hidden = !closed;
    setAttr(this.root, "data-closed", closed ? "true" : "false");
    if (closed) {
      setText(
        this.closed,
        `Closed at ${dateTime(session.closed_at)} by ${session.closed_by || "unknown"}` +
          (session.close_reason ? ` · reason: ${session.close_reason}` : "") +
          " · read-only",
      );
    }
    const rems = (this.rems && this.rems.has(session.protocol)) || (doses || []).some((d) => d.drug === "esketamine");
    this.remsLink.hidden = !rems;
  }
}
