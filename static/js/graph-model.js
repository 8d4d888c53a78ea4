// The graph view's model: what nodes and edges the live topology, the lab's consumers and the fib servers make.
// Pure functions, no DOM and no Cytoscape: graph.js turns the result into Cytoscape elements and keeps them in
// step with it (adding, updating and removing by id, so positions of what stays are kept).
import { exchangeLabel, exchangeShort } from "./format.js";

const FINAL_CONSUMER_STATES = new Set(["stopped", "crashed", "failed", "cancelled"]);

export const nodeId = {
  exchange: (name) => `x:${name}`,
  queue: (name) => `q:${name}`,
  consumer: (id) => `c:${id}`,
  server: (id) => `s:${id}`,
};

const isBuiltIn = (name) => name === "" || name.startsWith("amq.");

/** "format=pdf, x-match=all": a headers binding's arguments as one line. */
export function argsText(args) {
  return Object.entries(args || {})
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(", ");
}

/** The text on a binding edge: its key, or its headers arguments for a headers exchange. */
export function bindingLabel(binding, exchangeType) {
  const args = binding.arguments || {};
  if (exchangeType === "headers" || (!binding.routing_key && Object.keys(args).length)) {
    return argsText(args) || "(no arguments)";
  }
  if (exchangeType === "fanout") return binding.routing_key ? `(fanout) ${binding.routing_key}` : "(fanout)";
  return binding.routing_key === "" ? "(empty key)" : binding.routing_key;
}

export function bindingEdgeId(b) {
  return `b:${JSON.stringify([b.source, b.destination_type, b.destination, b.routing_key, b.arguments || {}])}`;
}

/**
 * The graph of a topology.
 * state: {topology: {exchanges, queues, bindings}, consumers: [...], servers: [...], usedDefault: Set(queue)}
 * Returns {nodes: Map(id -> data), edges: Map(id -> data)}; data carries `kind` and everything the detail pane
 * shows. Built-in exchanges (the default one, amq.*) appear only when something uses them.
 */
// Servers the lab stopped or killed, or that exited, stay in the server list (greyed) until cleared.
const ENDED_SERVER_STATES = new Set(["stopped", "killed", "exited"]);

