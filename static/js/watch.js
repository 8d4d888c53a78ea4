// The watch panel: taps (a private queue bound to an exchange) and the firehose trace, each with a live feed
// that keeps the newest rows, exact totals (received + dropped from this page's view), pause and filter.
// Everything from the broker goes in as text.
import { $, el, setText } from "./dom.js";
import { droppedCount, on, onDropped, onLinkChange } from "./socket.js";
import { api, errorText } from "./api.js";
import { bodySnippet, clock, exchangeShort, size } from "./format.js";
import { LiveList, everyFrame } from "./list.js";
import { renderDetail } from "./message-detail.js";
import { initSpies } from "./spies.js";
import { verificationCard } from "./timeline.js";

const CAP = 200; // rows kept in each feed

/** A capped, pausable, filterable list of live events with exact totals. */
class LiveFeed {
  constructor({ list, stats, filter, pause, clear, eventName, render, match, label }) {
    Object.assign(this, { stats, eventName, match, label });
    this.view = new LiveList({ container: list, cap: CAP, render: (data) => (this.visible(data) ? render(data) : null),
      onPaint: () => this.renderStats() });
    this.items = []; // newest last, at most CAP
    this.received = 0;
    this.heldWhilePaused = 0;
    this.paused = false;
    this.filterText = "";
    this.statsSoon = everyFrame(() => this.renderStats());
    filter.addEventListener("input", () => {
      this.filterText = filter.value.trim().toLowerCase();
      this.rebuild();
    });
    pause.addEventListener("click", () => {
      this.paused = !this.paused;
      pause.setAttribute("aria-pressed", String(this.paused));
      pause.textContent = this.paused ? "Resume" : "Pause";
      this.heldWhilePaused = 0;
      if (!this.paused) this.rebuild();
      this.renderStats();
    });
    clear.addEventListener("click", () => {
      this.items = [];
      this.rebuild();
    });
    this.renderStats();
  }

  add(data) {
    this.received += 1;
    this.items.push(data);
    if (this.items.length > CAP) this.items.splice(0, this.items.length - CAP);
    if (this.paused) {
      this.heldWhilePaused += 1;
      this.statsSoon();
    } else {
      this.view.add(data);
    }
  }

  visible(data) {
    return !this.filterText || this.match(data).toLowerCase().includes(this.filterText);
  }

  rebuild() {
    this.view.replace(this.items);
  }

  renderStats() {
    const dropped = droppedCount(this.eventName);
    const total = this.received + dropped;
    const parts = [`${total.toLocaleString()} ${this.label}`];
    if (dropped) parts.push(`${dropped.toLocaleString()} dropped from this view under load (not from the broker)`);
    parts.push(`showing the newest ${Math.min(this.view.rows, CAP)}`);
    if (this.filterText) parts.push(`filter "${this.filterText}"`);
    if (this.paused) parts.push(`paused: ${this.heldWhilePaused.toLocaleString()} new since`);
    setText(this.stats, parts.join(" · "));
  }
}

/** The row's detail, drawn by the message detail view the first time it is opened. */
function details(kind, data) {
  const box = el("div", { class: "row-detail" });
  const node = el("details", { class: "row-details" }, el("summary", {}, "properties, headers, body"), box);
  node.addEventListener("toggle", () => {
    if (node.open && !box.firstChild) renderDetail(box, kind, data);
  });
  return node;
}

// ---------------------------------------------------------------------- taps
function renderTapEvent(e) {
  return el("li", { class: "feed-row" },
    el("div", { class: "row-head" },
      el("time", { class: "muted" }, clock(e.time)),
      el("span", { class: "exchange" }, exchangeShort(e.exchange)),
      el("span", { class: "arrow", "aria-hidden": "true" }, "→"),
      el("code", { class: "rk" }, e.routing_key || "‹empty key›"),
      e.redelivered ? el("span", { class: "badge warn" }, "redelivered") : null,
      e.id ? el("span", { class: "badge" }, `lab ${e.id}`) : null),
    el("div", { class: "row-body" }, bodySnippet(e.body, 120),
      el("span", { class: "muted" }, ` · ${size(e.body?.size)}`)),
    details("tap", e));
}

