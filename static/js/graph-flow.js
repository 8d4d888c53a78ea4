// Messages moving on the graph: dots drawn on a canvas laid over Cytoscape's, along the edges a message takes.
// The dots are not graph elements (the graph's node and edge counts stay the topology's). At high rates a path
// gets one dot per short interval carrying a count ("×40") instead of one dot per message. Every message is
// counted per edge in a DOM-readable list (data-graph-flows), so tests and screen readers need not read pixels.
import { el } from "./dom.js";
import { COLOURS } from "./graph-style.js";

export const LEG_MS = 650; // one edge, start to end
const ENTER_PX = 70; // a publish comes in from this far left of its exchange
const DROP_PX = 70; // an unroutable message falls this far below its exchange
const BATCH_AFTER = 24; // messages per second on one path before they travel as counted batches
const BATCH_MS = 400; // a batch leaves every this many ms while the rate stays high
const MAX_DOTS = 400; // dots in flight at most; past this everything is batched
const LIST_EVERY_MS = 200;

const kindColour = { message: COLOURS.message, deadletter: COLOURS.deadletter, trace: "#7ee0ff" };

function bezier(s, c, t, u) {
  const a = (1 - u) * (1 - u);
  const b = 2 * (1 - u) * u;
  const d = u * u;
  return { x: a * s.x + b * c.x + d * t.x, y: a * s.y + b * c.y + d * t.y };
}

export class Flow {
  /**
   * cy: the Cytoscape instance; canvas: the overlay; list: the <ul> of counts; container: the element carrying
   * data-animated and data-dropped; describe(id) -> {kind, source, target} names for the list.
   */
  constructor({ cy, canvas, list, container, describe }) {
    this.cy = cy;
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.list = list;
    this.container = container;
    this.describe = describe;
    this.dots = [];
    this.rings = [];
    this.recent = new Map(); // path signature -> launch times in the last second
    this.buckets = new Map(); // path signature -> {legs, count, kind, label}
    this.counts = new Map(); // edge id or "drop:<node id>" -> count
    this.animated = 0;
    this.dropped = 0;
    this.dotsLaunched = 0; // one per message at low rates, one per batch at high rates
    this.frame = null;
    this.listTimer = null;
    this.scale = 1;
    this.flushTimer = setInterval(() => this.flush(), BATCH_MS);
  }

  // ------------------------------------------------------------------ input
  /**
   * One message along `legs` ({edge: id} | {enter: nodeId} | {drop: nodeId, label}) after `delay` ms.
   * Returns the time (performance.now()) its dot reaches the end of its last leg.
   */
  send(legs, { delay = 0, kind = "message", label = "" } = {}) {
    if (!legs.length) return performance.now();
    this.count(legs);
    const signature = legs.map((l) => l.edge || l.enter || `drop:${l.drop}`).join("|") + kind;
    const now = performance.now();
    const times = (this.recent.get(signature) || []).filter((t) => now - t < 1000);
    times.push(now);
    this.recent.set(signature, times);
    if (times.length > BATCH_AFTER || this.dots.length >= MAX_DOTS) {
      const bucket = this.buckets.get(signature) || { legs, count: 0, kind, label };
      bucket.count += 1;
      this.buckets.set(signature, bucket);
      return now + BATCH_MS + legs.length * LEG_MS;
    }
    this.launch(legs, { start: now + delay, kind, label, count: 1 });
    return now + delay + legs.length * LEG_MS;
  }

  count(legs) {
    for (const leg of legs) {
      const key = leg.edge || (leg.drop ? `drop:${leg.drop}` : null);
      if (!key) continue;
      this.counts.set(key, (this.counts.get(key) || 0) + 1);
      if (leg.drop) this.dropped += 1;
    }
    this.animated += 1;
    this.listSoon();
  }

  launch(legs, { start, kind, label, count }) {
    this.dots.push({ legs, start, kind, label, count });
    this.dotsLaunched += 1;
    this.listSoon();
    if (!this.frame) this.frame = requestAnimationFrame((t) => this.draw(t));
  }

  flush() {
    const now = performance.now();
    for (const [signature, times] of this.recent) {
      if (now - times[times.length - 1] > 1000) this.recent.delete(signature);
    }
    if (!this.buckets.size) return;
    for (const bucket of this.buckets.values()) {
      this.launch(bucket.legs, { start: now, kind: bucket.kind, label: bucket.label, count: bucket.count });
    }
    this.buckets.clear();
  }

  /** Forget the per-edge counts of edges that went (keep(key) false); the totals stay. */
  forget(keep) {
    let changed = false;
    for (const key of [...this.counts.keys()]) {
      if (!keep(key)) {
        this.counts.delete(key);
        changed = true;
      }
    }
    if (changed) this.listSoon();
  }

