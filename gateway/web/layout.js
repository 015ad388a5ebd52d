// Owns: the page's floating layout around the full-window canvas — measuring the floating
// bars (top bar, palette dock, phone bottom bar, HUD, inspector) into CSS variables so the
// pieces that float over the canvas never overlap each other (the canvas itself is never
// resized by any of this); the side panel's show / hide toggle (desktop, remembered); the
// phone's bottom bar and its sheets (`body[data-sheet]`: paint | chat | friends | admin); and
// the phone's account drop-down.

const SIDEBAR_KEY = "pixelparty.sidebar";
export const SHEETS = ["paint", "chat", "friends", "admin"];
export const PHONE_QUERY = "(max-width: 760px)";

export class Layout {
  constructor() {
    this.body = document.body;
    this.root = document.documentElement;
    this.phone = globalThis.matchMedia?.(PHONE_QUERY) ?? { matches: false, addEventListener() {} };
    this.sheetListeners = [];
    this.sidebarListeners = [];
    this.insetListeners = [];
    const $ = (id) => document.getElementById(id);
    this.els = {
      topbar: $("topbar"),
      dock: $("dock"),
      dockCard: document.querySelector(".dock-card"),
      bottombar: $("bottombar"),
      hud: $("hud"),
      inspector: $("inspector"),
      sidebarToggle: $("sidebar-toggle"),
      accountToggle: $("account-toggle"),
    };
    const measure = () => this.measure();
    this.observer = new ResizeObserver(measure);
    for (const el of [this.els.topbar, this.els.dockCard, this.els.bottombar, this.els.hud, this.els.inspector]) {
      if (el) this.observer.observe(el);
    }
    // The inspector and the bottom bar come and go (hidden): a box of 0 is observed too, but
    // attribute changes are the reliable signal.
    new MutationObserver(measure).observe(this.els.inspector, { attributes: true, attributeFilter: ["hidden"] });
    this.phone.addEventListener("change", () => {
      this.setAccountOpen(false);
      measure();
    });

    let saved = null;
    try {
      saved = localStorage.getItem(SIDEBAR_KEY);
    } catch {
      // storage disabled
    }
    this.setSidebar(saved !== "closed", { save: false });
    this.els.sidebarToggle.addEventListener("click", () => this.setSidebar(this.body.dataset.sidebar === "closed"));
    this.els.accountToggle.addEventListener("click", () => this.setAccountOpen(this.body.dataset.accountOpen !== "true"));
    for (const b of this.els.bottombar.querySelectorAll("button[data-sheet]")) {
      b.addEventListener("click", () => this.setSheet(b.dataset.sheet === this.sheet && b.dataset.sheet !== "paint" ? "paint" : b.dataset.sheet));
    }
    this.setSheet("paint");
    measure();
  }

  get isPhone() {
    return Boolean(this.phone.matches);
  }

  get sheet() {
    return this.body.dataset.sheet;
  }

  /** Phone: shows one panel as a sheet ("paint" = none: the canvas with its dock). */
  setSheet(name) {
    if (!SHEETS.includes(name)) name = "paint";
    this.body.dataset.sheet = name;
    for (const b of this.els.bottombar.querySelectorAll("button[data-sheet]")) {
      b.setAttribute("aria-pressed", String(b.dataset.sheet === name));
    }
    if (name !== "paint") this.setAccountOpen(false);
    for (const fn of this.sheetListeners) fn(name);
    this.measure();
  }

  onSheet(fn) {
    this.sheetListeners.push(fn);
  }

  /** `fn(open)` after the desktop's side panel is shown or hidden. */
  onSidebar(fn) {
    this.sidebarListeners.push(fn);
  }

  /** `fn({top, right, bottom, left})`: how much of the window the floating bars cover. */
  onInsets(fn) {
    this.insetListeners.push(fn);
    this.measure();
  }

  /** Desktop: shows or hides the side panel (it floats over the canvas, which keeps its box). */
  setSidebar(open, { save = true } = {}) {
    this.body.dataset.sidebar = open ? "open" : "closed";
    for (const fn of this.sidebarListeners ?? []) fn(open);
    const t = this.els.sidebarToggle;
    t.setAttribute("aria-expanded", String(open));
    t.setAttribute("aria-label", open ? "Hide the side panel" : "Show the side panel");
    if (save) {
      try {
        localStorage.setItem(SIDEBAR_KEY, open ? "open" : "closed");
      } catch {
        // storage disabled
      }
    }
    this.measure();
  }

  /** Phone: the log-in form / account line drops down from the top bar. */
  setAccountOpen(open) {
    this.body.dataset.accountOpen = String(open);
    this.els.accountToggle.setAttribute("aria-expanded", String(open));
    this.measure();
  }

  /** The account toggle's label ("Log in" or the user's name). */
  setAccountLabel(text) {
    this.els.accountToggle.textContent = text;
  }

  /** Shows the bottom bar's Admin button (phone) to administrators only. */
  setAdmin(isAdmin) {
    document.getElementById("bottombar-admin").hidden = !isAdmin;
    if (!isAdmin && this.sheet === "admin") this.setSheet("paint");
  }

  measure() {
    const px = (v) => `${Math.ceil(v)}px`;
    const height = (el) => (el && !el.hidden ? el.getBoundingClientRect().height : 0);
    const width = (el) => (el && !el.hidden ? el.getBoundingClientRect().width : 0);
    const s = this.root.style;
    const top = height(this.els.topbar);
    const bottomBar = this.isPhone ? height(this.els.bottombar) : 0;
    const dock = height(this.els.dockCard);
    s.setProperty("--top-h", px(top));
    s.setProperty("--bottom-h", px(bottomBar));
    s.setProperty("--dock-h", px(dock));
    const side = !this.isPhone && this.body.dataset.sidebar !== "closed" ? width(document.getElementById("sidebar")) : 0;
    const inset = { top, right: side, bottom: bottomBar + (dock ? dock + 8 : 0), left: 0 };
    for (const fn of this.insetListeners) fn(inset);
    if (this.isPhone) {
      s.setProperty("--inspector-w", "0px");
      s.setProperty("--hud-w", "0px");
    } else {
      const inspectorW = width(this.els.inspector);
      s.setProperty("--inspector-w", px(inspectorW ? inspectorW + 8 : 0));
      s.setProperty("--hud-w", px(width(this.els.hud) + 8));
    }
  }
}