function setupTaps(section) {
  const form = $("#tap-form", section);
  const status = $("#tap-form-status", section);
  const list = $("#tap-list", section);
  const seen = new Map(); // tap id -> events seen by this page
  // Errors read red (role=status stays: the text is announced either way).
  const say = (text, tone = "") => {
    setText(status, text);
    status.dataset.tone = tone;
  };
  let taps = [];

  const feed = new LiveFeed({
    list: $("#tap-feed", section), stats: $("#tap-stats", section), filter: $("#tap-filter", section),
    pause: $("#tap-pause", section), clear: $("#tap-clear", section), eventName: "tap", label: "tapped messages",
    render: renderTapEvent,
    match: (e) => `${e.exchange} ${e.routing_key} ${e.body?.text ?? ""} ${e.id ?? ""}`,
  });

  function renderTaps() {
    list.replaceChildren(...taps.map((tap) => {
      const remove = el("button", { type: "button", class: "small", "aria-label": `Remove the tap on ${tap.exchange}` },
        "Remove");
      remove.addEventListener("click", async () => {
        remove.disabled = true;
        try {
          await api("DELETE", `/api/taps/${encodeURIComponent(tap.id)}`);
        } catch (error) {
          say(error.message, "error");
          remove.disabled = false;
        }
      });
      return el("li", { class: "tap-item", dataset: { tap: tap.id, state: tap.state } },
        el("div", {},
          el("strong", {}, exchangeShort(tap.exchange)),
          el("span", { class: "muted" }, " key "), el("code", {}, tap.binding_key || "‹empty›"),
          tap.arguments ? el("code", { class: "muted" }, ` ${JSON.stringify(tap.arguments)}`) : null),
        el("div", { class: "muted small-text" },
          `${tap.state} · ${(seen.get(tap.id) || 0).toLocaleString()} seen here · queue `,
          el("code", {}, tap.queue || "—"), tap.error ? el("span", { class: "bad" }, ` · ${tap.error}`) : null),
        remove);
    }));
    list.classList.toggle("empty", taps.length === 0);
  }

  let countsScheduled = false;
  on("tap", (e) => {
    seen.set(e.tap_id, (seen.get(e.tap_id) || 0) + 1);
    feed.add(e);
    if (!countsScheduled) {
      countsScheduled = true;
      setTimeout(() => { countsScheduled = false; renderTaps(); }, 500);
    }
  });
  on("taps", (list) => { taps = list; renderTaps(); });
  onDropped(() => feed.renderStats());

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    const body = { exchange: f.exchange.value.trim(), binding_key: f.binding_key.value };
    if (!body.exchange) {
      say("Name the exchange to tap.", "error");
      f.exchange.focus();
      return;
    }
    const args = f.arguments.value.trim();
    if (args) {
      try {
        body.arguments = JSON.parse(args);
      } catch (error) {
        say(`Arguments: not valid JSON (${error.message})`, "error");
        return;
      }
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    say("Adding…");
    try {
      const tap = await api("POST", "/api/taps", body);
      say(`Tapping ${tap.exchange} (queue ${tap.queue}).`, "ok");
    } catch (error) {
      say(errorText(error), "error");
    } finally {
      button.disabled = false;
    }
  });

  api("GET", "/api/taps").then((list) => { taps = list; renderTaps(); }).catch(() => {});
}

