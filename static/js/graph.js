// The Graph panel: the live topology as a graph (Cytoscape.js, laid out by dagre), with messages moving on it.
// It follows the `topology`, `consumer(s)` and `rpc_servers` events: what is new is added and placed near its
// neighbours, what went is removed, and everything else stays where it is (a full layout runs only on the first
// draw and when asked). Messages come from `published`, `returned`, `delivery`, `nack` and, when on, `trace`.
// Everything from the broker is text: canvas labels, and textContent in the detail pane.
import cytoscape from "../vendor/cytoscape/cytoscape.esm.min.js";
import cytoscapeDagre from "../vendor/cytoscape-dagre/cytoscape-dagre.esm.min.js";
import { $, el, setText } from "./dom.js";
import { on } from "./socket.js";
import { api } from "./api.js";
import { plural } from "./format.js";
import { buildGraph, guessPaths, nodeId, routePaths } from "./graph-model.js";
import { edgeDetail, explainEdge, nodeDetail } from "./graph-detail.js";
import { graphStyle } from "./graph-style.js";
import { Flow, LEG_MS } from "./graph-flow.js";

cytoscape.use(cytoscapeDagre);

const LARGE_SCALE = 1.6;
const MAX_FIT_ZOOM = 1.6; // a small graph is not blown up to fill the screen
const RANK_PX = 260; // distance between columns (exchange -> queue -> consumer) for nodes placed one by one
const GAP_PX = 34; // vertical room a node keeps free around itself
const TRACE_WAIT_MS = 400; // how long a traced lab message waits for its own `published` event
const MEMORY = 5000; // lab ids remembered (for deliveries and dead letters that follow their publish)
const FINAL_CONSUMER_STATES = new Set(["stopped", "crashed", "failed", "cancelled"]);
const KIND_ORDER = { exchange: 0, default: 0, queue: 1, consumer: 2, server: 2 };

const LAYOUT = { name: "dagre", rankDir: "LR", nodeSep: 6, rankSep: 110, edgeSep: 6, animate: false, padding: 20,
  nodeDimensionsIncludeLabels: true };

/** A Map that forgets its oldest entries past `limit`. */
function remember(map, key, value, limit = MEMORY) {
  map.set(key, value);
  if (map.size > limit) map.delete(map.keys().next().value);
}

