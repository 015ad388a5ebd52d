// Owns: the confirmation dialog (#confirm-dialog, a modal <dialog>) that every destructive
// action goes through — a ban, a rollback — with optional fields (reason, duration, time
// window). One dialog at a time; Escape or Cancel answers null.

import { h } from "./ui.js";

/**
 * Asks the user to confirm. `fields`: [{name, label, type = "text", value = "", min, max,
 * placeholder}]. Resolves the fields' values by name (strings) on confirm, null on cancel.
 */
export function confirmAction({ title, text, confirmLabel = "Confirm", danger = true, fields = [] }) {
  const dialog = document.getElementById("confirm-dialog");
  if (dialog.open) dialog.close("cancel");
  const inputs = fields.map((f) => h("input", {
    id: `confirm-${f.name}`, name: f.name, type: f.type ?? "text", value: f.value ?? "",
    min: f.min, max: f.max, placeholder: f.placeholder, autocomplete: "off",
    inputmode: f.type === "number" ? "numeric" : null,
  }));
  const form = h("form", { method: "dialog", class: "dialog-form" },
    h("h2", { id: "confirm-title" }, title),
    text ? h("p", { id: "confirm-text" }, text) : null,
    fields.map((f, i) => [h("label", { for: `confirm-${f.name}` }, f.label), inputs[i]]),
    h("div", { class: "button-row dialog-buttons" },
      h("button", { type: "submit", value: "cancel", id: "confirm-cancel", formnovalidate: true }, "Cancel"),
      h("button", { type: "submit", value: "ok", id: "confirm-ok", class: danger ? "danger-solid" : "primary" }, confirmLabel),
    ),
  );
  dialog.replaceChildren(form);
  dialog.setAttribute("aria-labelledby", "confirm-title");
  if (text) dialog.setAttribute("aria-describedby", "confirm-text");
  else dialog.removeAttribute("aria-describedby");
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (dialog.returnValue !== "ok") return resolve(null);
      const values = {};
      fields.forEach((f, i) => {
        values[f.name] = inputs[i].value;
      });
      resolve(values);
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    (inputs[0] ?? dialog.querySelector("#confirm-cancel")).focus();
  });
}
