// The live feed: one row per publish, delivery and return, newest first, at most `cap` rows in view.
// Totals are exact whatever the view keeps; rows dropped from the view (cap, pause overflow) are counted.
// Each lab id remembers where the routing engine predicted it would go and where it was delivered, so
// rows can flag a difference. Everything from the broker goes in as text.
import { el } from "./dom.js";
import { bodySnippet, clock, exchangeShort } from "./format.js";
import { LiveList, everyFrame } from "./list.js";

const MESSAGE_MEMORY = 5; // remember predictions for cap × this many lab ids

function same(a, b) {
  return a.length === b.length && a.every((x) => b.includes(x));
}

export class Feed {
  constructor({ tbody, stats, empty, filterEmpty, onSelect }) {
    this.tbody = tbody;
    this.statsNode = stats;
    this.filterEmptyNode = filterEmpty;
    this.onSelect = onSelect;
    this.paused = false;
    this.filterText = "";
    this.filterKind = "";
    this.view = new LiveList({ container: tbody, cap: 1000, empty, render: ({ kind, data }) => this.row(kind, data),
      onRemove: (row) => { if (row.dataset.settleKey) this.deliveryRows.delete(row.dataset.settleKey); },
      onPaint: () => this.renderStats() });
    this.renderStatsSoon = everyFrame(() => this.renderStats());
    this.messages = new Map(); // lab id -> {predicted, routed, delivered: Set, cells: [], published}
    this.deliveryRows = new Map(); // "consumer:tag" -> status cell
    this.settled = new Map(); // "consumer:tag" -> [label, class] for acks that beat their row to the screen
    this.lastDelivery = new Map(); // consumer id -> "consumer:tag" of its newest delivery
    this.waiting = new Set(); // lab ids delivered to fewer queues than predicted (so far)
    this.consumerOf = () => "lab"; // queue -> "lab" | "other" | "none": who consumes it (set by the panel)
    this.totals = { published: 0, refused: 0, delivery: 0, ack: 0, nack: 0, returned: 0, unroutable: 0, mismatch: 0 };
    this.renderStats();
  }

  // ------------------------------------------------------------------ input
  add(kind, data) {
    if (kind === "published" && data.refused) {
      this.totals.refused += 1; // the broker closed the channel on it (404 no exchange, 403, 406): not published
    } else if (kind === "published") {
      this.totals.published += 1;
      if (data.confirmed === false) this.totals.refused += 1; // basic.nack: the broker refused it
      else if (!data.routed) this.totals.unroutable += 1;
      this.remember(data.id, { predicted: data.predicted, routed: data.routed, published: data,
        notes: data.prediction_notes || [], ...(data.prediction_check ? { check: data.prediction_check } : {}) });
    } else if (kind === "prediction_check") {
      // The server read the topology again after prediction and broker differed: say why on the message's rows.
      const msg = this.remember(data.id, { check: data });
      this.judge(data.id, msg);
      return;
    } else if (kind === "delivery") {
      this.totals.delivery += 1;
      const msg = data.id ? this.remember(data.id, {}) : null;
      this.lastDelivery.set(data.consumer_id, `${data.consumer_id}:${data.delivery_tag}`);
      if (msg) {
        msg.delivered.add(data.queue);
        msg.deliveries.push(data);
      }
    } else if (kind === "returned") {
      this.totals.returned += 1;
      const msg = this.remember(data.id, {});
      msg.returned = data;
    } else if (kind === "ack" || kind === "nack") {
      this.totals[kind] += 1;
      this.settle(kind, data);
      this.renderStatsSoon();
      return;
    }
    this.view.add({ kind, data });
  }

  /** Rows kept in view (the messages remembered are a multiple of it). */
  get cap() {
    return this.view.cap;
  }

  remember(id, fields) {
    let msg = this.messages.get(id);
    if (!msg) {
      msg = { predicted: null, routed: null, delivered: new Set(), deliveries: [], cells: [], returned: null };
      this.messages.set(id, msg);
      if (this.messages.size > this.cap * MESSAGE_MEMORY) {
        this.messages.delete(this.messages.keys().next().value);
      }
    }
    Object.assign(msg, fields);
    return msg;
  }

