// The RPC panel: call and burst forms, fib servers, a timeline of round trips, a latency histogram, and the
// inspector of every application's RPC seen in the trace. Everything from the broker goes in as text.
import { $, el, formatTime, setText } from "./dom.js";
import { on, sessionId } from "./socket.js";
import { api, errorText } from "./api.js";
import { isEnded, mountClearStopped, refusedRow } from "./rpc-ended.js";

const MAX_ROWS = 200;
const MAX_INSPECT_ROWS = 100;

// The panel's calls read as (path, {method, body}).
const call = (path, { method = "GET", body } = {}) => api(method, path, body);

function showError(node, error) {
  node.hidden = !error;
  node.textContent = error ? errorText(error) : "";
}

function ms(value) {
  if (value === null || value === undefined) return "—";
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  if (value >= 10) return `${value.toFixed(0)} ms`;
  return `${value.toFixed(2)} ms`;
}

function shortId(id) {
  return id ? String(id).slice(0, 8) : "—";
}

// ------------------------------------------------------------------------------------------- histogram
class Histogram {
  constructor(canvas, note) {
    this.canvas = canvas;
    this.note = note;
    this.min = -1; // 10^-1 ms
    this.max = 4; // 10^4 ms
    this.perDecade = 5;
    this.counts = new Array((this.max - this.min) * this.perDecade).fill(0);
    this.total = 0;
    this.pending = false;
  }

  add(latencyMs) {
    if (typeof latencyMs !== "number" || !(latencyMs >= 0)) return;
    const position = (Math.log10(Math.max(latencyMs, 1e-3)) - this.min) * this.perDecade;
    const index = Math.min(this.counts.length - 1, Math.max(0, Math.floor(position)));
    this.counts[index] += 1;
    this.total += 1;
    this.schedule();
  }

