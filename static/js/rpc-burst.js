// The RPC panel's burst: many calls with a bounded concurrency, their progress, a cancel button and a summary
// (calls/s, percentiles, which servers answered). The queue, timeout and expiry come from the call form.
import { $, el, setText } from "./dom.js";
import { on, sessionId } from "./socket.js";
import { api, showError } from "./api.js";
import { duration } from "./format.js";

export function setupBurst(section) {
  const form = $("#rpc-burst-form", section);
  const callForm = $("#rpc-call-form", section);
  const progressBar = $("#rpc-burst-progress", section);
  const cancelButton = $("#rpc-burst-cancel", section);
  const count = $("#rpc-burst-count", section);
  const errorNode = $("#rpc-burst-error", section);
  let running = false;
  let burstId = null;

  cancelButton.addEventListener("click", async () => {
    if (!burstId) return;
    cancelButton.disabled = true;
    try {
      await api("DELETE", `/api/rpc/bursts/${encodeURIComponent(burstId)}`);
    } catch (error) {
      showError(errorNode, error);
    }
  });
  on("rpc_burst_progress", (p) => {
    if (!running) return;
    burstId = p.burst_id;
    cancelButton.hidden = false;
    progressBar.max = p.calls;
    progressBar.value = p.done;
    setText(count, `${p.done}/${p.calls} · ${p.calls_per_s}/s`);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    const c = callForm.elements;
    const summaryNode = $("#rpc-burst-summary", section);
    const button = form.querySelector("button[type=submit]");
    showError(errorNode, null);
    const parts = f.ns.value.split(/[\s,]+/).filter(Boolean).map(Number);
    const body = { calls: Number(f.calls.value) || 1, concurrency: Number(f.concurrency.value) || 1,
      queue: c.queue.value, timeout_s: Number(c.timeout_s.value) || 5, reply_mode: f.reply_mode.value,
      expire: c.expire.checked };
    // The burst ends if this page goes (closed tab, lost link): the server cancels it with this session.
    if (sessionId()) body.sid = sessionId();
    if (parts.length === 1) body.n = parts[0];
    else body.ns = parts;
    button.disabled = true;
    running = true;
    progressBar.max = body.calls;
    progressBar.value = 0;
    setText(count, "starting…");
    try {
      const s = await api("POST", "/api/rpc/burst", body);
      progressBar.value = progressBar.max;
      setText(count, `${s.done}/${s.calls} in ${s.elapsed_s} s`);
      const facts = [["calls/s", s.calls_per_s], ["ok", s.ok], ["errors", s.errors], ["timeouts", s.timeouts],
        ["p50", duration(s.p50_ms)], ["p90", duration(s.p90_ms)], ["p99", duration(s.p99_ms)],
        ["servers", Object.entries(s.servers || {}).map(([k, v]) => `${k}: ${v}`).join(", ") || "—"]];
      if (s.not_integer) facts.push(["not integers", `${s.not_integer} (the server used floating point)`]);
      if (s.cancelled) facts.push(["cancelled", `${s.cancelled} (${s.cancelled_calls} calls not made or dropped)`]);
      if (s.first_error) facts.push(["first error", s.first_error]);
      summaryNode.replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
      summaryNode.hidden = false;
    } catch (error) {
      showError(errorNode, error);
      setText(count, "");
    } finally {
      running = false;
      burstId = null;
      cancelButton.hidden = true;
      cancelButton.disabled = false;
      button.disabled = false;
    }
  });
}