export function init(section) {
  const container = $("#graph", section);
  const card = $("#graph-card", section);
  const detail = $("#graph-detail", section);
  const nodeList = $("#graph-node-list", section);
  const state = { topology: null, consumers: new Map(), servers: [], usedDefault: new Set() };
  let graph = { nodes: new Map(), edges: new Map() };
  let laidOut = false; // the first full layout has run
  let viewTouched = false; // the user panned or zoomed: do not fit on their behalf
  let large = localStorage.getItem("rabbitlens.graph.large") === "1";

  const cy = cytoscape({
    container, elements: [], style: graphStyle(1), minZoom: 0.08, maxZoom: 4, boxSelectionEnabled: false,
    selectionType: "single",
  });
  const flow = new Flow({
    cy, canvas: $("#graph-flow", section), list: $("#graph-flow-list", section), container,
    describe: (id, isDrop) => {
      if (isDrop) {
        const node = graph.nodes.get(id);
        return { kind: "drop", source: node?.name ?? id, target: "" };
      }
      const edge = graph.edges.get(id);
      const name = (nid) => graph.nodes.get(nid)?.name ?? nid;
      return edge ? { kind: edge.kind, source: name(edge.source), target: name(edge.target), key: edge.routing_key ?? "" }
        : { kind: "gone", source: id, target: "" };
    },
  });

  // ---------------------------------------------------------------- keeping Cytoscape in step with the model
  const signature = (data) => JSON.stringify(data);

  // One line per node (the detail pane has the rest): a queue's ready count, an exchange's type.
  function nodeLabel(n) {
    if (n.kind === "queue") return n.messages ? `${n.label} (${n.messages})` : n.label;
    if (n.kind === "exchange") return `${n.label} · ${n.type}`;
    if ((n.kind === "consumer" || n.kind === "server") && n.final) return `${n.label} (${n.state})`;
    return n.label;
  }

  function cyData(item) {
    const { id, kind, source, target, label, internal, final } = item;
    const data = { id, kind, label: source ? label : nodeLabel(item), internal: Boolean(internal), final: Boolean(final) };
    if (source) Object.assign(data, { source, target });
    return data;
  }

  function apply() {
    graph = buildGraph({ topology: state.topology, consumers: [...state.consumers.values()], servers: state.servers,
      usedDefault: state.usedDefault });
    routeCache = new Map();
    const added = [];
    cy.batch(() => {
      cy.edges().forEach((e) => { if (!graph.edges.has(e.id())) e.remove(); });
      cy.nodes().forEach((n) => { if (!graph.nodes.has(n.id())) n.remove(); });
      for (const node of graph.nodes.values()) {
        const data = cyData(node);
        const existing = cy.getElementById(node.id);
        if (existing.length) {
          if (existing.scratch("sig") !== signature(data)) existing.data(data).scratch("sig", signature(data));
        } else {
          added.push(cy.add({ group: "nodes", data }).scratch("sig", signature(data)));
        }
      }
      for (const edge of graph.edges.values()) {
        const data = cyData(edge);
        const existing = cy.getElementById(edge.id);
        if (existing.length) {
          if (existing.scratch("sig") !== signature(data)) existing.data(data).scratch("sig", signature(data));
        } else {
          cy.add({ group: "edges", data }).scratch("sig", signature(data));
        }
      }
    });
    if (!laidOut && cy.nodes().length) {
      relayout();
    } else if (added.length) {
      placeNew(added);
      if (!viewTouched && container.clientWidth) fit(); // keep the newcomers in view, unless the user has the view
    }
    flow.forget((key) => (key.startsWith("drop:") ? graph.nodes.has(key.slice(5)) : graph.edges.has(key)));
    container.dataset.nodes = String(cy.nodes().length);
    container.dataset.edges = String(cy.edges().length);
    $("#graph-empty", section).hidden = cy.nodes().length > 0;
    summarise();
    listNodes();
  }

  function relayout() {
    const visible = container.clientWidth > 0;
    cy.layout({ ...LAYOUT, fit: false }).run();
    laidOut = true;
    if (visible) fit();
    listNodes();
  }

  /** Place new nodes one by one, each beside the nodes it is joined to, in a free spot (nothing else moves). */
  function placeNew(added) {
    const fresh = new Set(added.map((n) => n.id()));
    const placed = () => cy.nodes().filter((n) => !fresh.has(n.id()));
    const order = added.slice().sort((a, b) => KIND_ORDER[a.data("kind")] - KIND_ORDER[b.data("kind")]);
    for (const node of order) {
      const incoming = node.incomers("node").filter((n) => !fresh.has(n.id()));
      const outgoing = node.outgoers("node").filter((n) => !fresh.has(n.id()));
      const mean = (nodes, axis) => nodes.reduce((sum, n) => sum + n.position(axis), 0) / nodes.length;
      let x;
      let y;
      if (incoming.length) {
        x = Math.max(...incoming.map((n) => n.position("x"))) + RANK_PX;
        y = mean(incoming, "y");
      } else if (outgoing.length) {
        x = Math.min(...outgoing.map((n) => n.position("x"))) - RANK_PX;
        y = mean(outgoing, "y");
      } else {
        const others = placed();
        const box = others.length ? others.boundingBox() : { x1: 0, y2: 0 };
        const column = others.filter((n) => KIND_ORDER[n.data("kind")] === KIND_ORDER[node.data("kind")]);
        x = column.length ? mean(column, "x") : box.x1 + KIND_ORDER[node.data("kind")] * RANK_PX;
        y = (column.length ? column.boundingBox().y2 : box.y2) + GAP_PX;
      }
      node.position(freeSpot(placed(), x, y));
      fresh.delete(node.id());
    }
  }

  function freeSpot(others, x, y) {
    const taken = others.map((n) => n.position());
    const clear = (cy2) => taken.every((p) => Math.abs(p.x - x) > RANK_PX / 2 || Math.abs(p.y - cy2) > GAP_PX * 0.9);
    for (let step = 0; step < 400; step += 1) {
      const offset = (step % 2 ? 1 : -1) * Math.ceil(step / 2) * GAP_PX;
      if (clear(y + offset)) return { x, y: y + offset };
    }
    return { x, y };
  }

  function summarise() {
    const counts = { exchange: 0, queue: 0, consumer: 0, server: 0 };
    for (const n of graph.nodes.values()) counts[n.kind === "default" ? "exchange" : n.kind] += 1;
    setText($("#graph-summary", section), [plural(counts.exchange, "exchange"), plural(counts.queue, "queue"),
      plural(counts.consumer, "consumer"), counts.server ? plural(counts.server, "fib server") : null,
      plural(graph.edges.size, "edge")].filter(Boolean).join(" · "));
  }

  let listTimer = null;
  /** The DOM-readable list of nodes and positions: at once after a change, debounced while panning. */
  function listNodes(later = false) {
    clearTimeout(listTimer);
    if (later) {
      listTimer = setTimeout(listNodes, 60);
      return;
    }
    nodeList.replaceChildren(...cy.nodes().map((n) => {
      const model = graph.nodes.get(n.id());
      const p = n.position();
      const r = n.renderedPosition();
      return el("li", { dataset: { id: n.id(), kind: n.data("kind"), name: model?.name ?? "", x: String(Math.round(p.x)),
        y: String(Math.round(p.y)), rx: String(Math.round(r.x)), ry: String(Math.round(r.y)) } },
      `${n.data("kind")} ${model?.name ?? ""}`);
    }));
  }

  // ---------------------------------------------------------------- messages
  const published = new Map(); // lab id -> {exchange, routing_key, arrivals: {queue: time}}
  const deliveries = new Map(); // "consumer:tag" -> delivery
  const deadLettered = new Map(); // lab ids already drawn going to a dead-letter exchange (bounded, as below)
  const droppedIds = new Map(); // lab ids already drawn falling off their exchange
  let routeCache = new Map(); // "exchange\0key\0queues" -> paths, for the current graph (many messages, few routes)

  function useDefault(queue) {
    if (!queue || state.usedDefault.has(queue)) return;
    state.usedDefault.add(queue);
    apply();
  }

  /** Animate a message from outside into `exchange`, then to each queue (or off the exchange when none). */
  function route(exchange, key, queues, { kind = "message", id = null, delay = 0, dropLabel = "unroutable" } = {}) {
    if (exchange === "" && queues.length === 1) useDefault(queues[0]);
    const xid = nodeId.exchange(exchange);
    if (!cy.getElementById(xid).length) return {};
    const enter = { enter: xid };
    const arrivals = {};
    if (!queues.length) {
      if (id && droppedIds.has(id)) return arrivals; // its return came first and was drawn
      if (id) remember(droppedIds, id, true);
      flow.send([enter, { drop: xid, label: dropLabel }], { delay, kind });
      return arrivals;
    }
    const cacheKey = `${exchange}\0${key}\0${queues.join("\0")}`;
    let paths = routeCache.get(cacheKey);
    if (!paths) {
      paths = routePaths(graph, exchange, key, queues);
      if (routeCache.size > 2000) routeCache = new Map();
      routeCache.set(cacheKey, paths);
    }
    for (const path of paths) {
      const queue = graph.nodes.get(path[path.length - 1].target)?.name;
      arrivals[queue] = flow.send([enter, ...path.map((e) => ({ edge: e.id }))], { delay, kind });
    }
    return arrivals;
  }

  function onPublished(p) {
    if (p.refused || p.confirmed === false) return;
    let arrivals = {};
    if (p.routed !== false && !p.predicted?.length) {
      // Routed, but the engine cannot say where (bindings it cannot see): drawn into its exchange only.
      const xid = nodeId.exchange(p.exchange);
      if (cy.getElementById(xid).length) flow.send([{ enter: xid }]);
    } else {
      arrivals = route(p.exchange, p.routing_key, p.routed === false ? [] : p.predicted, { id: p.id,
        dropLabel: p.mandatory ? "returned" : "unroutable" });
    }
    if (p.id) remember(published, p.id, { exchange: p.exchange, routing_key: p.routing_key, arrivals });
  }

  function onReturned(r) {
    if (droppedIds.has(r.id)) return;
    remember(droppedIds, r.id, true);
    const xid = nodeId.exchange(r.exchange);
    if (cy.getElementById(xid).length) flow.send([{ enter: xid }, { drop: xid, label: "returned" }]);
  }

  /** Legs from a dead-lettering queue (the first `x-death` entry) through its dead-letter exchange to `queue`. */
  function deadLetterLegs(deaths, exchange, key, queue) {
    const from = deaths[0]?.queue;
    const dlx = from ? graph.edges.get(`dlx:${from}`) : null;
    const target = dlx ? dlx.exchange : exchange;
    const path = routePaths(graph, target, key, [queue])[0] || [];
    return [dlx ? { edge: dlx.id } : { enter: nodeId.exchange(target) }, ...path.map((e) => ({ edge: e.id }))];
  }

  function onDelivery(d) {
    if (d.exchange === "" && d.routing_key === d.queue) useDefault(d.queue);
    remember(deliveries, `${d.consumer_id}:${d.delivery_tag}`, d);
    const edge = `cq:${d.consumer_id}`;
    const deaths = d.properties?.headers?.["x-death"];
    let arrival = d.id ? published.get(d.id)?.arrivals?.[d.queue] : undefined;
    // A dead letter (expired, rejected, over max-length) the lab did not see happen: its x-death says where from.
    if (Array.isArray(deaths) && deaths.length && d.id && !deadLettered.has(d.id)) {
      remember(deadLettered, d.id, true);
      arrival = flow.send(deadLetterLegs(deaths, d.exchange, d.routing_key, d.queue), { kind: "deadletter" });
    }
    if (!cy.getElementById(edge).length) return;
    flow.send([{ edge }], { delay: arrival ? Math.max(0, arrival - performance.now()) : 0 });
  }

  /** A lab consumer rejected a message (no requeue): it goes to the queue's dead-letter exchange, if any. */
  function onNack(n) {
    if (n.requeue) return;
    const delivery = deliveries.get(`${n.consumer_id}:${n.delivery_tag}`);
    const queue = n.queue || delivery?.queue;
    const dlx = graph.edges.get(`dlx:${queue}`);
    const start = Math.max(0, LEG_MS - 100);
    if (!dlx) {
      const qid = nodeId.queue(queue);
      if (cy.getElementById(qid).length) flow.send([{ drop: qid, label: "rejected" }], { delay: start });
      return;
    }
    if (n.id) remember(deadLettered, n.id, true);
    const key = dlx.dead_letter_routing_key ?? delivery?.routing_key ?? "";
    const paths = guessPaths(graph, dlx.exchange, key);
    const first = { edge: dlx.id };
    if (!paths.length) {
      flow.send([first, { drop: dlx.target, label: "unroutable" }], { kind: "deadletter", delay: start });
    }
    const arrivals = n.id ? published.get(n.id)?.arrivals : null;
    for (const path of paths) {
      const at = flow.send([first, ...path.map((e) => ({ edge: e.id }))], { kind: "deadletter", delay: start });
      const queue = graph.nodes.get(path[path.length - 1].target)?.name;
      if (arrivals && queue) arrivals[queue] = at; // its delivery from there waits for the dot
    }
  }

  /** The firehose: others' publishes, and dead letters as the broker re-publishes them. */
  function onTrace(t) {
    const headers = t.properties?.headers || {};
    const labId = t.id || null;
    const deaths = Array.isArray(headers["x-death"]) && headers["x-death"].length ? headers["x-death"] : null;
    if (deaths) {
      // The broker dead-letters inside the queue (no trace "publish"): the copy shows when it is delivered from
      // the dead-letter queue (or, on brokers that trace it, re-published), its x-death naming the queue it left.
      if (labId && deadLettered.has(labId)) return;
      if (labId) remember(deadLettered, labId, true);
      const queues = t.kind === "deliver" ? [t.queue] : t.routed_queues || [];
      for (const queue of queues) flow.send(deadLetterLegs(deaths, t.exchange, t.routing_key, queue), { kind: "deadletter" });
      return;
    }
    if (t.kind !== "publish") return;
    const draw = () => route(t.exchange, t.routing_key, t.routed_queues || [], { kind: "trace" });
    if (!labId) draw();
    // The lab's own publish is drawn from its `published` event, which may come a moment after the firehose's
    // copy; a lab id with no such event (a burst's copies) is drawn from the trace.
    else if (!published.has(labId)) setTimeout(() => { if (!published.has(labId)) draw(); }, TRACE_WAIT_MS);
  }

  // ---------------------------------------------------------------- details
  const showNode = (id) => { if (graph.nodes.has(id)) detail.replaceChildren(...nodeDetail(graph, id)); };
  const showEdge = (id) => {
    if (graph.edges.has(id)) detail.replaceChildren(...edgeDetail(graph, id, flow.counts.get(id), explainEdge));
  };

  cy.on("tap", "node", (event) => showNode(event.target.id()));
  cy.on("tap", "edge", (event) => showEdge(event.target.id()));
  cy.on("dragfree", "node", () => listNodes());
  // The user has the view once they zoom (wheel, pinch) or pan (a drag on the background); fit() gives it back.
  let pressed = false;
  container.addEventListener("pointerdown", () => { pressed = true; });
  window.addEventListener("pointerup", () => { pressed = false; });
  container.addEventListener("wheel", () => { viewTouched = true; }, { passive: true });
  cy.on("viewport", () => {
    if (pressed) viewTouched = true;
    listNodes(true);
  });

  // ---------------------------------------------------------------- view: size, fit, full screen, large type
  function scale() {
    return large || document.body.classList.contains("presenter") ? LARGE_SCALE : 1;
  }
  function restyle() {
    const s = scale();
    cy.style(graphStyle(s));
    flow.scale = s;
    section.classList.toggle("graph-large", s > 1);
    $("#graph-large", section).setAttribute("aria-pressed", String(large));
  }
  if (window.innerWidth < 1200) $("#graph-legend", section).open = false; // on a small screen it would cover the graph
  new MutationObserver(restyle).observe(document.body, { attributes: true, attributeFilter: ["class"] });
  restyle();

  function fit() {
    cy.fit(undefined, 30);
    if (cy.zoom() > MAX_FIT_ZOOM) {
      cy.zoom(MAX_FIT_ZOOM);
      cy.center();
    }
    viewTouched = false;
  }
  new ResizeObserver(() => {
    cy.resize();
    flow.resize();
    if (container.clientWidth && laidOut && !viewTouched) fit();
  }).observe(container);
  $("#graph-fit", section).addEventListener("click", fit);
  $("#graph-relayout", section).addEventListener("click", () => {
    relayout();
    fit();
  });
  $("#graph-large", section).addEventListener("click", () => {
    large = !large;
    localStorage.setItem("rabbitlens.graph.large", large ? "1" : "0");
    restyle();
  });
  const fullButton = $("#graph-fullscreen", section);
  fullButton.disabled = !card.requestFullscreen;
  fullButton.addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else card.requestFullscreen().catch((error) => setText($("#graph-summary", section), `full screen refused: ${error.message}`));
  });
  document.addEventListener("fullscreenchange", () => {
    fullButton.setAttribute("aria-pressed", String(document.fullscreenElement === card));
    setText(fullButton, document.fullscreenElement === card ? "Leave full screen" : "Full screen");
  });

  // ---------------------------------------------------------------- live
  on("topology", (topology) => { state.topology = topology; apply(); });
  on("consumers", (listing) => { state.consumers = new Map(listing.map((c) => [c.id, c])); apply(); });
  on("consumer", (c) => {
    // A consumer that ended is kept (greyed) only while the listing still has it: the "stopped" of one removed
    // through the API may arrive after the listing without it.
    if (FINAL_CONSUMER_STATES.has(c.state) && !state.consumers.has(c.id)) return;
    state.consumers.set(c.id, c);
    apply();
  });
  on("rpc_servers", (data) => { state.servers = data.servers || []; apply(); });
  on("published", onPublished);
  on("returned", onReturned);
  on("delivery", onDelivery);
  on("nack", onNack);
  on("trace", onTrace);
  on("rpc_request", (r) => {
    // The lab's RPC client publishes its requests through the default exchange, keyed by the queue's name.
    useDefault(r.queue);
    if (graph.edges.has(`d:${r.queue}`)) flow.send([{ enter: nodeId.exchange("") }, { edge: `d:${r.queue}` }]);
  });

  Promise.allSettled([api("GET", "/api/topology"), api("GET", "/api/consumers"), api("GET", "/api/rpc/servers")])
    .then(([topology, consumers, servers]) => {
      if (topology.status === "fulfilled" && !state.topology) state.topology = topology.value;
      if (consumers.status === "fulfilled" && !state.consumers.size) {
        state.consumers = new Map(consumers.value.map((c) => [c.id, c]));
      }
      if (servers.status === "fulfilled" && !state.servers.length) state.servers = servers.value.servers || [];
      apply();
    });
}