  clear() {
    this.counts.fill(0);
    this.total = 0;
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  draw() {
    const { canvas } = this;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 600;
    const height = canvas.clientHeight || 180;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const g = canvas.getContext("2d");
    g.scale(ratio, ratio);
    g.clearRect(0, 0, width, height);
    const style = getComputedStyle(document.documentElement);
    const muted = style.getPropertyValue("--muted").trim() || "#8b98a5";
    const line = style.getPropertyValue("--line").trim() || "#26303b";
    const accent = style.getPropertyValue("--accent").trim() || "#ff8a3d";
    const left = 34, bottom = 22, top = 8;
    const plotW = width - left - 8, plotH = height - bottom - top;
    const peak = Math.max(1, ...this.counts);
    const barW = plotW / this.counts.length;
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = muted;
    g.strokeStyle = line;
    g.beginPath();
    g.moveTo(left, top + plotH + 0.5);
    g.lineTo(left + plotW, top + plotH + 0.5);
    g.stroke();
    const labels = { "-1": "0.1ms", 0: "1ms", 1: "10ms", 2: "100ms", 3: "1s", 4: "10s" };
    for (let decade = this.min; decade <= this.max; decade += 1) {
      const x = left + (decade - this.min) * this.perDecade * barW;
      g.fillText(labels[decade], Math.min(x - 10, width - 34), height - 6);
      g.beginPath();
      g.moveTo(x + 0.5, top);
      g.lineTo(x + 0.5, top + plotH);
      g.stroke();
    }
    g.fillText(String(peak), 2, top + 10);
    g.fillText("0", 2, top + plotH);
    g.fillStyle = accent;
    this.counts.forEach((count, i) => {
      if (!count) return;
      const h = Math.max(1, (count / peak) * plotH);
      g.fillRect(left + i * barW + 1, top + plotH - h, Math.max(1, barW - 2), h);
    });
    setText(this.note, this.total ? `${this.total} replies seen (bursts are sampled)` : "no replies yet");
  }
}

// ------------------------------------------------------------------------------------------- the panel
export function init(section) {
  const callForm = $("#rpc-call-form", section);
  const burstForm = $("#rpc-burst-form", section);
  const serversForm = $("#rpc-servers-form", section);
  const timeline = $("#rpc-timeline", section);
  const rows = new Map(); // correlation id -> row of the timeline
  const histogram = new Histogram($("#rpc-histogram", section), $("#rpc-hist-note", section));
  let burstRunning = false;

  // ----- the timeline
  function row(cid, create = true) {
    let li = rows.get(cid);
    if (!li && create) {
      li = el("li", { class: "rt-waiting", dataset: { cid: cid || "" } },
        el("span", { class: "rt-time muted" }), el("span", { class: "rt-status" }), el("span", { class: "rt-what" }),
        el("span", { class: "rt-cid muted", title: cid || "" }, shortId(cid)), el("span", { class: "rt-latency" }),
        el("span", { class: "rt-track" }, el("span", { class: "rt-bar" })));
      timeline.prepend(li);
      if (cid) rows.set(cid, li);
      while (timeline.children.length > MAX_ROWS) {
        const last = timeline.lastElementChild;
        rows.delete(last.dataset.cid);
        last.remove();
      }
    }
    return li;
  }

  function fill(li, { kind, status, what, latency, time, title }) {
    li.className = `rt-${kind}`;
    setText(li.querySelector(".rt-time"), formatTime(time));
    setText(li.querySelector(".rt-status"), status);
    if (what !== undefined) setText(li.querySelector(".rt-what"), what);
    setText(li.querySelector(".rt-latency"), ms(latency));
    const bar = li.querySelector(".rt-bar");
    const fraction = latency ? Math.min(1, Math.max(0.02, (Math.log10(latency) + 1) / 5)) : 0.02;
    bar.style.width = `${(fraction * 100).toFixed(1)}%`;
    if (title) li.title = title;
  }

  const what = (d, tail) => `fib(${d.n ?? d.body ?? "?"})${tail ? ` → ${tail}` : ""}`;

  const expiry = (d) => (d.expiration ? `expires in ${d.expiration} ms` : "no expiration");
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
  on("rpc_request", onRequest);
  on("rpc_reply", onReply);
  on("rpc_timeout", onTimeout);
  on("rpc_error", onError);
  on("rpc_orphan", onOrphan);
  const onRefused = (d) => fill(row(`refused-${d.time}-${Math.random()}`), refusedRow(d));
  on("rpc_refused", onRefused);
  on("rpc_state", (state) => {
    if (timeline.children.length) return; // a reconnect: keep what is shown
    const handlers = { rpc_request: onRequest, rpc_reply: onReply, rpc_timeout: onTimeout, rpc_error: onError,
      rpc_orphan: onOrphan, rpc_refused: onRefused };
    for (const item of state.timeline || []) handlers[item.event]?.(item.data);
    renderServers(state.servers || []);
  });
  $("#rpc-timeline-clear", section).addEventListener("click", () => {
    timeline.replaceChildren();
    rows.clear();
    histogram.clear();
  });

  // ----- one call
  callForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = callForm.elements;
    const button = callForm.querySelector("button[type=submit]");
    const result = $("#rpc-call-result", section);
    const errorNode = $("#rpc-call-error", section);
    showError(errorNode, null);
    button.disabled = true;
    setText(callForm.querySelector(".rpc-busy"), "waiting for the reply…");
    try {
      const reply = await call("/api/rpc/call", { method: "POST", body: {
        n: Number(f.n.value), queue: f.queue.value, timeout_s: Number(f.timeout_s.value) || 5,
        reply_mode: f.reply_mode.value, expire: f.expire.checked } });
      const flag = $("#rpc-call-flag", section);
      flag.hidden = !reply.not_integer;
      setText(flag, reply.not_integer ? `${reply.not_integer}: the reply was ${reply.reply}` : "");
      setText(result.querySelector('[data-field="result"]'), reply.not_integer ? "— (no exact result)" : reply.result);
      setText(result.querySelector('[data-field="expiration"]'), expiry(reply));
      setText(result.querySelector('[data-field="latency"]'), ms(reply.latency_ms));
      setText(result.querySelector('[data-field="server"]'), reply.server || "(no x-rpc-server header)");
      setText(result.querySelector('[data-field="correlation_id"]'), reply.correlation_id);
      result.hidden = false;
    } catch (error) {
      result.hidden = true;
      showError(errorNode, error);
    } finally {
      button.disabled = false;
      setText(callForm.querySelector(".rpc-busy"), "");
    }
  });

  // ----- a burst
  const progressBar = $("#rpc-burst-progress", section);
  const cancelButton = $("#rpc-burst-cancel", section);
  let burstId = null;
  cancelButton.addEventListener("click", async () => {
    if (!burstId) return;
    cancelButton.disabled = true;
    try {
      await call(`/api/rpc/bursts/${encodeURIComponent(burstId)}`, { method: "DELETE" });
    } catch (error) {
      showError($("#rpc-burst-error", section), error);
    }
  });
  on("rpc_burst_progress", (p) => {
    if (!burstRunning) return;
    burstId = p.burst_id;
    cancelButton.hidden = false;
    progressBar.max = p.calls;
    progressBar.value = p.done;
    setText($("#rpc-burst-count", section), `${p.done}/${p.calls} · ${p.calls_per_s}/s`);
  });
  burstForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = burstForm.elements;
    const c = callForm.elements;
    const errorNode = $("#rpc-burst-error", section);
    const summaryNode = $("#rpc-burst-summary", section);
    const button = burstForm.querySelector("button[type=submit]");
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
    burstRunning = true;
    progressBar.max = body.calls;
    progressBar.value = 0;
    setText($("#rpc-burst-count", section), "starting…");
    try {
      const s = await call("/api/rpc/burst", { method: "POST", body });
      progressBar.value = progressBar.max;
      setText($("#rpc-burst-count", section), `${s.done}/${s.calls} in ${s.elapsed_s} s`);
      const facts = [["calls/s", s.calls_per_s], ["ok", s.ok], ["errors", s.errors], ["timeouts", s.timeouts],
        ["p50", ms(s.p50_ms)], ["p90", ms(s.p90_ms)], ["p99", ms(s.p99_ms)],
        ["servers", Object.entries(s.servers || {}).map(([k, v]) => `${k}: ${v}`).join(", ") || "—"]];
      if (s.not_integer) facts.push(["not integers", `${s.not_integer} (the server used floating point)`]);
      if (s.cancelled) facts.push(["cancelled", `${s.cancelled} (${s.cancelled_calls} calls not made or dropped)`]);
      if (s.first_error) facts.push(["first error", s.first_error]);
      summaryNode.replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
      summaryNode.hidden = false;
    } catch (error) {
      showError(errorNode, error);
      setText($("#rpc-burst-count", section), "");
    } finally {
      burstRunning = false;
      burstId = null;
      cancelButton.hidden = true;
      cancelButton.disabled = false;
      button.disabled = false;
    }
  });

  // ----- the servers
  const serversBody = $("#rpc-servers", section);
  const serversError = $("#rpc-servers-error", section);
  function renderServers(servers) {
    serversBody.replaceChildren(...servers.map((s) => {
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
  async function refreshServers() {
    try {
      renderServers((await call("/api/rpc/servers")).servers);
    } catch (error) {
      showError(serversError, error);
    }
  }
  async function stopServer(id, kill, button) {
    button.disabled = true;
    showError(serversError, null);
    try {
      await call(`/api/rpc/servers/${encodeURIComponent(id)}${kill ? "?kill=1" : ""}`, { method: "DELETE" });
    } catch (error) {
      showError(serversError, error);
    }
    refreshServers();
  }
  serversForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = serversForm.elements;
    const button = serversForm.querySelector("button[type=submit]");
    button.disabled = true;
    showError(serversError, null);
    try {
      await call("/api/rpc/servers", { method: "POST", body: { count: Number(f.count.value) || 1,
        prefetch: Number(f.prefetch.value) || 1, work_ms: Number(f.work_ms.value) || 0,
        ack_delay_ms: Number(f.ack_delay_ms.value) || 0, queue: callForm.elements.queue.value } });
    } catch (error) {
      showError(serversError, error);
    } finally {
      button.disabled = false;
      refreshServers();
    }
  });
  on("rpc_servers", (data) => renderServers(data.servers || []));
  mountClearStopped(serversBody.closest(".rpc-scroll"), (error) => showError(serversError, error), refreshServers);

  // ----- the inspector
  const inspectBody = $("#rpc-inspect", section);
  const traceButton = $("#rpc-trace-on", section);
  const seenTrips = new Set();
  function addTrip(t) {
    if (seenTrips.has(t.id)) return;
    seenTrips.add(t.id);
    const reply = t.status === "unanswered" ? `no reply after ${ms(t.waited_ms)}` : (t.error ? `error: ${t.error}` : t.reply_body);
    inspectBody.prepend(el("tr", { class: `st-${t.status}`, title: `correlation_id ${t.correlation_id}; client ${t.client || "?"}` },
      el("td", {}, t.status), el("td", {}, t.client_queue), el("td", {}, t.request_queue), el("td", {}, t.server || "?"),
      el("td", {}, t.request_body ?? ""), el("td", {}, reply ?? ""), el("td", {}, ms(t.latency_ms))));
    while (inspectBody.children.length > MAX_INSPECT_ROWS) inspectBody.lastElementChild.remove();
  }
  async function refreshInspect() {
    try {
      const state = await call("/api/rpc/inspect");
      traceButton.hidden = state.inspecting || !state.trace?.available;
      const c = state.counts || {};
      setText($("#rpc-inspect-state", section), state.inspecting
        ? `Listening to the trace: ${c.requests || 0} requests, ${c.answered || 0} answered, ${c.error || 0} errors, ` +
          `${c.duplicate || 0} duplicates, ${c.unanswered || 0} unanswered.`
        : state.reason || "not listening");
      for (const trip of state.roundtrips || []) addTrip(trip);
      const waiting = state.waiting || [];
      setText($("#rpc-inspect-waiting", section), waiting.length
        ? `Waiting for a reply: ${waiting.slice(-5).map((w) => `${w.request_queue} ← ${w.request_body} (${ms(w.age_ms)})`).join("; ")}`
        : "");
    } catch (error) {
      setText($("#rpc-inspect-state", section), error.message);
    }
  }
  traceButton.addEventListener("click", async () => {
    traceButton.disabled = true;
    try {
      await call("/api/trace", { method: "POST", body: { enabled: true } });
    } catch (error) {
      setText($("#rpc-inspect-state", section), error.message);
    } finally {
      traceButton.disabled = false;
      refreshInspect();
    }
  });
  on("rpc_roundtrip", addTrip);

  // ----- polling only while the panel is shown
  let ticks = 0;
  setInterval(() => {
    if (section.hidden || document.hidden) return;
    refreshServers();
    if (ticks++ % 3 === 0) refreshInspect();
  }, 1000);
  refreshServers();
  refreshInspect();
  histogram.draw();
  section.dataset.ready = "true"; // the forms have their handlers now (tests wait for this)
}
