// Owns: what the page says about its own state, derived in one place so two parts of the page
// can never contradict each other — the connection pill (a logged-out visitor is "viewing
// live" over a visitor session, or "viewing" while it reconnects — never a red
// "disconnected"; a banned user is "banned"), the paint line under the palette
// ("Ready to paint" only when a paint could really go through), the zoom label, and when a
// paint needs more zoom. Pure logic, no DOM: tested in tests/ui.test.mjs.

/** Below this many CSS pixels per canvas pixel a click zooms in instead of painting. */
export const MIN_PAINT_SCALE = 4;
/** The zoom a click below MIN_PAINT_SCALE brings the view to. */
export const PAINT_ZOOM = 12;

/**
 * The connection pill: `{label, tone}` with tone "ok" | "busy" | "bad" | "neutral".
 * `s`: {connection, user, closed: {reason}|null, reconnecting}.
 */
export function connectionPill(s) {
  if (s.closed?.reason === "banned") return { label: "banned", tone: "bad" };
  if (!s.user) return s.connection === "connected" ? { label: "viewing live", tone: "ok" } : { label: "viewing", tone: "neutral" };
  if (s.connection === "connected") return { label: "connected", tone: "ok" };
  if (s.connection === "connecting") return { label: "connecting", tone: "busy" };
  if (s.closed?.reason === "kicked") return { label: "disconnected", tone: "bad" };
  return { label: s.reconnecting ? "reconnecting" : "disconnected", tone: s.reconnecting ? "busy" : "bad" };
}

/**
 * The paint line: `{text, ready, readOnly}`. `s`: {user, connection, closed, remainingMs}.
 * `ready` is true only when a paint would be accepted now (logged in, live, not banned, no
 * cooldown left); `readOnly` when painting is impossible for this page until something
 * outside it changes (logged out, banned, kicked).
 */
export function paintStatus(s, formatCountdown) {
  if (s.closed?.reason === "banned") return { text: "Banned: the canvas is read-only", ready: false, readOnly: true };
  if (!s.user) return { text: "Log in to paint", ready: false, readOnly: true };
  if (s.connection !== "connected") {
    return { text: s.connection === "connecting" ? "Connecting…" : "Offline: reconnecting…", ready: false, readOnly: false };
  }
  if (s.remainingMs > 0) return { text: `Next pixel in ${formatCountdown(s.remainingMs)}`, ready: false, readOnly: false };
  return { text: "Ready to paint", ready: true, readOnly: false };
}

/** The zoom label: CSS pixels per canvas pixel, "0.59×", "1.5×", "12×". */
export function formatZoom(scale) {
  if (!(scale > 0)) return "–";
  if (scale >= 10) return `${Math.round(scale)}×`;
  if (scale >= 1) return `${(Math.round(scale * 10) / 10).toString()}×`;
  return `${Number(scale.toPrecision(2)).toString()}×`;
}

/** Whether a click at `scale` may paint (else it zooms in first). */
export function canPaintAt(scale) {
  return scale >= MIN_PAINT_SCALE - 1e-9;
}

/**
 * The banner for a session that ended: `{text, tone}` (tone "bad" when it will not come back
 * by itself, "busy" while reconnecting). `reason`: a CloseReason name, or "connection_lost"
 * (a live session dropped without one) / "unreachable" (no session could be opened).
 */
export function closeBanner(reason, message, reconnecting) {
  const msg = String(message ?? "").trim();
  const why = (fallback) => (msg && msg !== reason ? msg : fallback);
  const tail = reconnecting ? " — reconnecting…" : "";
  switch (reason) {
    case "banned":
      return { text: `You are banned: ${why("no reason given")}. The canvas and chat are read-only.`, tone: "bad" };
    case "kicked":
      return { text: `An administrator disconnected you${msg && msg !== reason ? `: ${msg}` : ""}.`, tone: "bad" };
    case "session_revoked":
      return { text: "Your session ended (logged out elsewhere or expired): log in again.", tone: "bad" };
    case "shutdown":
      return { text: `The server is restarting${tail}`, tone: reconnecting ? "busy" : "bad" };
    case "slow_consumer":
      return { text: `Your connection fell behind the canvas${tail}`, tone: reconnecting ? "busy" : "bad" };
    case "idle_timeout":
      return { text: `Disconnected after being idle${tail}`, tone: reconnecting ? "busy" : "bad" };
    case "connection_lost":
      return { text: `Connection to the server lost${tail}`, tone: reconnecting ? "busy" : "bad" };
    case "unreachable":
      return { text: `Cannot reach the server${reconnecting ? " — retrying…" : ""}`, tone: reconnecting ? "busy" : "bad" };
    default:
      return { text: `Connection closed (${why(String(reason))})${tail}`, tone: reconnecting ? "busy" : "bad" };
  }
}
