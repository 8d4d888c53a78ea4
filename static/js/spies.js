// Spies in the watch panel: a shadow queue bound as a queue is, so every message routed to that queue through
// an exchange shows here too (the queue's consumers still get theirs). The feed list and the row renderer are the
// watch panel's own, handed in. Everything from the broker goes in as text.
import { el, setText } from "./dom.js";
import { on, onDropped } from "./socket.js";
import { api, errorText } from "./api.js";
import { exchangeShort } from "./format.js";

function bindingText(b) {
  const args = b.arguments && Object.keys(b.arguments).length ? ` ${JSON.stringify(b.arguments)}` : "";
  return `${exchangeShort(b.source)} · key ${b.routing_key || "‹empty›"}${args}`;
}

function buildCards() {
  const input = el("input", { name: "queue", required: true, autocomplete: "off", spellcheck: "false",
    placeholder: "e.g. orders" });
  const status = el("span", { id: "spy-form-status", class: "form-status", role: "status", "aria-live": "polite" });
  const form = el("form", { id: "spy-form", class: "tap-form", "aria-labelledby": "spy-title", novalidate: true },
    el("div", { class: "tap-fields" }, el("label", {}, "Queue", input)),
    el("div", { class: "form-actions" }, el("button", { type: "submit" }, "Spy on queue"), status));
  const list = el("ul", { id: "spy-list", class: "tap-list empty", "aria-label": "Spies",
    "data-empty": "No spies yet. Name a queue above to see what it is routed, without taking anything." });
  const spyCard = el("div", { class: "card watch-spies", id: "spy-card" },
    el("h2", { id: "spy-title" }, "Spies"),
    el("p", { class: "hint" }, "A spy binds a private queue of the lab's own with every binding a queue has, kept " +
      "in step as they change: each message routed to that queue through an exchange shows here, and the queue's " +
      "own consumers still get it. Messages sent straight to the queue through the default exchange cannot be " +
      "mirrored: the trace shows those."),
    form, list);
  const controls = {
    filter: el("input", { type: "search", id: "spy-filter", placeholder: "routing key, exchange, body…",
      autocomplete: "off" }),
    pause: el("button", { type: "button", id: "spy-pause", "aria-pressed": "false" }, "Pause"),
    clear: el("button", { type: "button", id: "spy-clear" }, "Clear"),
    stats: el("p", { id: "spy-stats", class: "feed-stats", "aria-live": "off" }),
    list: el("ol", { id: "spy-feed", class: "feed-list empty", "aria-label": "Spied messages, newest first",
      "data-empty": "Nothing spied yet. Messages routed to a spied queue appear here." }),
  };
  const feedCard = el("div", { class: "card watch-spy-feed", id: "spy-feed-card" },
    el("h2", {}, "Spy feed"),
    el("div", { class: "feed-controls" }, el("label", { class: "feed-filter" }, "Filter", controls.filter),
      controls.pause, controls.clear),
    controls.stats, controls.list);
  return { spyCard, feedCard, form, input, status, list, controls };
}

/** Add the spies cards to the watch panel; ``LiveFeed`` and ``renderEvent`` are the panel's tap feed pieces. */
export function initSpies(section, { LiveFeed, renderEvent }) {
  const ui = buildCards();
  const anchor = section.querySelector("#trace-card");
  section.insertBefore(ui.spyCard, anchor);
  section.insertBefore(ui.feedCard, anchor);
  const seen = new Map(); // spy id -> events seen by this page
  let spies = [];
  const say = (text, tone = "") => {
    setText(ui.status, text);
    ui.status.dataset.tone = tone;
  };
  const feed = new LiveFeed({ ...ui.controls, eventName: "spy", label: "spied messages", render: renderEvent,
    match: (e) => `${e.exchange} ${e.routing_key} ${e.body?.text ?? ""} ${e.id ?? ""}` });

  function renderSpy(spy) {
    const remove = el("button", { type: "button", class: "small", "aria-label": `Remove the spy on ${spy.queue}` },
      "Remove");
    remove.addEventListener("click", async () => {
      remove.disabled = true;
      try {
        await api("DELETE", `/api/spies/${encodeURIComponent(spy.id)}`);
      } catch (error) {
        say(error.message, "error");
        remove.disabled = false;
      }
    });
    const bindings = spy.bindings.length
      ? el("ul", { class: "spy-bindings" }, ...spy.bindings.map((b) => el("li", {}, el("code", {}, bindingText(b)))))
      : el("p", { class: "muted small-text" }, "no binding to mirror (yet)");
    return el("li", { class: "tap-item", dataset: { spy: spy.id, state: spy.state } },
      el("div", {}, el("strong", {}, spy.queue), spy.queue_exists ? null : el("span", { class: "badge warn" },
        "queue gone")),
      el("div", { class: "muted small-text" },
        `${spy.state} · ${spy.count.toLocaleString()} messages · ${(seen.get(spy.id) || 0).toLocaleString()} ` +
        "seen here · shadow queue ", el("code", {}, spy.shadow_queue || "—"),
        spy.error ? el("span", { class: "bad" }, ` · ${spy.error}`) : null),
      bindings,
      el("p", { class: "hint spy-note" }, spy.note),
      remove);
  }

  function render() {
    ui.list.replaceChildren(...spies.map(renderSpy));
    ui.list.classList.toggle("empty", spies.length === 0);
  }

  let countsScheduled = false;
  on("spy", (e) => {
    seen.set(e.spy_id, (seen.get(e.spy_id) || 0) + 1);
    feed.add(e);
    if (!countsScheduled) {
      countsScheduled = true;
      setTimeout(() => { // the exact counts are the server's: read them again (at most twice a second)
        countsScheduled = false;
        api("GET", "/api/spies").then((list) => { spies = list; render(); }).catch(() => render());
      }, 500);
    }
  });
  on("spies", (list) => { spies = list; render(); });
  onDropped(() => feed.renderStats());

  ui.form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const queue = ui.input.value.trim();
    if (!queue) {
      say("Name the queue to spy on.", "error");
      ui.input.focus();
      return;
    }
    const button = ui.form.querySelector("button[type=submit]");
    button.disabled = true;
    say("Adding…");
    try {
      const spy = await api("POST", "/api/spies", { queue });
      say(`Spying on ${spy.queue} (${spy.bindings.length} binding${spy.bindings.length === 1 ? "" : "s"} mirrored).`,
        "ok");
    } catch (error) {
      say(errorText(error), "error");
    } finally {
      button.disabled = false;
    }
  });

  api("GET", "/api/spies").then((list) => { spies = list; render(); }).catch(() => {});
}
