// The traffic panel: publish with properties (and bursts), consumer cards, the live feed and its detail view.
import { $, el } from "./dom.js";
import { on } from "./socket.js";
import { Feed } from "./feed.js";
import { renderDetail } from "./message-detail.js";
import { api, errorText } from "./api.js";

const TEXT_PROPS = ["content_type", "content_encoding", "correlation_id", "reply_to", "expiration", "message_id",
  "type", "user_id", "app_id"];
const INT_PROPS = ["delivery_mode", "priority", "timestamp"];


// ---------------------------------------------------------------------- publish
function readPublishForm(form) {
  const f = form.elements;
  const properties = {};
  for (const name of TEXT_PROPS) if (f[name].value !== "") properties[name] = f[name].value;
  for (const name of INT_PROPS) if (f[name].value !== "") properties[name] = Number(f[name].value);
  const headersText = f.headers.value.trim();
  if (headersText) {
    let headers;
    try {
      headers = JSON.parse(headersText);
    } catch (error) {
      throw new Error(`headers: not valid JSON (${error.message})`);
    }
    if (headers === null || typeof headers !== "object" || Array.isArray(headers)) {
      throw new Error("headers: must be a JSON object, e.g. {\"tenant\": \"t1\"}");
    }
    properties.headers = headers;
  }
  return {
    exchange: f.exchange.value,
    routing_key: f.routing_key.value,
    body: f.body.value,
    body_encoding: f.body_encoding.value,
    properties,
    mandatory: f.mandatory.checked,
    count: Math.max(1, Number(f.count.value) || 1),
  };
}

function describeResult(result) {
  const predicted = result.predicted === null || result.predicted === undefined ? "unknown"
    : result.predicted.length ? result.predicted.join(", ") : "no queue";
  const parts = [];
  if (result.count) {
    const c = result.counts;
    parts.push(el("strong", {}, `Burst of ${result.count}`),
      ` · confirmed ${c.confirmed} · routed ${c.routed} · returned ${c.returned} · dropped ${c.dropped}`,
      c.nacked ? el("span", { class: "bad", title: "the broker refused these (basic.nack), e.g. a full queue with x-overflow reject-publish" }, ` · nacked ${c.nacked}`) : "",
      result.rate ? ` · ${Math.round(result.rate).toLocaleString("en")} msg/s` : "");
  } else if (result.returned) {
    parts.push(el("strong", { class: "bad" }, "↩ Returned"),
      ` ${result.returned.reply_code} ${result.returned.reply_text}: no queue took it`);
  } else if (!result.confirmed) {
    parts.push(el("strong", { class: "bad" }, "✗ Nacked"), " · the broker refused it (e.g. a full queue with x-overflow reject-publish)");
  } else if (!result.routed) {
    parts.push(el("strong", { class: "warn" }, "⚠ Unroutable"), " · confirmed, but dropped: no queue took it (tick mandatory to get it back)");
  } else {
    parts.push(el("strong", { class: "good" }, "✓ Confirmed"), " · routed");
  }
  parts.push(el("br"), el("span", { class: "muted" }, "predicted: "), predicted,
    el("span", { class: "muted" }, " · id "), el("code", {}, result.id));
  for (const note of result.prediction_notes || []) parts.push(el("br"), el("span", { class: "muted prediction-note" }, note));
  if (result.prediction_check) parts.push(el("br"), el("span", { class: "warn prediction-check" }, result.prediction_check.note));
  return parts;
}

/** A publish the broker refused (404 no exchange, 403, 406...) never reaches the lab's `published` event:
 *  the feed still gets a row for it, marked refused, with the broker's reply code and text. */
function refusedEvent(request, error) {
  const text = request.body_encoding === "utf-8" ? request.body : null;
  return {
    id: null,
    exchange: request.exchange,
    routing_key: request.routing_key,
    properties: request.properties,
    mandatory: request.mandatory,
    count: request.count,
    size: text === null ? null : new TextEncoder().encode(text).length,
    body: text === null ? null : { text, size: new TextEncoder().encode(text).length, kind: "text" },
    confirmed: false,
    routed: false,
    refused: { reply_code: error.details.reply_code, code: error.code, message: error.message },
    time: Date.now() / 1000,
  };
}

