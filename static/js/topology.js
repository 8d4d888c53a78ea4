// The topology panel: exchanges, queues and bindings, live from the `topology` event, with forms to declare,
// bind, purge and delete. Everything from the broker goes in as text (el / textContent), never as HTML.
import { $, el, setText } from "./dom.js";
import { on, onLinkChange } from "./socket.js";
import { initExplainer } from "./explainer.js";
import { api, errorText } from "./api.js";
import { exchangeLabel, plural } from "./format.js";
import { confirmAction, confirmOpen, updateConfirm } from "./confirm.js";
import { initMatrix } from "./matrix.js";

let topology = null;
const listeners = new Set();
let selectedQueue = null; // the queue whose bindings the bindings card shows (null: all)
let confirming = null; // () => the open confirmation's text, recomputed on every topology change


const enc = (name) => encodeURIComponent(name);
const isSystemExchange = (name) => name === "" || name.startsWith("amq.");

// ------------------------------------------------------------------ small view helpers
function tag(text, kind = "", title = "") {
  return el("span", { class: `tag ${kind}`.trim(), title: title || undefined }, text);
}

function emptyRow(columns, text) {
  return el("tr", { class: "empty-row" }, el("td", { colspan: columns }, text));
}

function argsText(args) {
  const entries = Object.entries(args || {});
  return entries.map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(", ");
}

function showError(node, error) {
  node.hidden = !error;
  node.textContent = error ? errorText(error) : "";
}

function busy(button, on) {
  button.disabled = on;
  button.classList.toggle("is-busy", on);
}

// ------------------------------------------------------------------ confirmations
const findQueue = (name) => topology?.queues.find((q) => q.name === name);

function purgeText(name) {
  const q = findQueue(name);
  if (!q) return `Queue “${name}” no longer exists.`;
  return `Purge queue “${name}”? Its ${plural(q.messages || 0, "ready message")} ${q.messages === 1 ? "is" : "are"} ` +
    "deleted for good (messages delivered and not yet acked stay). This cannot be undone.";
}

function deleteQueueText(name) {
  const q = findQueue(name);
  if (!q) return `Queue “${name}” no longer exists.`;
  const holds = q.messages ? `It holds ${plural(q.messages, "ready message")}, deleted with it` : "It is empty";
  const consumers = q.consumers ? `; its ${plural(q.consumers, "consumer")} ${q.consumers === 1 ? "is" : "are"} cancelled` : "";
  return `Delete queue “${name}”? ${holds}${consumers}, and its bindings go too. This cannot be undone.`;
}

function deleteExchangeText(name) {
  const bindings = (topology?.bindings || []).filter((b) => b.source === name || (b.destination_type === "exchange" && b.destination === name));
  return `Delete exchange “${name}”? ${bindings.length ? `Its ${plural(bindings.length, "binding")} ${bindings.length === 1 ? "goes" : "go"} with it.` : "It has no bindings."} This cannot be undone.`;
}

/** Ask before a destructive action; the question's text follows the topology while it is open. */
async function ask(title, describe, confirmLabel) {
  confirming = describe;
  try {
    return await confirmAction({ title, message: describe(), confirmLabel });
  } finally {
    confirming = null;
  }
}

