// The RPC panel's ended servers and refused calls: a server the lab stopped or killed (or that exited) stays in
// the list, greyed with its final counts, until "Clear stopped"; a call refused before anything was sent (no
// server, bad n, bad queue) gets its row in the round-trip list with the reason. Everything goes in as text.
import { el } from "./dom.js";
import { api } from "./api.js";

const ENDED = new Set(["stopped", "killed", "exited"]);

/** Whether a server of GET /api/rpc/servers no longer runs (no Stop / Kill for it). */
export const isEnded = (server) => ENDED.has(server.state);

/** The "Clear stopped" button, put after the servers table; ``refresh()`` re-reads the list afterwards. */
export function mountClearStopped(table, showError, refresh) {
  const button = el("button", { type: "button", id: "rpc-servers-clear",
    title: "Forget the stopped, killed and exited servers (running ones stay)" }, "Clear stopped");
  button.addEventListener("click", async () => {
    button.disabled = true;
    showError(null);
    try {
      await api("DELETE", "/api/rpc/servers?stopped=1");
    } catch (error) {
      showError(error);
    } finally {
      button.disabled = false;
      refresh();
    }
  });
  table.after(el("div", { class: "rpc-actions" }, button));
  return button;
}

/** The round-trip row of an ``rpc_refused`` event, as the panel's ``fill()`` takes it. */
export function refusedRow(d) {
  const reason = d.reason || "refused";
  return { kind: "refused", status: `refused · ${d.status}`, what: `fib(${d.n ?? "?"}) → ${reason}`, latency: null,
    time: d.time, title: `not sent to ${d.queue ?? "?"}: ${reason}` };
}
