// The Graph panel's detail pane: what a clicked node or edge is, as text (everything from the broker goes in
// with textContent), and the hand-over of a binding to the Topology panel's routing explainer.
import { el } from "./dom.js";
import { exchangeLabel } from "./format.js";
import { argsText, sampleKey } from "./graph-model.js";

function facts(pairs) {
  return el("dl", { class: "facts" }, ...pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
}

/** The detail pane's content for a node: its facts, as text. */
export function nodeDetail(graph, id) {
  const n = graph.nodes.get(id);
  const flags = (o) => ["durable", "auto_delete", "exclusive", "internal"].filter((f) => o[f]).join(", ") || "none";
  let body;
  if (n.kind === "exchange" || n.kind === "default") {
    const out = [...graph.edges.values()].filter((e) => e.source === id);
    body = facts([["exchange", exchangeLabel(n.name)], ["type", n.type], ["flags", flags(n)],
      ["arguments", argsText(n.arguments)], ["bindings out", out.length],
      ["listed", n.listed ? "yes" : "not in the topology listing (named by another entity)"]]);
  } else if (n.kind === "queue") {
    const into = [...graph.edges.values()].filter((e) => e.target === id);
    body = facts([["queue", n.name], ["ready messages", n.messages], ["consumers", n.consumers],
      ["flags", flags(n)], ["arguments", argsText(n.arguments)],
      ["bound from", into.map((e) => `${exchangeLabel(e.exchange)} (${e.label})`).join("; ")],
      ["listed", n.listed ? "yes" : "not in the topology listing"]]);
  } else if (n.kind === "consumer") {
    const c = n.consumer;
    body = facts([["consumer", c.id], ["queue", c.queue], ["state", c.state], ["ack", c.ack], ["prefetch", c.prefetch],
      ["on message", c.on_message], ["handled", c.handled], ["acked", c.acked], ["rejected", c.rejected],
      ["requeued", c.nacked], ["error", c.error]]);
  } else {
    const s = n.server;
    body = facts([["fib server", s.id], ["pid", s.pid], ["queue", s.queue], ["state", s.state], ["prefetch", s.prefetch],
      ["handled", s.handled], ["errors", s.errors], ["in flight", s.in_flight], ["exit code", s.exit_code]]);
  }
  return [el("h3", {}, n.title), body];
}

/** The detail pane's content for an edge, with "Explain" for a binding (onExplain(edge)). */
export function edgeDetail(graph, id, counted, onExplain) {
  const e = graph.edges.get(id);
  const name = (nid) => graph.nodes.get(nid)?.name ?? nid;
  const titles = { binding: "Binding", e2e: "Exchange-to-exchange binding", alternate: "Alternate exchange",
    deadletter: "Dead-letter route", consume: "Consumes", default: "Default exchange (implicit binding)" };
  const rows = [["from", e.kind === "deadletter" || e.kind === "consume" ? name(e.source) : exchangeLabel(name(e.source))],
    ["to", e.kind === "e2e" || e.kind === "alternate" || e.kind === "deadletter" ? exchangeLabel(name(e.target)) : name(e.target)]];
  if (e.kind === "binding" || e.kind === "e2e" || e.kind === "default") {
    rows.push(["exchange type", e.exchangeType], ["binding key", e.routing_key === "" ? "(empty)" : e.routing_key],
      ["arguments", argsText(e.arguments)]);
  }
  if (e.kind === "deadletter") rows.push(["dead-letter routing key", e.dead_letter_routing_key ?? "the message's own"]);
  if (counted) rows.push(["messages drawn", counted]);
  const nodes = [el("h3", {}, titles[e.kind] || e.kind), facts(rows)];
  if (["binding", "e2e", "default", "alternate"].includes(e.kind)) {
    const button = el("button", { type: "button", class: "small primary", id: "graph-explain" }, "Explain in the routing explainer");
    button.addEventListener("click", () => onExplain(e));
    nodes.push(button);
  }
  return nodes;
}

/** Open the Topology panel's routing explainer with this edge's exchange and a key it matches. */
export function explainEdge(edge) {
  const exchange = edge.exchange;
  location.hash = "#topology";
  const select = document.getElementById("route-exchange");
  const key = document.getElementById("route-key");
  const headers = document.getElementById("route-headers");
  if (!select || !key) return;
  if (![...select.options].some((o) => o.value === exchange)) select.append(el("option", { value: exchange }, exchangeLabel(exchange)));
  select.value = exchange;
  select.dispatchEvent(new Event("change", { bubbles: true }));
  key.value = edge.kind === "alternate" ? "" : sampleKey(edge);
  if (headers && edge.exchangeType === "headers") {
    const wanted = Object.fromEntries(Object.entries(edge.arguments || {}).filter(([k]) => !k.startsWith("x-")));
    headers.value = JSON.stringify(wanted);
    headers.dispatchEvent(new Event("input", { bubbles: true }));
  }
  key.dispatchEvent(new Event("input", { bubbles: true }));
  key.focus();
}