// ------------------------------------------------------------------ rendering
function renderExchanges(section, exchanges) {
  const rows = $("#exchange-rows", section);
  setText($("#exchange-count", section), String(exchanges.length));
  rows.replaceChildren();
  if (!exchanges.length) rows.append(emptyRow(4, "No exchanges yet."));
  for (const x of exchanges) {
    const args = { ...x.arguments };
    const ae = args["alternate-exchange"];
    delete args["alternate-exchange"];
    const flags = el("td", { class: "flags" },
      x.durable ? tag("D", "flag", "durable") : null,
      x.auto_delete ? tag("AD", "flag", "auto-delete") : null,
      x.internal ? tag("I", "flag", "internal: no direct publishing") : null,
      ae ? tag(`AE → ${ae}`, "ae", "alternate exchange: gets what nothing else takes") : null,
      Object.keys(args).length ? el("span", { class: "args" }, argsText(args)) : null);
    const remove = el("button", { type: "button", class: "icon danger", title: `Delete exchange ${exchangeLabel(x.name)}`,
      "aria-label": `Delete exchange ${exchangeLabel(x.name)}`, disabled: isSystemExchange(x.name) }, "✕");
    remove.addEventListener("click", async () => {
      if (!await ask("Delete exchange", () => deleteExchangeText(x.name), "Delete exchange")) return;
      busy(remove, true);
      try {
        await api("DELETE", `/api/exchanges/${enc(x.name)}`);
        showError($("#exchange-form .form-error", section), null);
      } catch (error) {
        showError($("#exchange-form .form-error", section), error);
        busy(remove, false);
      }
    });
    rows.append(el("tr", { dataset: { name: x.name }, class: isSystemExchange(x.name) ? "system" : "" },
      el("td", { class: "name", title: exchangeLabel(x.name) }, exchangeLabel(x.name)),
      el("td", {}, tag(x.type, `type-${x.type}`)),
      flags, el("td", { class: "act" }, remove)));
  }
}

function renderQueues(section, queues, source) {
  const rows = $("#queue-rows", section);
  const errorNode = $("#queue-action-error", section);
  setText($("#queue-count", section), String(queues.length));
  rows.replaceChildren();
  if (!queues.length) {
    rows.append(emptyRow(5, source === "lab"
      ? "No queues declared by this lab yet (without the management API it cannot list others')."
      : "No queues in this vhost yet."));
  }
  for (const q of queues) {
    const args = q.arguments || {};
    const flags = el("td", { class: "flags" },
      q.durable ? tag("D", "flag", "durable") : null,
      q.auto_delete ? tag("AD", "flag", "auto-delete") : null,
      q.exclusive ? tag("EXCL", "flag", "exclusive") : null,
      args["x-queue-type"] && args["x-queue-type"] !== "classic" ? tag(args["x-queue-type"], "qtype") : null,
      args["x-message-ttl"] !== undefined ? tag(`TTL ${args["x-message-ttl"]}ms`, "arg") : null,
      args["x-max-length"] !== undefined ? tag(`max ${args["x-max-length"]}`, "arg") : null,
      args["x-dead-letter-exchange"] !== undefined
        ? tag(`DLX → ${exchangeLabel(args["x-dead-letter-exchange"])}`, "arg", argsText(args)) : null,
      // A policy with ha-mode (the management API's effective policy): RabbitMQ 4.0 removed classic mirroring.
      q.mirrored ? tag(`mirrored: ${MIRRORING_REMOVED}`, "mirrored", q.mirrored) : null);
    const purge = el("button", { type: "button", class: "small", title: `Purge ${q.name}`,
      "aria-label": `Purge queue ${q.name}`, disabled: !q.messages }, "Purge");
    const remove = el("button", { type: "button", class: "icon danger", title: `Delete queue ${q.name}`,
      "aria-label": `Delete queue ${q.name}` }, "✕");
    purge.addEventListener("click", async () => {
      if (!await ask("Purge queue", () => purgeText(q.name), "Purge")) return;
      busy(purge, true);
      try {
        const result = await api("POST", `/api/queues/${enc(q.name)}/purge`);
        showError(errorNode, null);
        flash(section, `Purged ${result.purged} message${result.purged === 1 ? "" : "s"} from ${q.name}`);
      } catch (error) {
        showError(errorNode, error);
      } finally {
        busy(purge, false);
      }
    });
    remove.addEventListener("click", async () => {
      if (!await ask("Delete queue", () => deleteQueueText(q.name), "Delete queue")) return;
      busy(remove, true);
      try {
        await api("DELETE", `/api/queues/${enc(q.name)}`);
        showError(errorNode, null);
      } catch (error) {
        showError(errorNode, error);
        busy(remove, false);
      }
    });
    const selected = q.name === selectedQueue;
    const row = el("tr", { dataset: { name: q.name }, class: selected ? "selected" : "", tabindex: "0",
      "aria-selected": String(selected), title: `Show the bindings of ${q.name}` },
      el("td", { class: "name", title: q.name }, q.name),
      el("td", { class: `n ${q.messages ? "has-messages" : ""}` }, String(q.messages)),
      el("td", { class: "n" }, String(q.consumers)),
      flags, el("td", { class: "act" }, purge, remove));
    const choose = () => selectQueue(section, selected ? null : q.name);
    row.addEventListener("click", (event) => { if (!event.target.closest("button")) choose(); });
    row.addEventListener("keydown", (event) => {
      if ((event.key === "Enter" || event.key === " ") && event.target === row) {
        event.preventDefault();
        choose();
      }
    });
    rows.append(row);
  }
}