export function buildGraph({ topology, consumers = [], servers = [], usedDefault = new Set() }) {
  const nodes = new Map();
  const edges = new Map();
  const exchanges = new Map((topology?.exchanges || []).map((x) => [x.name, x]));
  const queues = new Map((topology?.queues || []).map((q) => [q.name, q]));
  const bindings = topology?.bindings || [];

  const addExchange = (name) => {
    const id = nodeId.exchange(name);
    if (nodes.has(id)) return id;
    const x = exchanges.get(name);
    nodes.set(id, {
      id, kind: name === "" ? "default" : "exchange", name, label: exchangeShort(name),
      title: exchangeLabel(name), type: x?.type ?? "?", listed: Boolean(x), internal: Boolean(x?.internal),
      durable: Boolean(x?.durable), auto_delete: Boolean(x?.auto_delete), arguments: x?.arguments || {},
    });
    return id;
  };
  const addQueue = (name) => {
    const id = nodeId.queue(name);
    if (nodes.has(id)) return id;
    const q = queues.get(name);
    nodes.set(id, {
      id, kind: "queue", name, label: name, title: name, listed: Boolean(q), messages: q?.messages ?? null,
      consumers: q?.consumers ?? null, durable: Boolean(q?.durable), auto_delete: Boolean(q?.auto_delete),
      exclusive: Boolean(q?.exclusive), arguments: q?.arguments || {},
    });
    return id;
  };

  // Exchanges that are not built in are always drawn; built-in ones when a binding, an alternate or a
  // dead-letter argument uses them (the default exchange: when a message went through it).
  for (const x of exchanges.values()) if (!isBuiltIn(x.name)) addExchange(x.name);
  for (const q of queues.values()) addQueue(q.name);

  for (const b of bindings) {
    if (b.source === "") continue; // the default exchange's implicit bindings: drawn only when used (below)
    const from = addExchange(b.source);
    const to = b.destination_type === "exchange" ? addExchange(b.destination) : addQueue(b.destination);
    const id = bindingEdgeId(b);
    const type = exchanges.get(b.source)?.type;
    edges.set(id, {
      id, source: from, target: to, kind: b.destination_type === "exchange" ? "e2e" : "binding",
      label: bindingLabel(b, type), exchange: b.source, exchangeType: type ?? "?", routing_key: b.routing_key,
      arguments: b.arguments || {}, destination: b.destination, destination_type: b.destination_type,
    });
  }

  for (const x of exchanges.values()) {
    const alternate = x.arguments?.["alternate-exchange"];
    if (typeof alternate !== "string" || !nodes.has(nodeId.exchange(x.name))) continue;
    const to = addExchange(alternate);
    const id = `ae:${x.name}`;
    edges.set(id, { id, source: nodeId.exchange(x.name), target: to, kind: "alternate", label: "alternate",
      exchange: x.name, alternate });
  }

  for (const q of queues.values()) {
    const dlx = q.arguments?.["x-dead-letter-exchange"];
    if (typeof dlx !== "string") continue;
    const dlrk = q.arguments?.["x-dead-letter-routing-key"];
    const to = addExchange(dlx);
    const id = `dlx:${q.name}`;
    edges.set(id, { id, source: nodeId.queue(q.name), target: to, kind: "deadletter",
      label: typeof dlrk === "string" ? `dead letter → ${dlrk}` : "dead letter", queue: q.name, exchange: dlx,
      dead_letter_routing_key: typeof dlrk === "string" ? dlrk : null });
  }

  for (const c of consumers) {
    const id = nodeId.consumer(c.id);
    const q = addQueue(c.queue);
    nodes.set(id, { id, kind: "consumer", name: c.id, label: c.id, title: `consumer ${c.id}`,
      state: c.state, final: FINAL_CONSUMER_STATES.has(c.state), consumer: c });
    const edgeId = `cq:${c.id}`;
    edges.set(edgeId, { id: edgeId, source: q, target: id, kind: "consume", label: "", queue: c.queue, consumer: c.id });
  }

  for (const s of servers) {
    const id = nodeId.server(s.id);
    const q = addQueue(s.queue || "rpc_queue");
    nodes.set(id, { id, kind: "server", name: s.id, label: `fib ${s.id}`, title: `fib server ${s.id}`,
      state: s.state, final: ENDED_SERVER_STATES.has(s.state) || s.exit_code !== null && s.exit_code !== undefined,
      server: s });
    const edgeId = `sq:${s.id}`;
    edges.set(edgeId, { id: edgeId, source: q, target: id, kind: "consume", label: "", queue: s.queue, server: s.id });
  }
  // The default exchange's implicit binding, for each queue a message reached through it (while the queue is there).
  const defaultUsed = [...usedDefault].filter((queue) => nodes.has(nodeId.queue(queue)));
  if (defaultUsed.length) {
    const from = addExchange("");
    for (const queue of defaultUsed) {
      const id = `d:${queue}`;
      edges.set(id, { id, source: from, target: nodeId.queue(queue), kind: "default", label: queue, exchange: "",
        exchangeType: "direct", routing_key: queue, arguments: {}, destination: queue, destination_type: "queue" });
    }
  }
  return { nodes, edges };
}

// ------------------------------------------------------------------ routing (to pick which edges a message takes)

/** Does a topic pattern match a routing key (RabbitMQ's rules: `*` one word, `#` zero or more)? */
export function topicMatches(pattern, key) {
  const words = (text) => (text === "" ? [] : text.split(".")); // as the broker: "" has no words, "." has two
  const p = words(pattern);
  const w = words(key);
  const memo = new Map();
  const walk = (i, j) => {
    const k = i * (w.length + 1) + j;
    if (memo.has(k)) return memo.get(k);
    let ok;
    if (i === p.length) ok = j === w.length;
    else if (p[i] === "#") ok = walk(i + 1, j) || (j < w.length && walk(i, j + 1));
    else ok = j < w.length && (p[i] === "*" || p[i] === w[j]) && walk(i + 1, j + 1);
    memo.set(k, ok);
    return ok;
  };
  return walk(0, 0);
}