  // ------------------------------------------------------------------ geometry
  resize() {
    const box = this.canvas.parentElement.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(box.width * ratio));
    this.canvas.height = Math.max(1, Math.round(box.height * ratio));
    this.context.setTransform(ratio, 0, 0, ratio, 0, 0);
  }

  /** Where a dot is on one leg at progress u (0..1), in rendered pixels, or null if its element went. */
  at(leg, u) {
    if (leg.edge) {
      const edge = this.cy.getElementById(leg.edge);
      if (!edge.length || edge.removed()) return null;
      const s = edge.renderedSourceEndpoint();
      const t = edge.renderedTargetEndpoint();
      const m = edge.renderedMidpoint();
      const c = { x: 2 * m.x - (s.x + t.x) / 2, y: 2 * m.y - (s.y + t.y) / 2 };
      return bezier(s, c, t, u);
    }
    const node = this.cy.getElementById(leg.enter || leg.drop);
    if (!node.length || node.removed()) return null;
    const p = node.renderedPosition();
    const zoom = Math.min(1.5, Math.max(0.5, this.cy.zoom()));
    if (leg.enter) return { x: p.x - ENTER_PX * zoom * (1 - u), y: p.y };
    return { x: p.x + 10 * zoom * u, y: p.y + DROP_PX * zoom * u * u };
  }

  // ------------------------------------------------------------------ drawing
  draw(now) {
    this.frame = null;
    const g = this.context;
    const ratio = window.devicePixelRatio || 1;
    g.clearRect(0, 0, this.canvas.width / ratio, this.canvas.height / ratio);
    const alive = [];
    for (const dot of this.dots) {
      const elapsed = now - dot.start;
      if (elapsed < 0) {
        alive.push(dot);
        continue;
      }
      const index = Math.floor(elapsed / LEG_MS);
      if (index >= dot.legs.length) {
        const last = dot.legs[dot.legs.length - 1];
        const end = this.at(last, 1);
        if (end && !last.drop) this.rings.push({ ...end, start: now, colour: kindColour[dot.kind] });
        continue;
      }
      const leg = dot.legs[index];
      const u = (elapsed - index * LEG_MS) / LEG_MS;
      const p = this.at(leg, u);
      if (!p) continue; // its edge or node was deleted on the way
      alive.push(dot);
      const radius = (dot.count > 1 ? 7 : 5) * this.scale;
      g.globalAlpha = leg.drop ? 1 - u * 0.8 : 1;
      g.fillStyle = leg.drop ? COLOURS.dropped : kindColour[dot.kind] || COLOURS.message;
      g.beginPath();
      g.arc(p.x, p.y, radius, 0, Math.PI * 2);
      g.fill();
      g.font = `${Math.round(11 * this.scale)}px system-ui, sans-serif`;
      g.textBaseline = "middle";
      if (dot.count > 1) {
        g.fillStyle = COLOURS.text;
        g.fillText(`×${dot.count}`, p.x + radius + 3, p.y);
      }
      if (leg.drop && leg.label) {
        g.fillStyle = COLOURS.dropped;
        g.fillText(leg.label, p.x + radius + 3, p.y + (dot.count > 1 ? 13 * this.scale : 0));
      }
    }
    g.globalAlpha = 1;
    this.rings = this.rings.filter((ring) => now - ring.start < 350);
    for (const ring of this.rings) {
      const u = (now - ring.start) / 350;
      g.globalAlpha = 1 - u;
      g.strokeStyle = ring.colour || COLOURS.message;
      g.lineWidth = 2;
      g.beginPath();
      g.arc(ring.x, ring.y, (6 + 14 * u) * this.scale, 0, Math.PI * 2);
      g.stroke();
    }
    g.globalAlpha = 1;
    this.dots = alive;
    if (this.dots.length || this.rings.length) this.frame = requestAnimationFrame((t) => this.draw(t));
  }

  // ------------------------------------------------------------------ the DOM-readable counts
  listSoon() {
    if (this.listTimer) return;
    this.listTimer = setTimeout(() => {
      this.listTimer = null;
      this.renderList();
    }, LIST_EVERY_MS);
  }

  renderList() {
    this.container.dataset.animated = String(this.animated);
    this.container.dataset.dropped = String(this.dropped);
    this.container.dataset.dots = String(this.dotsLaunched);
    const items = [];
    for (const [key, count] of this.counts) {
      const about = this.describe(key.startsWith("drop:") ? key.slice(5) : key, key.startsWith("drop:"));
      items.push(el("li", { dataset: { edge: key, kind: about.kind, source: about.source, target: about.target,
        key: about.key ?? "", count: String(count) } }, `${about.kind} ${about.source} → ${about.target}: ${count}`));
    }
    this.list.replaceChildren(...items);
  }
}
