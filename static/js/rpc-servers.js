// The RPC panel's fib servers: start some (prefetch, work and ack delay), see each one's counters, stop one
// gracefully or kill it.
import { $, el } from "./dom.js";
import { on } from "./socket.js";
import { api, showError } from "./api.js";
import { isEnded, mountClearStopped } from "./rpc-ended.js";

/** The servers of `section`; returns `refresh()` (the panel polls it while it is shown). */
export function setupServers(section) {
  const form = $("#rpc-servers-form", section);
  const callForm = $("#rpc-call-form", section);
  const body = $("#rpc-servers", section);
  const errorNode = $("#rpc-servers-error", section);

  function render(servers) {
    body.replaceChildren(...servers.map((s) => {
      const stop = el("button", { type: "button", title: "Graceful: stop consuming, finish, ack, close" }, "Stop");
      const kill = el("button", { type: "button", class: "danger",
        title: "SIGKILL now: what it holds unacked is redelivered" }, "Kill");
      stop.addEventListener("click", () => stopServer(s.id, false, stop));
      kill.addEventListener("click", () => stopServer(s.id, true, kill));
      return el("tr", { dataset: { id: s.id, state: s.state }, class: isEnded(s) ? "ended" : null },
        el("td", {}, s.id), el("td", {}, s.pid), el("td", {}, s.state),
        el("td", { class: "handled" }, s.handled), el("td", {}, s.errors), el("td", {}, s.in_flight),
        el("td", {}, s.redelivered), el("td", { class: "actions" }, ...(isEnded(s) ? [] : [stop, kill])));
    }));
  }
  async function refresh() {
    try {
      render((await api("GET", "/api/rpc/servers")).servers);
    } catch (error) {
      showError(errorNode, error);
    }
  }
  async function stopServer(id, kill, button) {
    button.disabled = true;
    showError(errorNode, null);
    try {
      await api("DELETE", `/api/rpc/servers/${encodeURIComponent(id)}${kill ? "?kill=1" : ""}`);
    } catch (error) {
      showError(errorNode, error);
    }
    refresh();
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    showError(errorNode, null);
    try {
      await api("POST", "/api/rpc/servers", { count: Number(f.count.value) || 1,
        prefetch: Number(f.prefetch.value) || 1, work_ms: Number(f.work_ms.value) || 0,
        ack_delay_ms: Number(f.ack_delay_ms.value) || 0, queue: callForm.elements.queue.value });
    } catch (error) {
      showError(errorNode, error);
    } finally {
      button.disabled = false;
      refresh();
    }
  });
  on("rpc_servers", (data) => render(data.servers || []));
  on("rpc_state", (state) => render(state.servers || []));
  mountClearStopped(body.closest(".rpc-scroll"), (error) => showError(errorNode, error), refresh);
  return refresh;
}