  message(id) {
    return this.messages.get(id);
  }

  settle(kind, data) {
    const key = `${data.consumer_id}:${data.delivery_tag}`;
    const label = kind === "ack" ? "acked" : data.requeue ? "nacked · requeued" : "rejected";
    const className = `settle settle-${kind === "ack" ? "ack" : data.requeue ? "requeue" : "reject"}`;
    const cell = this.deliveryRows.get(key);
    if (cell) {
      cell.textContent = label;
      cell.className = className;
      return;
    }
    this.settled.set(key, [label, className]);
    if (this.settled.size > this.cap * 2) this.settled.delete(this.settled.keys().next().value);
  }

  /** A consumer crashed: under auto ack the message it held is gone for good, and its row says so. */
  crashed(consumer) {
    if (consumer.ack !== "auto") return;
    const key = this.lastDelivery.get(consumer.id);
    if (!key) return;
    const label = "lost · auto ack";
    const className = "settle settle-lost";
    const cell = this.deliveryRows.get(key);
    if (cell) {
      cell.textContent = label;
      cell.className = className;
      cell.title = "auto ack: the broker already forgot this message; it is lost";
    } else {
      this.settled.set(key, [label, className]);
    }
  }

  /** Who consumes each queue changed: re-judge the messages still waiting for a delivery. */
  setConsumers(consumerOf) {
    this.consumerOf = consumerOf;
    for (const id of [...this.waiting]) {
      const msg = this.messages.get(id);
      if (msg) this.judge(id, msg);
      else this.waiting.delete(id);
    }
  }

  /** Why a message is not (yet) in every predicted queue's deliveries, in words. */
  waitingNote(waiting) {
    const byKind = { lab: [], other: [], none: [] };
    for (const queue of waiting) byKind[this.consumerOf(queue)]?.push(queue);
    const parts = [];
    if (byKind.lab.length) parts.push("(pending)");
    if (byKind.other.length) parts.push(`queued in ${byKind.other.join(", ")} for a consumer outside the lab (not seen here)`);
    if (byKind.none.length) parts.push(`queued in ${byKind.none.join(", ")}, no consumer yet`);
    return parts.join(" · ");
  }

  // ------------------------------------------------------------------ controls
  setCap(cap) {
    this.view.setCap(cap);
    this.renderStats();
  }

  setPaused(paused) {
    this.paused = paused;
    this.view.setPaused(paused);
    this.renderStats();
  }

  setFilter(text, kind) {
    this.filterText = (text || "").trim().toLowerCase();
    this.filterKind = kind || "";
    for (const row of this.tbody.rows) row.hidden = !this.matches(row);
    this.renderStats();
  }

  clear() {
    this.view.clear();
    this.deliveryRows.clear();
    this.renderStats();
  }

  matches(row) {
    if (this.filterKind) {
      const kinds = row.dataset.kinds.split(" ");
      if (!kinds.includes(this.filterKind)) return false;
    }
    return !this.filterText || row.dataset.search.includes(this.filterText);
  }