function setupPublish(section, feed) {
  const form = $("#publish-form", section);
  const button = $("#publish-button", section);
  const result = $("#publish-result", section);
  const burst = $("#burst-status", section);
  const bar = $("#burst-progress", section);
  const burstText = $("#burst-text", section);
  let inFlight = false;

  on("publish_progress", (p) => {
    if (!inFlight) return;
    burst.hidden = false;
    bar.max = p.count;
    bar.value = p.done;
    burstText.textContent = `${p.done} / ${p.count} · confirmed ${p.confirmed} · routed ${p.routed}`;
  });

  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let request;
    try {
      request = readPublishForm(form);
    } catch (error) {
      result.className = "publish-result error-text";
      result.replaceChildren(error.message);
      return;
    }
    inFlight = true;
    button.disabled = true;
    button.textContent = request.count > 1 ? "Publishing…" : "Publish";
    burst.hidden = request.count <= 1;
    bar.max = request.count;
    bar.value = 0;
    burstText.textContent = `0 / ${request.count}`;
    try {
      const answer = await api("POST", "/api/publish", request);
      result.className = "publish-result";
      result.replaceChildren(...describeResult(answer));
      if (request.count > 1) {
        bar.value = request.count;
        burstText.textContent = `${answer.counts.published} / ${request.count} done in ${answer.seconds} s`;
      }
    } catch (error) {
      result.className = "publish-result error-text";
      result.replaceChildren(errorText(error));
      burst.hidden = true;
      if (error.details?.reply_code) feed.add("published", refusedEvent(request, error));
    } finally {
      inFlight = false;
      button.disabled = false;
      button.textContent = "Publish";
    }
  });
}

// ---------------------------------------------------------------------- consumers
function consumerCard(c, actions) {
  const counter = (name, value, title) => el("div", { class: "counter", title },
    el("span", { class: "counter-value", dataset: { counter: name } }, String(value)), el("span", { class: "counter-name" }, name));
  const running = !["stopped", "crashed", "failed", "cancelled"].includes(c.state);
  return el("li", { class: `consumer-card state-${c.state}`, dataset: { consumer: c.id } },
    el("div", { class: "consumer-top" },
      el("span", { class: "consumer-queue mono", title: "queue" }, c.queue),
      el("span", { class: `state-badge state-${c.state}` }, c.state)),
    el("div", { class: "consumer-knobs mono" },
      el("span", {}, c.id), ` · ack ${c.ack} · prefetch ${c.prefetch || "∞"} · work ${c.work_ms} ms · ${c.on_message}`),
    el("div", { class: "counters" },
      counter("handled", c.handled, "deliveries received"),
      counter("acked", c.acked, c.ack === "auto" ? "auto-acked on delivery" : "basic.ack sent"),
      counter("rejected", c.rejected, "basic.reject, no requeue"),
      counter("nacked", c.nacked, "basic.nack with requeue"),
      counter("redelivered", c.redelivered, "deliveries with the redelivered flag")),
    c.error ? el("p", { class: "consumer-error" }, c.error) : "",
    el("div", { class: "consumer-actions" },
      el("button", { type: "button", onclick: () => actions.filter(c.id) }, "Show in feed"),
      el("button", { type: "button", class: running ? "danger" : "", onclick: () => actions.remove(c.id) },
        running ? "Stop" : "Remove")));
}

