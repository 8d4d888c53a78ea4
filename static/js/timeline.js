// A message's whole life (GET /api/messages/<id>): each stage the lab observed, with its time offset from the
// publish, the binding that matched and why (word by word for topic), which consumer got it, what came next.
// Everything from the broker is set as text.
import { api, errorText } from "./api.js";
import { el } from "./dom.js";
import { clock, exchangeLabel } from "./format.js";

function ensureStyles() {
  if (!document.querySelector("link[data-timeline-css]")) {
    document.head.append(el("link", { rel: "stylesheet", href: "/static/css/timeline.css", dataset: { timelineCss: "1" } }));
  }
}

function offset(ms) {
  if (ms < 1000) return `+${ms} ms`;
  if (ms < 60_000) return `+${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return `+${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

const q = (name) => el("span", { class: "tl-name mono" }, name ?? "?");
const quote = (text) => el("code", {}, text);

/** The word-by-word alignment of a topic explanation: each pattern token with the words it took. */
function topicSteps(explanation) {
  const steps = explanation?.steps;
  if (!Array.isArray(steps) || !steps.length) return "";
  return el("ol", { class: "tl-words" }, steps.map((step) =>
    el("li", { class: step.ok ? "ok" : "fail" },
      quote(String(step.token)), " = ",
      (step.words || []).length ? quote((step.words || []).join(".")) : el("span", { class: "muted" }, "no word"))));
}

function bindingText(binding) {
  if (!binding) return "";
  const arrow = binding.destination_type === "exchange" ? "⇒" : "→";
  const args = binding.arguments && Object.keys(binding.arguments).length ? ` ${JSON.stringify(binding.arguments)}` : "";
  return `${exchangeLabel(binding.source)} ${arrow} ${binding.destination} [${binding.routing_key}]${args}`;
}

const WHAT = {
  published: (s, m) => [`published to ${exchangeLabel(m.exchange)} with key `, quote(m.routing_key ?? ""),
    s.mandatory ? " (mandatory)" : ""],
  routed: (s) => [
    "matched ", el("span", { class: "tl-binding mono" }, bindingText(s.binding)),
    s.lab ? el("span", { class: "tl-lab" }, " the lab's tap") : "",
    el("div", { class: "tl-why" }, s.explanation?.text || ""),
    s.explanation?.type === "topic" ? topicSteps(s.explanation) : "",
  ],
  confirmed: () => ["the broker confirmed it (publisher confirm)"],
  nacked: () => ["the broker refused it (basic.nack)"],
  unroutable: (s) => [s.source === "trace" ? "the broker routed it to no queue (firehose)"
    : s.mandatory ? "no queue took it" : "no queue took it: the broker dropped it (not mandatory)"],
  returned: (s) => [`returned to the publisher: ${s.reply_code} ${s.reply_text}`],
  queued: (s) => ["in queue ", q(s.queue), s.lab === "tap" ? " (the lab's tap)" : "",
    el("span", { class: "muted" }, s.source === "trace" ? " · seen by the firehose"
      : s.source === "tap" ? " · the tap got its copy" : " · a delivery came from it")],
  delivered: (s) => s.consumer_id
    ? ["delivered from ", q(s.queue), " to consumer ", q(s.consumer_id), ` · tag ${s.delivery_tag}`,
      s.redelivered ? " · redelivered" : ""]
    : ["delivered from ", q(s.queue), " to another application's consumer",
      s.connection ? el("span", { class: "muted" }, ` · ${s.connection}`) : "", s.redelivered ? " · redelivered" : ""],
  acked: (s) => [s.auto ? "acked on delivery (auto ack) by " : "acked by ", q(s.consumer_id)],
  rejected: (s) => ["rejected by ", q(s.consumer_id), " (no requeue)"],
  requeued: (s) => ["sent back to ", q(s.queue), " by ", q(s.consumer_id), " (nack with requeue)"],
  expired: (s) => ["expired in ", q(s.queue), " (its time to live ran out)"],
  dead_lettered: (s) => ["dead-lettered from ", q(s.from_queue), ` (${s.reason}) to exchange `,
    q(exchangeLabel(s.to_exchange)), " with key ", quote(s.routing_key ?? "")],
};

/** The list of stages of one timeline (the API's object). */
export function renderTimeline(message) {
  const start = message.stages.length ? message.stages[0].at : 0;
  const list = el("ol", { class: "timeline", dataset: { stages: String(message.stages.length) } });
  for (const stage of message.stages) {
    const what = (WHAT[stage.stage] || (() => []))(stage, message);
    list.append(el("li", { class: `tl-stage tl-${stage.stage}`, dataset: { stage: stage.stage } },
      el("span", { class: "tl-at mono", title: clock(stage.at / 1000) }, offset(stage.at - start)),
      el("span", { class: "tl-label" }, stage.stage.replace("_", " ")),
      el("div", { class: "tl-what" }, what)));
  }
  const parts = [list];
  if (message.stages_dropped) parts.push(el("p", { class: "muted" }, `${message.stages_dropped} stages in between not kept`));
  if (message.route_disagreement) {
    const d = message.route_disagreement;
    parts.unshift(el("p", { class: "tl-disagreement" },
      `The broker routed it to ${d.broker.join(", ") || "no queue"}; the engine predicted ${(d.repredicted ?? d.predicted).join(", ") || "no queue"}.`));
  }
  return parts;
}

/** A detail-view section that loads and shows the timeline of lab message `id` (refreshable). */
export function timelineSection(id) {
  ensureStyles();
  const body = el("div", { class: "tl-body", "aria-live": "polite" }, el("p", { class: "muted" }, "Loading…"));
  const load = async () => {
    try {
      const message = await api("GET", `/api/messages/${encodeURIComponent(id)}`);
      body.replaceChildren(...renderTimeline(message));
    } catch (error) {
      body.replaceChildren(el("p", { class: "muted" }, errorText(error)));
    }
  };
  const refresh = el("button", { type: "button", class: "tl-refresh", onclick: load }, "Refresh");
  load();
  return el("section", { class: "detail-section timeline-section" },
    el("div", { class: "tl-head" }, el("h3", {}, "Timeline"), refresh), body);
}

// ---------------------------------------------------------------------- explain, then verify
function disagreementItem(d) {
  const predicted = d.repredicted ?? d.predicted;
  return el("li", { class: "tl-disagreed" },
    el("span", { class: "mono" }, `${exchangeLabel(d.exchange)} · `), quote(d.routing_key),
    el("div", {}, `broker: ${d.broker.join(", ") || "no queue"} · engine: ${predicted.join(", ") || "no queue"}`),
    el("div", { class: "muted" }, `topology ${d.topology_version?.reread ?? d.topology_version?.predicted ?? "?"}` +
      (d.connection ? ` · ${d.connection}` : "")));
}

/** Under the trace card: how many traced publishes the engine predicted as the broker routed them, and the
 *  last disagreements with both answers (GET /api/route/verification, refreshed on `route_disagreement`). */
export function verificationCard(card, on) {
  ensureStyles();
  const counts = el("p", { class: "tl-verify-counts", role: "status" }, "");
  const list = el("ol", { class: "tl-verify-list" });
  const box = el("div", { class: "tl-verify", dataset: { verification: "" } },
    el("h3", {}, "Explain, then verify"),
    el("p", { class: "hint" }, "Every traced publish, by any application, routed by the engine beside the broker's own answer."),
    counts, list);
  card.append(box);
  const show = (v) => {
    box.dataset.checked = String(v.checked);
    box.dataset.disagreed = String(v.disagreed_total ?? v.disagreed.length);
    counts.textContent = `${v.checked} checked · ${v.agreed} agreed · ${v.disagreed_total ?? v.disagreed.length} disagreed` +
      (v.unknown ? ` · ${v.unknown} the engine could not tell` : "");
    list.replaceChildren(...v.disagreed.slice(-10).reverse().map(disagreementItem));
  };
  const refresh = () => api("GET", "/api/route/verification").then(show).catch(() => {});
  let timer = null;
  on("route_disagreement", () => { clearTimeout(timer); timer = setTimeout(refresh, 200); });
  setInterval(() => { if (card.dataset.state === "on" && !document.hidden) refresh(); }, 3000);
  refresh();
}