/** Could this binding edge take a message with this routing key? (headers: yes, the engine decided already.) */
export function edgeTakes(edge, routingKey) {
  if (edge.kind === "alternate" || edge.kind === "default") return true;
  if (edge.kind !== "binding" && edge.kind !== "e2e") return false;
  if (edge.exchangeType === "topic") return topicMatches(edge.routing_key, routingKey);
  if (edge.exchangeType === "direct") return edge.routing_key === routingKey;
  return true; // fanout, headers, unknown
}

/**
 * The edges a message takes from `exchange` to each of `queues` (the engine's or the broker's answer):
 * a breadth-first walk over bindings, exchange-to-exchange bindings and alternate exchanges, preferring edges
 * whose key matches. Returns [[edge, ...], ...], one path per queue reached.
 */
export function routePaths(graph, exchange, routingKey, queues) {
  const out = new Map();
  for (const edge of graph.edges.values()) {
    if (!["binding", "e2e", "alternate", "default"].includes(edge.kind)) continue;
    if (!out.has(edge.source)) out.set(edge.source, []);
    out.get(edge.source).push(edge);
  }
  const start = nodeId.exchange(exchange);
  const search = (strict) => {
    const previous = new Map([[start, null]]);
    const todo = [start];
    while (todo.length) {
      const at = todo.shift();
      // Bindings before the alternate: an alternate exchange is used only when nothing else matches.
      const next = (out.get(at) || []).slice().sort((a, b) => (a.kind === "alternate") - (b.kind === "alternate"));
      for (const edge of next) {
        if (previous.has(edge.target) || (strict && !edgeTakes(edge, routingKey))) continue;
        previous.set(edge.target, edge);
        todo.push(edge.target);
      }
    }
    return previous;
  };
  const strict = search(true);
  let loose = null;
  const paths = [];
  for (const queue of queues) {
    const target = nodeId.queue(queue);
    let previous = strict;
    if (!previous.has(target)) {
      loose ??= search(false);
      previous = loose;
    }
    if (!previous.has(target)) continue;
    const path = [];
    for (let at = target; previous.get(at); at = previous.get(at).source) path.unshift(previous.get(at));
    paths.push(path);
  }
  return paths;
}

/** A routing key that a topic/direct binding key matches, for pre-filling the explainer ("lazy.#" -> "lazy"). */
export function sampleKey(edge) {
  const key = edge.routing_key ?? "";
  if (edge.exchangeType !== "topic") return key;
  const words = key.split(".").filter((w) => w !== "#").map((w) => (w === "*" ? "any" : w));
  return words.join(".");
}

/**
 * The paths of a message the lab can only guess the routing of (a dead letter re-published to its exchange):
 * every binding whose key matches, through exchange-to-exchange bindings, the alternate exchange when nothing
 * else matches. Returns [[edge, ...], ...], one path per queue reached.
 */
export function guessPaths(graph, exchange, routingKey) {
  const out = new Map();
  for (const edge of graph.edges.values()) {
    if (!out.has(edge.source)) out.set(edge.source, []);
    out.get(edge.source).push(edge);
  }
  const paths = [];
  const seen = new Set();
  const walk = (at, path) => {
    if (seen.has(at)) return;
    seen.add(at);
    const edges = out.get(at) || [];
    const taken = edges.filter((e) => (e.kind === "binding" || e.kind === "e2e") && edgeTakes(e, routingKey));
    const next = taken.length ? taken : edges.filter((e) => e.kind === "alternate");
    for (const edge of next) {
      if (edge.kind === "binding") {
        if (!seen.has(edge.target)) paths.push([...path, edge]);
        seen.add(edge.target);
      } else walk(edge.target, [...path, edge]);
    }
  };
  walk(nodeId.exchange(exchange), []);
  return paths;
}
