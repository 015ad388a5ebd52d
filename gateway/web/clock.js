// Owns: the estimate of the server's clock (from Welcome.server_time_ms and Pong round trips)
// and the paint-cooldown arithmetic and wording built on it. Pure logic, no DOM: tested in
// tests/app.test.mjs.

export class ServerClock {
  constructor() {
    /** server time − local time, in ms. */
    this.offsetMs = 0;
    /** Round trip of the sample the offset comes from (Infinity: a one-way sample). */
    this.rttMs = Infinity;
    this.synced = false;
  }

  /** A one-way sample (Welcome): the server's time as the frame arrived. */
  sample(serverTimeMs, localNow = Date.now()) {
    this.offsetMs = Number(serverTimeMs) - localNow;
    this.rttMs = Infinity;
    this.synced = true;
  }

  /**
   * A Ping/Pong round trip: the server read its clock about half way. Kept when it is at least
   * as precise as the sample held (or that one is over a minute old), so one slow round trip
   * does not spoil a good estimate.
   */
  pong(serverTimeMs, sentLocal, receivedLocal) {
    const rtt = Math.max(0, receivedLocal - sentLocal);
    const stale = this.sampledAt === undefined || receivedLocal - this.sampledAt > 60_000;
    if (!this.synced || rtt <= this.rttMs || stale) {
      this.offsetMs = Number(serverTimeMs) - (sentLocal + rtt / 2);
      this.rttMs = rtt;
      this.sampledAt = receivedLocal;
      this.synced = true;
    }
  }

  /** The server's time now (ms since the epoch). */
  now(localNow = Date.now()) {
    return localNow + this.offsetMs;
  }
}

/** Milliseconds until the server time `readyAtMs` (Number or BigInt), never negative. */
export function remainingMs(readyAtMs, clock, localNow = Date.now()) {
  if (readyAtMs === null || readyAtMs === undefined) return 0;
  return Math.max(0, Number(readyAtMs) - clock.now(localNow));
}

/** A short countdown text: "4.2 s" under 10 s, "42 s", then "1:05". */
export function formatCountdown(ms) {
  if (ms <= 0) return "0 s";
  const s = ms / 1000;
  if (s < 10) return `${(Math.ceil(s * 10) / 10).toFixed(1)} s`;
  if (s < 60) return `${Math.ceil(s)} s`;
  const whole = Math.ceil(s);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}
