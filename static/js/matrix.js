// The routing matrix: for one exchange, which binding takes which routing key (POST /api/route/matrix), one row
// per key and one column per binding; keys typed or taken from recent traffic, the explanation of a cell on
// hover, the same matrix as CSV. It builds its own card under the routing explainer. Text only, never markup.
import { $, el } from "./dom.js";
import { on } from "./socket.js";

const RECENT_KEPT = 50; // recent routing keys remembered per exchange
const label = (name) => (name === "" ? "(default exchange)" : name);

function bindingTitle(b) {
  const what = b.arguments && Object.keys(b.arguments).length ? JSON.stringify(b.arguments) : b.routing_key;
  return `${label(b.source)} ${b.destination_type === "exchange" ? "⇒" : "→"} ${b.destination} [${what}]`;
}

function sameBinding(a, b) {
  return a.source === b.source && a.destination === b.destination && a.destination_type === b.destination_type
    && a.routing_key === b.routing_key && JSON.stringify(a.arguments || {}) === JSON.stringify(b.arguments || {});
}

function card() {
  return el("div", { class: "card topo-card route-matrix", id: "route-matrix" },
    el("h2", {}, "Routing matrix ", el("span", { class: "hint" }, "which binding takes which key? nothing is published")),
    el("form", { id: "matrix-form", class: "route-form", autocomplete: "off" },
      el("label", {}, "Exchange ", el("select", { id: "matrix-exchange", name: "exchange" })),
      el("label", { class: "grow" }, "Routing keys (one per line) ",
        el("textarea", { id: "matrix-keys", name: "routing_keys", rows: "4", spellcheck: "false",
          placeholder: "quick.orange.rabbit\nlazy.orange.elephant\nquick.brown.fox" })),
      el("div", { class: "matrix-actions" },
        el("button", { type: "submit", id: "matrix-show" }, "Show"),
        el("button", { type: "button", id: "matrix-recent", title: "the keys recently published to this exchange" },
          "Recent keys"),
        el("button", { type: "button", id: "matrix-csv" }, "CSV"))),
    el("div", { id: "matrix-result", class: "matrix-result", dataset: { state: "idle" } },
      el("p", { class: "muted" }, "Type a few routing keys: each row shows which bindings would take that key.")));
}

function tableView(matrix, explain) {
  const head = el("tr", {}, el("th", { class: "matrix-key" }, "routing key"),
    ...matrix.bindings.map((b) => el("th", { class: "matrix-binding", title: bindingTitle(b) },
      el("span", { class: "dst" }, b.destination), el("code", {}, b.routing_key || "(empty)"))));
  const rows = matrix.keys.map((key, i) => el("tr", { dataset: { key } },
    el("th", { class: "matrix-key", scope: "row" }, key === "" ? el("span", { class: "muted" }, "(empty key)") : key),
    ...matrix.cells[i].map((cell, j) => {
      const td = el("td", { class: cell ? "cell on" : "cell off", dataset: { column: j },
        title: `${cell ? "matches" : "does not match"}: ${bindingTitle(matrix.bindings[j])}` }, cell ? "✓" : "·");
      td.addEventListener("mouseenter", () => explain(td, key, matrix.bindings[j]), { once: true });
      return td;
    })));
  return el("div", { class: "matrix-scroll" },
    el("table", { class: "matrix" }, el("thead", {}, head), el("tbody", {}, ...rows)));
}

export function initMatrix(section, { api, current, onTopology }) {
  const explainer = $("#route-explainer", section);
  if (!explainer) return;
  const node = card();
  explainer.after(node);
  if (!document.querySelector("link[data-matrix-css]")) {
    document.head.append(el("link", { rel: "stylesheet", href: "/static/css/matrix.css", dataset: { matrixCss: "1" } }));
  }
  const select = $("#matrix-exchange", node);
  const keysInput = $("#matrix-keys", node);
  const output = $("#matrix-result", node);
  const recent = new Map(); // exchange -> [routing keys], newest last
  const explained = new Map(); // `${exchange}\n${key}` -> POST /api/route answer (for the hover explanations)

  const keys = () => keysInput.value.split("\n").map((k) => k.replace(/\r$/, "")).filter((k, i, all) =>
    k !== "" || all.length === 1);
  const body = () => ({ exchange: select.value, routing_keys: keys() });

  function show(state, ...nodes) {
    output.dataset.state = state;
    output.replaceChildren(...nodes);
  }

  async function explain(td, key, binding) {
    const id = `${select.value}\n${key}`;
    try {
      if (!explained.has(id)) {
        explained.set(id, api("POST", "/api/route", { exchange: select.value, routing_key: key, all_misses: true }));
      }
      const answer = await explained.get(id);
      const item = [...answer.matches, ...answer.misses].find((m) => sameBinding(m.binding, binding));
      if (item?.explanation?.text) td.title = item.explanation.text;
    } catch (error) {
      td.title = `cannot explain: ${error.message}`;
    }
  }

  async function showMatrix() {
    if (!select.value) return show("error", el("p", { class: "form-error" }, "pick an exchange (not the default one)"));
    explained.clear();
    try {
      const matrix = await api("POST", "/api/route/matrix", body());
      show(matrix.bindings.length ? "shown" : "empty", matrix.bindings.length
        ? tableView(matrix, explain)
        : el("p", { class: "muted" }, `${label(matrix.exchange)} has no bindings to compare.`));
    } catch (error) {
      show("error", el("p", { class: "form-error" }, error.message));
    }
  }

  async function downloadCsv() {
    try {
      const response = await fetch("/api/route/matrix?format=csv", { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body()) });
      if (!response.ok) {
        const data = await response.json().catch(() => null);
        throw new Error(data?.error?.message || `the matrix answered ${response.status}`);
      }
      const url = URL.createObjectURL(await response.blob());
      const link = el("a", { href: url, download: `routing-matrix-${select.value}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (error) {
      show("error", el("p", { class: "form-error" }, error.message));
    }
  }

  function fillExchanges(topology) {
    const chosen = select.value;
    const names = topology.exchanges.map((x) => x.name).filter((n) => n !== "");
    select.replaceChildren(...topology.exchanges.filter((x) => x.name !== "")
      .map((x) => el("option", { value: x.name }, `${x.name}  ·  ${x.type}`)));
    const mine = names.find((n) => !n.startsWith("amq."));
    select.value = names.includes(chosen) ? chosen : (mine ?? names[0] ?? "");
  }

  on("published", (data) => {
    if (!data || typeof data.routing_key !== "string" || !data.exchange) return;
    const list = (recent.get(data.exchange) || []).filter((k) => k !== data.routing_key);
    list.push(data.routing_key);
    recent.set(data.exchange, list.slice(-RECENT_KEPT));
  });
  $("#matrix-form", node).addEventListener("submit", (event) => { event.preventDefault(); showMatrix(); });
  $("#matrix-csv", node).addEventListener("click", downloadCsv);
  $("#matrix-recent", node).addEventListener("click", () => {
    const list = recent.get(select.value) || [];
    if (!list.length) {
      show("empty", el("p", { class: "muted" }, `nothing published to ${select.value} yet from this page`));
      return;
    }
    keysInput.value = list.join("\n");
    showMatrix();
  });
  onTopology((topology) => fillExchanges(topology));
  if (current()) fillExchanges(current());
}
