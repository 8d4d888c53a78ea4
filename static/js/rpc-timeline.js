// The RPC panel's timeline: one row per call of the lab's client (waiting, then its reply, timeout or error) and
// one per orphan reply, newest first, through the page's one live list. Everything from the broker is text.
import { $, el, setText } from "./dom.js";
import { on } from "./socket.js";
import { duration, timeOfDay } from "./format.js";
import { LiveList } from "./list.js";
import { refusedRow } from "./rpc-ended.js";

const MAX_ROWS = 200;

export function shortId(id) {
  return id ? String(id).slice(0, 8) : "—";
}

export const expiry = (d) => (d.expiration ? `expires in ${d.expiration} ms` : "no expiration");

const what = (d, tail) => `fib(${d.n ?? d.body ?? "?"})${tail ? ` → ${tail}` : ""}`;

function fill(li, { kind, status, what, latency, time, title }) {
  li.className = `rt-${kind}`;
  setText(li.querySelector(".rt-time"), timeOfDay(time));
  setText(li.querySelector(".rt-status"), status);
  if (what !== undefined) setText(li.querySelector(".rt-what"), what);
  setText(li.querySelector(".rt-latency"), duration(latency));
  const bar = li.querySelector(".rt-bar");
  const fraction = latency ? Math.min(1, Math.max(0.02, (Math.log10(latency) + 1) / 5)) : 0.02;
  bar.style.width = `${(fraction * 100).toFixed(1)}%`;
  if (title) li.title = title;
}

/** The timeline of `section`; each reply's latency also goes to `histogram`. */
export function setupTimeline(section, histogram) {
  const rows = new Map(); // correlation id -> row of the timeline
  const forget = (li) => {
    if (rows.get(li.dataset.cid) === li) rows.delete(li.dataset.cid);
  };
  const list = new LiveList({ container: $("#rpc-timeline", section), cap: MAX_ROWS, onRemove: forget,
    onDrop: forget });

  // A call's row is made at once (its reply may follow in the same frame) and painted with the next frame.
  function row(cid) {
    let li = rows.get(cid);
    if (!li) {
      li = el("li", { class: "rt-waiting", dataset: { cid: cid || "" } },
        el("span", { class: "rt-time muted" }), el("span", { class: "rt-status" }), el("span", { class: "rt-what" }),
        el("span", { class: "rt-cid muted", title: cid || "" }, shortId(cid)), el("span", { class: "rt-latency" }),
        el("span", { class: "rt-track" }, el("span", { class: "rt-bar" })));
      if (cid) rows.set(cid, li);
      list.add(li);
    }
    return li;
  }

  function onRequest(d) {
    fill(row(d.correlation_id), { kind: "waiting", status: "waiting…", what: `${what(d)} · ${expiry(d)}`,
      time: d.time, title: `to ${d.queue}, reply_to ${d.reply_to} (${d.reply_mode}), ${expiry(d)}` });
  }
  function onReply(d) {
    if (d.not_integer) { // a float from the server (the Node tutorial's): never shown as the result
      fill(row(d.correlation_id), { kind: "error", status: `not an integer · ${d.server || "?"}`,
        what: what(d, `${d.reply} — ${d.not_integer}`), latency: d.latency_ms, time: d.time, title: d.not_integer });
    } else {
      fill(row(d.correlation_id), { kind: "ok", status: `reply · ${d.server || "?"}`, what: what(d, d.result),
        latency: d.latency_ms, time: d.time });
    }
    histogram.add(d.latency_ms);
  }
  function onTimeout(d) {
    fill(row(d.correlation_id), { kind: "timeout", status: "timeout", what: what(d, d.message), time: d.time,
      latency: null, title: d.message });
  }
  function onError(d) {
    fill(row(d.correlation_id), { kind: "error", status: d.code === "server_error" ? `error · ${d.server || "?"}` : d.code,
      what: what(d, d.message), latency: d.latency_ms, time: d.time, title: d.message });
  }
  function onOrphan(d) {
    const li = row(`orphan-${d.correlation_id}-${Math.random()}`);
    fill(li, { kind: "orphan", status: `orphan · ${d.reason}`, what: `${shortId(d.correlation_id)} → ${d.body}`,
      latency: d.latency_ms, time: d.time,
      title: `a ${d.reason} reply from ${d.server || "an unknown server"}: dropped, as the tutorial says` });
    setText(li.querySelector(".rt-cid"), shortId(d.correlation_id));
  }
  const onRefused = (d) => fill(row(`refused-${d.time}-${Math.random()}`), refusedRow(d));
  const handlers = { rpc_request: onRequest, rpc_reply: onReply, rpc_timeout: onTimeout, rpc_error: onError,
    rpc_orphan: onOrphan, rpc_refused: onRefused };
  for (const [name, handler] of Object.entries(handlers)) on(name, handler);
  on("rpc_state", (state) => {
    if (list.size) return; // a reconnect: keep what is shown
    for (const item of state.timeline || []) handlers[item.event]?.(item.data);
  });
  $("#rpc-timeline-clear", section).addEventListener("click", () => {
    list.clear();
    rows.clear();
    histogram.clear();
  });
}
