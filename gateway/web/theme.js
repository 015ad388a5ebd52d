// Owns: light and dark mode. The page follows the system (prefers-color-scheme) until the
// user picks one with #theme-toggle (system → dark → light → system), remembered in
// localStorage; the choice is `data-theme` on <html> ("light" | "dark", absent = system),
// which style.css reads. Listeners (the canvas's background) hear about every change.

const KEY = "pixelparty.theme";
const ORDER = ["system", "dark", "light"];
const LABELS = { system: "Theme: system", dark: "Theme: dark", light: "Theme: light" };

/** The next choice in the toggle's cycle. */
export function nextTheme(choice) {
  return ORDER[(ORDER.indexOf(choice) + 1) % ORDER.length];
}

/** The theme in effect: the choice, or the system's when the choice is "system". */
export function effectiveTheme(choice, systemDark) {
  if (choice === "dark" || choice === "light") return choice;
  return systemDark ? "dark" : "light";
}

export class Theme {
  constructor(button) {
    this.button = button;
    this.listeners = [];
    this.media = globalThis.matchMedia?.("(prefers-color-scheme: dark)") ?? null;
    let saved = null;
    try {
      saved = localStorage.getItem(KEY);
    } catch {
      // storage disabled: the choice lasts for this page only
    }
    this.choice = ORDER.includes(saved) ? saved : "system";
    this.media?.addEventListener?.("change", () => this.apply());
    button?.addEventListener("click", () => this.set(nextTheme(this.choice)));
    this.apply();
  }

  get effective() {
    return effectiveTheme(this.choice, Boolean(this.media?.matches));
  }

  set(choice) {
    this.choice = choice;
    try {
      if (choice === "system") localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, choice);
    } catch {
      // storage disabled
    }
    this.apply();
  }

  onChange(fn) {
    this.listeners.push(fn);
  }

  apply() {
    const root = document.documentElement;
    if (this.choice === "system") delete root.dataset.theme;
    else root.dataset.theme = this.choice;
    root.dataset.effectiveTheme = this.effective;
    if (this.button) {
      this.button.dataset.choice = this.choice;
      this.button.setAttribute("aria-label", `${LABELS[this.choice]} (switch)`);
      this.button.title = `${LABELS[this.choice]} — click to switch`;
    }
    for (const fn of this.listeners) fn(this.effective);
  }
}