  // ------------------------------------------------------------------ rendering
  row(kind, data) {
    const msg = data.id ? this.messages.get(data.id) : null;
    const kinds = [kind];
    let label = kind;
    let tone = kind;
    if (kind === "published" && data.refused) {
      kinds.push("returned");
      label = `refused ${data.refused.reply_code}`;
      tone = "unroutable";
    } else if (kind === "published") {
      if (data.confirmed === false) {
        label = "published · nacked";
        tone = "unroutable";
      } else if (data.routed === false) {
        kinds.push("returned");
        label = data.mandatory ? "published · unroutable" : "published · dropped";
        tone = "unroutable";
      }
    } else if (kind === "returned") {
      label = `returned ${data.reply_code}`;
    } else if (kind === "delivery" && data.redelivered) {
      label = "delivery · redelivered";
    }
    const where = kind === "delivery" ? [el("span", { class: "q" }, data.queue), el("span", { class: "muted" }, ` · ${data.consumer_id}`)]
      : kind === "returned" ? [el("span", { class: "bad" }, data.reply_text || "")]
        : data.refused ? [el("span", { class: "bad wrap" }, data.refused.message)]
          : [];
    const routeCell = el("td", { class: "route" });
    const row = el("tr", { tabindex: "0", class: `feed-row tone-${tone}`, dataset: { kind } },
      el("td", { class: "mono muted" }, clock(data.time)),
      el("td", {}, el("span", { class: `badge badge-${tone}` }, label)),
      el("td", { class: "mono id" }, data.id || "—"),
      el("td", { class: "mono", title: `${exchangeShort(data.exchange)} · ${data.routing_key ?? ""}` },
        el("span", {}, data.exchange === undefined ? "" : exchangeShort(data.exchange)),
        data.routing_key ? el("span", { class: "muted" }, " · ") : "", el("span", {}, data.routing_key ?? "")),
      el("td", { class: "mono", title: kind === "delivery" ? `${data.queue} · ${data.consumer_id}`
        : data.refused ? data.refused.message : "" }, ...where),
      routeCell,
      el("td", { class: "mono body" }, kind === "returned" ? "" : bodySnippet(data.body)));
    if (kind === "delivery") {
      const key = `${data.consumer_id}:${data.delivery_tag}`;
      const [label, className] = this.settled.get(key) || [data.ack === "auto" ? "auto-acked" : "unacked", "settle"];
      this.settled.delete(key);
      const settle = el("span", { class: className }, label);
      routeCell.append(settle, " ");
      this.deliveryRows.set(key, settle);
      row.dataset.settleKey = key;
      if (data.latency_ms !== null && data.latency_ms !== undefined) {
        routeCell.append(el("span", { class: "muted" }, `${data.latency_ms.toFixed(1)} ms`));
      }
    }
    const verdict = el("span", { class: "verdict" });
    routeCell.prepend(verdict);
    if (msg && (kind === "published" || kind === "delivery")) {
      msg.cells.push({ verdict, row, kind, queue: data.queue });
      this.judge(data.id, msg);
      if (msg.cells.some((c) => c.row.classList.contains("mismatch"))) kinds.push("mismatch");
    }
    row.dataset.kinds = kinds.join(" ");
    row.dataset.search = [data.id, data.exchange, data.routing_key, data.queue, data.consumer_id, label]
      .filter(Boolean).join(" ").toLowerCase();
    row.hidden = !this.matches(row);
    row.addEventListener("click", () => this.select(row, kind, data));
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this.select(row, kind, data);
      } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        let next = event.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling;
        while (next && next.hidden) next = event.key === "ArrowDown" ? next.nextElementSibling : next.previousElementSibling;
        next?.focus();
      }
    });
    return row;
  }

  select(row, kind, data) {
    for (const other of this.tbody.querySelectorAll(".selected")) other.classList.remove("selected");
    row.classList.add("selected");
    this.onSelect?.(kind, data, data.id ? this.messages.get(data.id) : null);
  }

  /** Compare prediction and reality for one lab id, and update every row of it that is in view. */
  judge(id, msg) {
    const predicted = msg.predicted;
    const delivered = [...msg.delivered].sort();
    let problem = null;
    if (predicted) {
      const unexpected = delivered.filter((q) => !predicted.includes(q));
      if (unexpected.length) problem = `not predicted: ${unexpected.join(", ")}`;
      else if (msg.routed === true && predicted.length === 0) problem = "broker routed it, engine predicted no queue";
      else if (msg.routed === false && predicted.length > 0) problem = "engine predicted queues, broker routed nowhere";
    }
    if (problem && msg.check?.note) problem = `${problem} · ${msg.check.note}`;
    const notes = (msg.notes || []).join("; ");
    const stillWaiting = predicted && !problem && msg.routed !== false && !same(predicted, delivered);
    if (stillWaiting) this.waiting.add(id);
    else this.waiting.delete(id);
    const wasMismatch = msg.mismatch;
    msg.mismatch = Boolean(problem);
    if (msg.mismatch && !wasMismatch) this.totals.mismatch += 1;
    for (const cell of msg.cells) {
      cell.row.classList.toggle("mismatch", msg.mismatch);
      if (msg.mismatch && !cell.row.dataset.kinds?.includes("mismatch")) {
        cell.row.dataset.kinds = `${cell.row.dataset.kinds || cell.kind} mismatch`;
      }
      if (cell.kind === "delivery") {
        const ok = predicted ? predicted.includes(cell.queue) : null;
        cell.verdict.textContent = ok === null ? "" : ok ? "✓ predicted " : "⚠ not predicted ";
        cell.verdict.className = `verdict ${ok === null ? "" : ok ? "good" : "bad"}`;
      } else {
        const p = predicted === null || predicted === undefined ? "?" : predicted.length ? predicted.join(", ") : "none";
        const d = delivered.length ? delivered.join(", ") : msg.routed === false ? "nowhere" : "…";
        const pending = predicted && !problem && !same(predicted, delivered) && msg.routed !== false;
        const pendingNote = pending ? this.waitingNote(predicted.filter((q) => !delivered.includes(q))) : "";
        cell.verdict.replaceChildren(`${p} → ${d}`,
          pendingNote ? el("span", { class: "wait-note" }, ` ${pendingNote}`) : "");
        cell.verdict.title = [problem || (pendingNote ? "not delivered to every predicted queue yet" : "as predicted"), notes]
          .filter(Boolean).join(" · ");
        if (msg.check?.verdict) cell.verdict.dataset.check = msg.check.verdict;
        if (msg.check?.verdict === "topology_changed") cell.verdict.append(" · topology changed");
        else if (msg.check?.verdict === "prediction_wrong") cell.verdict.append(" · prediction wrong");
        if (notes) cell.verdict.append(" ⓘ");
        cell.verdict.className = `verdict ${problem ? "bad" : pendingNote ? "muted" : "good"}`;
      }
    }
  }

  renderStats() {
    const t = this.totals;
    const rows = this.tbody.rows.length;
    const parts = [
      `published ${t.published}`, `refused ${t.refused}`, `delivered ${t.delivery}`, `acked ${t.ack}`, `nacked/rejected ${t.nack}`,
      `returned ${t.returned}`, `unroutable ${t.unroutable}`, `prediction differs ${t.mismatch}`,
      `· in view ${rows}/${this.cap}`, `dropped from view ${this.view.dropped}`,
    ];
    if (this.paused) parts.push(`· paused (${this.view.pending.length} waiting)`);
    this.statsNode.textContent = parts.join("  ");
    this.view.updateEmpty();
    this.renderFilterEmpty(rows);
  }

  /** A filter that hides every row says so, and why, instead of leaving an empty table. */
  renderFilterEmpty(rows) {
    const node = this.filterEmptyNode;
    if (!node) return;
    const filtering = Boolean(this.filterText || this.filterKind);
    const anyVisible = filtering && [...this.tbody.rows].some((row) => !row.hidden);
    node.hidden = !filtering || rows === 0 || anyVisible;
    if (node.hidden) return;
    const inView = `${rows} event${rows === 1 ? "" : "s"} in view`;
    const text = this.filterText ? ` matching “${this.filterText}”` : "";
    const why = {
      mismatch: this.totals.mismatch
        ? `No message${text} in view where the prediction differs: the ${this.totals.mismatch} that did are no ` +
          `longer in view (${inView}).`
        : `No message${text} where the prediction differs: every message so far went where the routing engine ` +
          `predicted (${inView}).`,
      returned: `No returned or unroutable message${text} (${inView}).`,
      published: `No publish${text} (${inView}).`,
      delivery: `No delivery${text} (${inView}).`,
    }[this.filterKind];
    node.textContent = why || `No event matches “${this.filterText}” (${inView}).`;
  }
}
