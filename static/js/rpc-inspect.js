// The RPC panel's inspector: round trips of any application, paired from the firehose trace (answered, error,
// duplicate, unanswered), newest first through the page's one live list, and the requests still waiting.
import { $, el, setText } from "./dom.js";
import { on } from "./socket.js";
import { api } from "./api.js";
import { duration } from "./format.js";
import { LiveList } from "./list.js";

const MAX_INSPECT_ROWS = 100;

function tripRow(t) {
  const reply = t.status === "unanswered" ? `no reply after ${duration(t.waited_ms)}`
    : t.error ? `error: ${t.error}` : t.reply_body;
  return el("tr", { class: `st-${t.status}`, title: `correlation_id ${t.correlation_id}; client ${t.client || "?"}` },
    el("td", {}, t.status), el("td", {}, t.client_queue), el("td", {}, t.request_queue), el("td", {}, t.server || "?"),
    el("td", {}, t.request_body ?? ""), el("td", {}, reply ?? ""), el("td", {}, duration(t.latency_ms)));
}

/** The inspector of `section`; returns `refresh()` (the panel polls it while it is shown). */
export function setupInspect(section) {
  const list = new LiveList({ container: $("#rpc-inspect", section), cap: MAX_INSPECT_ROWS, render: tripRow });
  const traceButton = $("#rpc-trace-on", section);
  const stateNode = $("#rpc-inspect-state", section);
  const seen = new Set();
  function addTrip(t) {
    if (seen.has(t.id)) return;
    seen.add(t.id);
    list.add(t);
  }
  async function refresh() {
    try {
      const state = await api("GET", "/api/rpc/inspect");
      traceButton.hidden = state.inspecting || !state.trace?.available;
      const c = state.counts || {};
      setText(stateNode, state.inspecting
        ? `Listening to the trace: ${c.requests || 0} requests, ${c.answered || 0} answered, ${c.error || 0} errors, ` +
          `${c.duplicate || 0} duplicates, ${c.unanswered || 0} unanswered.`
        : state.reason || "not listening");
      for (const trip of state.roundtrips || []) addTrip(trip);
      const waiting = state.waiting || [];
      setText($("#rpc-inspect-waiting", section), waiting.length
        ? `Waiting for a reply: ${waiting.slice(-5).map((w) => `${w.request_queue} ← ${w.request_body} (${duration(w.age_ms)})`).join("; ")}`
        : "");
    } catch (error) {
      setText(stateNode, error.message);
    }
  }
  traceButton.addEventListener("click", async () => {
    traceButton.disabled = true;
    try {
      await api("POST", "/api/trace", { enabled: true });
    } catch (error) {
      setText(stateNode, error.message);
    } finally {
      traceButton.disabled = false;
      refresh();
    }
  });
  on("rpc_roundtrip", addTrip);
  return refresh;
}
