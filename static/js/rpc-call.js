// The RPC panel's one call: fib(n) through the lab's client, the result, its latency and the server that answered.
import { $, setText } from "./dom.js";
import { api, showError } from "./api.js";
import { duration } from "./format.js";
import { expiry } from "./rpc-timeline.js";

export function setupCall(section) {
  const form = $("#rpc-call-form", section);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    const button = form.querySelector("button[type=submit]");
    const result = $("#rpc-call-result", section);
    const errorNode = $("#rpc-call-error", section);
    showError(errorNode, null);
    button.disabled = true;
    setText(form.querySelector(".rpc-busy"), "waiting for the reply…");
    try {
      const reply = await api("POST", "/api/rpc/call", {
        n: Number(f.n.value), queue: f.queue.value, timeout_s: Number(f.timeout_s.value) || 5,
        reply_mode: f.reply_mode.value, expire: f.expire.checked });
      const flag = $("#rpc-call-flag", section);
      flag.hidden = !reply.not_integer;
      setText(flag, reply.not_integer ? `${reply.not_integer}: the reply was ${reply.reply}` : "");
      setText(result.querySelector('[data-field="result"]'), reply.not_integer ? "— (no exact result)" : reply.result);
      setText(result.querySelector('[data-field="expiration"]'), expiry(reply));
      setText(result.querySelector('[data-field="latency"]'), duration(reply.latency_ms));
      setText(result.querySelector('[data-field="server"]'), reply.server || "(no x-rpc-server header)");
      setText(result.querySelector('[data-field="correlation_id"]'), reply.correlation_id);
      result.hidden = false;
    } catch (error) {
      result.hidden = true;
      showError(errorNode, error);
    } finally {
      button.disabled = false;
      setText(form.querySelector(".rpc-busy"), "");
    }
  });
}
