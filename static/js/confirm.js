// An in-page confirmation for destructive actions (purge, delete), as the management UI asks before them.
// A modal <dialog>: focus moves into it (to Cancel, the safe choice), Tab stays inside, Escape cancels,
// Enter or a click on the danger button confirms. Its text may be refreshed while it is open (the queue's
// depth changes under the user's eyes). Everything is set as text.
import { el } from "./dom.js";

let open = null; // the one confirmation on screen: {dialog, message, resolve}

/** Ask; resolves true (confirmed) or false (cancelled, Escape, or replaced by another question). */
export function confirmAction({ title, message, confirmLabel = "Confirm" }) {
  if (open) close(false);
  return new Promise((resolve) => {
    const titleId = `confirm-title-${Date.now()}`;
    const messageNode = el("p", { class: "confirm-message", id: `${titleId}-text` }, message);
    const cancel = el("button", { type: "button", class: "confirm-cancel" }, "Cancel");
    const confirm = el("button", { type: "button", class: "confirm-ok danger" }, confirmLabel);
    const dialog = el("dialog", { class: "confirm-dialog", "aria-labelledby": titleId,
      "aria-describedby": `${titleId}-text`, role: "alertdialog" },
    el("h2", { id: titleId }, title), messageNode,
    el("div", { class: "confirm-actions" }, cancel, confirm));
    cancel.addEventListener("click", () => close(false));
    confirm.addEventListener("click", () => close(true));
    dialog.addEventListener("cancel", (event) => { // Escape
      event.preventDefault();
      close(false);
    });
    open = { dialog, messageNode, resolve, returnFocus: document.activeElement };
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/** Change the question's text while it is open (no-op when none is). */
export function updateConfirm(message) {
  if (open && message !== undefined) open.messageNode.textContent = message;
}

export function confirmOpen() {
  return Boolean(open);
}

function close(answer) {
  if (!open) return;
  const { dialog, resolve, returnFocus } = open;
  open = null;
  dialog.close();
  dialog.remove();
  if (returnFocus?.isConnected) returnFocus.focus();
  resolve(answer);
}