function setupConsumers(section, feedActions, feed) {
  const form = $("#consumer-form", section);
  const list = $("#consumer-list", section);
  const error = $("#consumer-error", section);
  const known = new Map();

  const render = () => {
    const cards = [...known.values()].sort((a, b) => a.created - b.created).map((c) => consumerCard(c, actions));
    list.replaceChildren(...cards);
    list.classList.toggle("empty", cards.length === 0);
    feedActions.consumersChanged([...known.values()]);
  };
  const showError = (message) => {
    error.hidden = !message;
    error.textContent = message || "";
  };
  const actions = {
    filter: feedActions.filter,
    async remove(id) {
      try {
        await api("DELETE", `/api/consumers/${encodeURIComponent(id)}`);
        known.delete(id);
        render();
        showError("");
      } catch (err) {
        if (err.code === "NOT_FOUND") {
          known.delete(id);
          render();
        } else showError(err.message);
      }
    },
  };

  on("consumers", (listing) => {
    known.clear();
    for (const c of listing) known.set(c.id, c);
    render();
  });
  on("consumer", (c) => {
    const previous = known.get(c.id);
    if (c.change === "crashed") feed.crashed({ ...previous, ...c });
    if (previous || c.change !== "stopped") {
      known.set(c.id, { ...previous, ...c });
      render();
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    if (!f.queue.value) {
      showError("queue: name the queue to consume from");
      f.queue.focus();
      return;
    }
    const request = {
      queue: f.queue.value,
      ack: f.ack.value,
      prefetch: Number(f.prefetch.value) || 0,
      work_ms: Number(f.work_ms.value) || 0,
      on_message: f.on_message.value,
    };
    try {
      const created = await api("POST", "/api/consumers", request);
      known.set(created.id, created);
      render();
      showError("");
    } catch (err) {
      showError(errorText(err));
    }
  });
  api("GET", "/api/consumers").then((listing) => {
    for (const c of listing) known.set(c.id, c);
    render();
  }).catch(() => {});
}

// ---------------------------------------------------------------------- topology hints
function setupHints(section, feedActions) {
  const exchanges = $("#traffic-exchanges", section);
  const queues = $("#traffic-queues", section);
  const fill = (snapshot) => {
    if (!snapshot) return;
    feedActions.topologyChanged(snapshot);
    exchanges.replaceChildren(...(snapshot.exchanges || []).filter((x) => x.name)
      .map((x) => el("option", { value: x.name }, x.type)));
    queues.replaceChildren(...(snapshot.queues || []).map((q) => el("option", { value: q.name })));
  };
  on("topology", fill);
  api("GET", "/api/topology").then(fill).catch(() => {});
}

// ---------------------------------------------------------------------- feed + detail
function setupFeed(section) {
  const detail = $("#message-detail", section);
  const detailBody = $("#detail-body", section);
  const filter = $("#feed-filter", section);
  const kind = $("#feed-kind", section);
  const cap = $("#feed-cap", section);
  const pause = $("#feed-pause", section);
  let lastFocus = null;

  const feed = new Feed({
    tbody: $("#feed-rows", section),
    stats: $("#feed-stats", section),
    empty: $("#feed-empty", section),
    filterEmpty: $("#feed-filter-empty", section),
    onSelect(eventKind, data, message) {
      lastFocus = document.activeElement;
      renderDetail(detailBody, eventKind, data, message);
      detail.hidden = false;
      section.classList.add("with-detail");
    },
  });
  const closeDetail = () => {
    detail.hidden = true;
    section.classList.remove("with-detail");
    lastFocus?.focus?.();
  };
  $("#detail-close", section).addEventListener("click", closeDetail);

  for (const name of ["published", "delivery", "returned", "ack", "nack", "prediction_check"]) on(name, (data) => feed.add(name, data));

  const applyFilter = () => feed.setFilter(filter.value, kind.value);
  filter.addEventListener("input", applyFilter);
  kind.addEventListener("change", applyFilter);
  cap.addEventListener("change", () => feed.setCap(Number(cap.value)));
  feed.setCap(Number(cap.value));
  const togglePause = () => {
    const paused = pause.getAttribute("aria-pressed") !== "true";
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    feed.setPaused(paused);
  };
  pause.addEventListener("click", togglePause);
  $("#feed-clear", section).addEventListener("click", () => feed.clear());

  document.addEventListener("keydown", (event) => {
    if (section.hidden) return;
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName);
    if (event.key === "Escape" && !detail.hidden) closeDetail();
    else if (!typing && event.key === "/") {
      event.preventDefault();
      filter.focus();
    } else if (!typing && event.key === "p" && !event.ctrlKey && !event.metaKey && !event.altKey) togglePause();
  });

  // Who consumes each queue: the lab's running consumers, and the broker's count from the topology (which
  // also counts other applications' consumers). A message waiting in a queue nobody consumes says so.
  const FINAL = ["stopped", "crashed", "failed", "cancelled"];
  let labConsumers = new Map(); // queue -> running lab consumers
  let brokerConsumers = new Map(); // queue -> consumers the broker counts
  const consumerOf = (queue) => (labConsumers.get(queue) ? "lab" : brokerConsumers.get(queue) ? "other" : "none");
  const consumersChanged = (consumers) => {
    labConsumers = new Map();
    for (const c of consumers) {
      if (!FINAL.includes(c.state)) labConsumers.set(c.queue, (labConsumers.get(c.queue) || 0) + 1);
    }
    feed.setConsumers(consumerOf);
  };
  const topologyChanged = (snapshot) => {
    brokerConsumers = new Map((snapshot.queues || []).map((q) => [q.name, q.consumers || 0]));
    feed.setConsumers(consumerOf);
  };

  return {
    feed,
    consumersChanged,
    topologyChanged,
    filter(text) {
      filter.value = text;
      applyFilter();
      filter.focus();
    },
  };
}

export function init(section) {
  const feedActions = setupFeed(section);
  setupPublish(section, feedActions.feed);
  setupConsumers(section, feedActions, feedActions.feed);
  setupHints(section, feedActions);
  section.dataset.ready = "true";
}