/** Select a queue (or none): the bindings card then shows that queue's bindings, with the implicit one. */
function selectQueue(section, name) {
  selectedQueue = name;
  if (topology) render(section, topology);
  if (name) $(`#queue-rows tr[data-name="${CSS.escape(name)}"]`, section)?.focus();
}

/** The binding every queue has to the default exchange, by its own name; AMQP lists it nowhere. */
function implicitRow(queue) {
  return el("tr", { class: "implicit", dataset: { source: "", destination: queue, implicit: "true" } },
    el("td", { class: "name", title: "the default exchange" }, exchangeLabel("")),
    el("td", { class: "arrow", title: "to queue" }, "→"),
    el("td", { class: "name", title: `queue ${queue}` }, queue),
    el("td", { class: "key", title: "every queue is bound to the default exchange with its own name as the key" },
      tag("implicit", "implicit", "made by the broker for every queue; it cannot be unbound"), el("code", {}, queue)),
    el("td", { class: "act" }));
}

function renderBindings(section, allBindings) {
  const rows = $("#binding-rows", section);
  const errorNode = $("#binding-action-error", section);
  const filter = $("#binding-filter", section);
  const queue = selectedQueue;
  const bindings = queue === null ? allBindings
    : allBindings.filter((b) => b.destination_type === "queue" && b.destination === queue);
  setText($("#binding-count", section), queue === null ? String(allBindings.length) : `${bindings.length + 1}`);
  filter.hidden = queue === null;
  setText($(".binding-filter-text", filter), queue === null ? "" : `Bindings of queue ${queue}, the implicit one included`);
  rows.replaceChildren();
  if (queue !== null) rows.append(implicitRow(queue));
  else if (!bindings.length) rows.append(emptyRow(5, "No bindings yet: bind a queue to an exchange above."));
  for (const b of bindings) {
    const unbind = el("button", { type: "button", class: "icon danger", title: "Unbind",
      "aria-label": `Unbind ${b.destination} from ${b.source}` }, "✕");
    unbind.addEventListener("click", async () => {
      busy(unbind, true);
      try {
        await api("DELETE", "/api/bindings", b);
        showError(errorNode, null);
      } catch (error) {
        showError(errorNode, error);
        busy(unbind, false);
      }
    });
    const key = b.routing_key === "" ? el("span", { class: "muted" }, "(empty key)") : el("code", {}, b.routing_key);
    const args = argsText(b.arguments);
    rows.append(el("tr", { dataset: { source: b.source, destination: b.destination } },
      el("td", { class: "name", title: b.source }, exchangeLabel(b.source)),
      el("td", { class: "arrow", title: `to ${b.destination_type}` }, b.destination_type === "exchange" ? "⇒" : "→"),
      el("td", { class: "name", title: `${b.destination_type} ${b.destination}` },
        b.destination_type === "exchange" ? tag("X", "flag", "exchange") : null, b.destination),
      el("td", { class: "key", title: `${b.routing_key} ${args}`.trim() }, key,
        args ? el("span", { class: "args" }, ` ${args}`) : null),
      el("td", { class: "act" }, unbind)));
  }
}

function fillDatalist(node, values, label = (v) => v) {
  node.replaceChildren(...values.map((v) => el("option", { value: v }, label(v))));
}