// ---------------------------------------------------------------------- trace
function renderTraceEvent(e) {
  const routed = e.routed_queues || [];
  const head = e.kind === "publish"
    ? [el("span", { class: "exchange" }, exchangeShort(e.exchange)), el("span", { class: "muted" }, " key "),
      el("code", { class: "rk" }, e.routing_key || "‹empty›"), el("span", { class: "arrow", "aria-hidden": "true" }, " → "),
      routed.length ? el("span", { class: "queues" }, routed.join(", "))
        : el("span", { class: "badge warn" }, "routed to no queue")]
    : [el("span", { class: "queues" }, e.queue), el("span", { class: "muted" }, " ← "),
      el("span", { class: "exchange" }, exchangeShort(e.exchange)), el("span", { class: "muted" }, " key "),
      el("code", { class: "rk" }, e.routing_key || "‹empty›"),
      e.redelivered ? el("span", { class: "badge warn" }, "redelivered") : null];
  return el("li", { class: `feed-row trace-${e.kind}` },
    el("div", { class: "row-head" },
      el("time", { class: "muted" }, clock(e.time)),
      el("span", { class: `badge kind-${e.kind}` }, e.kind),
      ...head),
    el("div", { class: "row-body" }, bodySnippet(e.body, 120),
      el("span", { class: "muted" }, ` · ${size(e.body?.size)} · ${e.user ?? "?"} · ${e.connection ?? ""}`),
      e.correlation_id ? el("span", { class: "muted" }, ` · correlation ${e.correlation_id}`) : null),
    details("trace", e));
}

function setupTrace(section) {
  const button = $("#trace-switch", section);
  const state = $("#trace-state", section);
  const reason = $("#trace-reason", section);
  const enable = $("#trace-enable", section);
  const kind = $("#trace-kind", section);
  let current = null;
  let busy = false;

  const feed = new LiveFeed({
    list: $("#trace-feed", section), stats: $("#trace-stats", section), filter: $("#trace-filter", section),
    pause: $("#trace-pause", section), clear: $("#trace-clear", section), eventName: "trace", label: "trace events",
    render: renderTraceEvent,
    match: (e) => `${e.kind} ${e.exchange} ${e.routing_key} ${e.queue ?? ""} ${(e.routed_queues || []).join(" ")}`,
  });
  const baseVisible = feed.visible.bind(feed);
  feed.visible = (e) => (!kind.value || e.kind === kind.value) && baseVisible(e);
  kind.addEventListener("change", () => feed.rebuild());

  // Without the management API the switch cannot work: it is disabled (not a switch that flips to "Off").
  const unavailable = (status) => Boolean(status && !status.enabled && status.available === false);

  function show(status) {
    current = status;
    button.setAttribute("aria-checked", String(Boolean(status.enabled)));
    button.disabled = busy || unavailable(status);
    enable.hidden = !unavailable(status);
    section.querySelector("#trace-card").dataset.state = status.enabled ? "on" : "off";
    if (status.enabled) {
      setText(state, `On for vhost ${status.vhost} (the lab's own tap deliveries are left out)`);
    } else if (status.available === false) {
      setText(state, "Unavailable");
    } else {
      setText(state, `Off (vhost ${status.vhost})`);
    }
    const why = status.enabled ? status.error : status.reason || status.error;
    reason.hidden = !why;
    setText(reason, why || "");
  }

  button.addEventListener("click", async () => {
    if (busy || !current || unavailable(current)) return;
    busy = true;
    button.disabled = true;
    setText(state, current.enabled ? "Switching off…" : "Switching on…");
    try {
      show(await api("POST", "/api/trace", { enabled: !current.enabled }));
    } catch (error) {
      reason.hidden = false;
      setText(reason, error.message);
      setText(state, current.enabled ? "On" : "Off");
    } finally {
      busy = false;
      button.disabled = unavailable(current);
    }
  });

  on("trace", (e) => feed.add(e));
  verificationCard(section.querySelector("#trace-card"), on);
  on("trace_status", (status) => show({ ...current, ...status }));
  onDropped(() => feed.renderStats());
  const refresh = () => api("GET", "/api/trace").then(show).catch((error) => {
    reason.hidden = false;
    setText(reason, error.message);
  });
  onLinkChange((link) => { if (link === "online") refresh(); });
  // While trace is unavailable, look again now and then: the management API may come (back).
  setInterval(() => { if (current && !current.enabled && current.available === false) refresh(); }, 15000);
}

export function init(section) {
  setupTaps(section);
  setupTrace(section);
  initSpies(section, { LiveFeed, renderEvent: renderTapEvent });
}
