// When the lab runs with an access token, ask for it once; the server keeps it in the session cookie.
import { el } from "./dom.js";

async function sessionState() {
  const response = await fetch("/api/session", { credentials: "same-origin" });
  return response.json();
}

function askForToken() {
  return new Promise((resolve) => {
    const input = el("input", { type: "password", id: "token-input", required: true, autocomplete: "current-password" });
    const error = el("p", { class: "error-text", role: "alert" });
    const form = el("form", { class: "token-form" },
      el("h2", {}, "Access token"),
      el("p", {}, "This lab is reachable from other machines, so it asks for its access token (RABBITLENS_TOKEN)."),
      el("label", { for: "token-input" }, "Token"), input, error,
      el("button", { type: "submit" }, "Unlock"));
    const dialog = el("dialog", { class: "token-dialog" }, form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const response = await fetch("/api/session", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: input.value }),
      });
      if (response.ok) {
        dialog.close();
        dialog.remove();
        resolve(true);
      } else {
        const body = await response.json().catch(() => ({}));
        error.textContent = body.error?.message || `refused (${response.status})`;
        input.select();
      }
    });
    dialog.addEventListener("cancel", (event) => event.preventDefault());
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  });
}

/** Resolves once this browser may use the API and the live socket. */
export async function ensureAuthorized() {
  const state = await sessionState();
  if (!state.token_required || state.authorized) return;
  await askForToken();
}