function render(section, data) {
  topology = data;
  if (selectedQueue !== null && !data.queues.some((q) => q.name === selectedQueue)) selectedQueue = null;
  const source = $("#topo-source", section);
  source.dataset.source = data.source;
  setText(source, data.source === "management" ? "management API · whole vhost" : "lab only · what this lab declared");
  source.title = data.source === "management"
    ? "Listed through the management API: everything in the vhost, whoever declared it"
    : "No management API: AMQP cannot list a vhost, so this shows what the lab declared (checked live)";
  const messages = data.queues.reduce((sum, q) => sum + (q.messages || 0), 0);
  setText($("#topo-summary", section),
    `${data.exchanges.length} exchanges · ${data.queues.length} queues · ${data.bindings.length} bindings · ${messages} messages ready`);
  renderExchanges(section, data.exchanges);
  renderQueues(section, data.queues, data.source);
  renderBindings(section, data.bindings);
  const names = data.exchanges.map((x) => x.name);
  fillDatalist($("#topo-exchange-names", section), names.filter((n) => n !== ""));
  fillDatalist($("#topo-bindable-exchanges", section), names.filter((n) => n !== ""));
  fillDatalist($("#topo-queue-names", section), data.queues.map((q) => q.name));
  for (const listener of listeners) listener(data);
  if (confirming && confirmOpen()) updateConfirm(confirming());
}

let flashTimer = null;
function flash(section, text) {
  const live = $("#topo-live", section);
  live.textContent = text;
  live.classList.add("show");
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => live.classList.remove("show"), 2500);
}

// ------------------------------------------------------------------ forms
/** Clear a field after a successful submit, unless the user already typed something new into it. */
function clearIfUnchanged(input, submitted) {
  if (input.value === submitted) input.value = "";
}

function intOrUndefined(value) {
  if (value === "" || value === null || value === undefined) return undefined;
  const n = Number(value);
  return Number.isInteger(n) ? n : value; // the API says why a non-integer is wrong
}

function wireForm(section, form, build, submit) {
  const errorNode = $(".form-error", form);
  const button = $("button[type=submit]", form);
  let pending = 0;
  let latest = 0;
  // The button is never disabled while a request runs: a quick second Enter (the next name typed already) must
  // not be swallowed. Declares are idempotent, so overlapping submits are harmless.
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const mine = ++latest; // only the newest submit may set or clear the error shown
    pending += 1;
    button.classList.add("is-busy");
    form.setAttribute("aria-busy", "true");
    try {
      const body = build(new FormData(form));
      const result = await submit(body);
      if (mine === latest) {
        showError(errorNode, null);
        form.dataset.last = "ok";
      }
      return result;
    } catch (error) {
      if (mine === latest) {
        showError(errorNode, error);
        form.dataset.last = "error";
      }
      return null;
    } finally {
      pending -= 1;
      if (!pending) {
        button.classList.remove("is-busy");
        form.removeAttribute("aria-busy");
      }
    }
  });
  // Editing clears a stale error.
  form.addEventListener("input", () => { if (!errorNode.hidden) showError(errorNode, null); });
}

function initForms(section) {
  wireForm(section, $("#exchange-form", section), (data) => {
    const body = {
      name: data.get("name"), type: data.get("type"),
      durable: data.has("durable"), auto_delete: data.has("auto_delete"), internal: data.has("internal"),
      arguments: {},
    };
    if (data.get("alternate")) body.arguments["alternate-exchange"] = data.get("alternate");
    return body;
  }, async (body) => {
    const made = await api("POST", "/api/exchanges", body);
    flash(section, `Declared ${made.type} exchange ${made.name}`);
    clearIfUnchanged($("#exchange-name", section), body.name);
    return made;
  });

  wireForm(section, $("#queue-form", section), (data) => {
    const args = {};
    const ttl = intOrUndefined(data.get("ttl"));
    const max = intOrUndefined(data.get("max_length"));
    if (ttl !== undefined) args["x-message-ttl"] = ttl;
    if (max !== undefined) args["x-max-length"] = max;
    if (data.get("dlx")) args["x-dead-letter-exchange"] = data.get("dlx");
    if (data.get("dlrk")) args["x-dead-letter-routing-key"] = data.get("dlrk");
    if (data.get("queue_type")) args["x-queue-type"] = data.get("queue_type");
    return { name: data.get("name"), durable: data.has("durable"), auto_delete: data.has("auto_delete"), arguments: args };
  }, async (body) => {
    const made = await api("POST", "/api/queues", body);
    flash(section, `Declared queue ${made.name}`);
    clearIfUnchanged($("#queue-name", section), body.name);
    return made;
  });

  const destType = $("#binding-destination-type", section);
  const dest = $("#binding-destination", section);
  destType.addEventListener("change", () => {
    dest.setAttribute("list", destType.value === "exchange" ? "topo-bindable-exchanges" : "topo-queue-names");
    dest.placeholder = destType.value;
  });
  wireForm(section, $("#binding-form", section), (data) => {
    let args = {};
    const raw = (data.get("arguments") || "").trim();
    if (raw) {
      try {
        args = JSON.parse(raw);
      } catch (error) {
        throw new Error(`Arguments are not valid JSON: ${error.message}`);
      }
    }
    return { source: data.get("source"), destination: data.get("destination"),
      destination_type: data.get("destination_type"), routing_key: data.get("routing_key"), arguments: args };
  }, async (body) => {
    const made = await api("POST", "/api/bindings", body);
    flash(section, `Bound ${made.destination} to ${exchangeLabel(made.source)}`);
    clearIfUnchanged($("#binding-key", section), body.routing_key);
    return made;
  });
}

