// The server's clock, as seen from the tablet.
//
// Ages ("4 min ago") and countdowns are measured on the clinic's clock, not the tablet's:
// a tablet's clock may be wrong, and `vitalsd demo --speed N` runs the clinic's clock N
// times faster than real time. The server stamps every event with its own time (`at`);
// this estimates "server now" from those stamps: an offset, and a rate once two live
// stamps lie far enough apart.

const MIN_RATE_SPAN_MS = 4000; // local time between two stamps before trusting a rate
const RATE_SNAP = 0.05; // within 5% of real time: call it real time (network jitter)

export class ServerClock {
  constructor(localNow = () => performance.now()) {
    this.localNow = localNow;
    this.rate = 1;
    this.anchorLocal = null;
    this.anchorServer = null;
    this.first = null;
  }

  /** A stamp the server wrote at about the moment it sent it (snapshot, live events). */
  observe(serverIso) {
    const server = Date.parse(serverIso);
    if (Number.isNaN(server)) return;
    const local = this.localNow();
    if (this.first === null) {
      this.anchorLocal = local;
      this.anchorServer = server;
      this.first = { local, server };
      return;
    }
    const span = local - this.first.local;
    const predicted = this.predict(local);
    if (span >= MIN_RATE_SPAN_MS) {
      const measured = (server - this.first.server) / span;
      if (measured > 0) this.rate = Math.abs(measured - 1) < RATE_SNAP ? 1 : measured;
      this.anchorServer = server;
    } else {
      // The server's clock has reached at least `server`: catch up, never run backwards.
      this.anchorServer = Math.max(server, predicted);
    }
    this.anchorLocal = local;
  }

  /** A new connection: stamps before this one may come from a different clock rate. */
  restart() {
    this.first = null;
  }

  predict(local) {
    return this.anchorServer + (local - this.anchorLocal) * this.rate;
  }

  /** Milliseconds since the epoch on the server's clock (the tablet's until known). */
  now() {
    if (this.anchorLocal === null) return Date.now();
    return this.predict(this.localNow());
  }
}