// ------------------------------------------------------------------ what newer brokers refuse
let brokerVersion = null; // "3.10.8", from /api/health and broker_status
const MIRRORING_REMOVED = "classic mirrored queues were removed in RabbitMQ 4.0: use a quorum queue";

/** [major, minor] of "3.10.8" (null when unknown). */
function versionOf(text) {
  const match = /^(\d+)\.(\d+)/.exec(text || "");
  return match ? [Number(match[1]), Number(match[2])] : null;
}

const atLeast = (version, major, minor) => version && (version[0] > major || (version[0] === major && version[1] >= minor));

/** What the queue form is about to declare that a newer RabbitMQ refuses: a transient (not durable) queue that
 *  is not exclusive (every queue of this form) is a deprecated feature in 4.0 and denied by default from 4.3. */
export function queueCompatNote(form, versionText) {
  const type = form.queue_type.value || "classic";
  if (type !== "classic" || form.durable.checked) return "";
  const version = versionOf(versionText);
  const shown = versionText || "unknown";
  const permit = "deprecated_features.permit.transient_nonexcl_queues = true in rabbitmq.conf";
  if (atLeast(version, 4, 3)) {
    return `A transient (not durable), non-exclusive queue: this RabbitMQ ${shown} refuses it unless ${permit}. ` +
      "Tick durable.";
  }
  const where = version ? `works on this ${shown} broker` : "works on older brokers";
  return `A transient (not durable), non-exclusive queue: ${where}; refused by RabbitMQ 4.3 and later unless ` +
    `${permit}. Tick durable to keep it working there.`;
}

function initCompat(section) {
  const form = $("#queue-form", section);
  const note = $("#queue-compat", section);
  const update = () => {
    const text = queueCompatNote(form.elements, brokerVersion);
    note.hidden = !text;
    note.textContent = text;
  };
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  on("broker_status", (broker) => {
    if (broker.server_version) brokerVersion = broker.server_version;
    update();
  });
  api("GET", "/api/health").then((health) => {
    brokerVersion = health.broker?.server_version || brokerVersion;
    update();
  }).catch(update);
  update();
}

// ------------------------------------------------------------------ start
async function refresh(section) {
  try {
    render(section, await api("GET", "/api/topology"));
  } catch (error) {
    const source = $("#topo-source", section);
    source.dataset.source = "error";
    setText(source, `cannot list: ${error.message}`);
  }
}

export function init(section) {
  initForms(section);
  initCompat(section);
  $("#binding-filter-clear", section).addEventListener("click", () => selectQueue(section, null));
  initExplainer(section, {
    api,
    current: () => topology,
    onTopology: (listener) => listeners.add(listener),
  });
  initMatrix(section, { api, current: () => topology, onTopology: (listener) => listeners.add(listener) });
  on("topology", (data) => render(section, data));
  onLinkChange((state) => { if (state === "online" && !topology) refresh(section); });
  refresh(section);
}
