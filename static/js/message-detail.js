// The detail view of one message, wherever it is shown (a feed row, a tapped copy, a trace copy): what happened,
// the properties, the headers, and the body as text, pretty JSON or hex. Every message has the same shape (see
// rabbit/message_view.py), so every kind is shown the same way. Every value is set as text: a body of markup
// shows as markup, it never runs.
import { el } from "./dom.js";
import { exchangeLabel, size } from "./format.js";
import { timelineSection } from "./timeline.js";

const LAB_HEADERS = ["x-rabbitlens-id", "x-rabbitlens-published"];

function facts(pairs) {
  const list = el("dl", { class: "facts detail-facts" });
  for (const [name, value] of pairs) {
    if (value === undefined || value === null || value === "") continue;
    list.append(el("dt", {}, name), el("dd", {}, typeof value === "object" ? JSON.stringify(value) : String(value)));
  }
  return list;
}

/** The first KiB of a text body as `hexdump -C` would show its UTF-8 bytes (the server sends hex for binary only). */
export function hexDump(text, width = 16) {
  const bytes = new TextEncoder().encode(text).slice(0, 1024);
  const lines = [];
  for (let offset = 0; offset < bytes.length; offset += width) {
    const chunk = bytes.slice(offset, offset + width);
    const pairs = Array.from(chunk, (b) => b.toString(16).padStart(2, "0")).join(" ");
    const printable = Array.from(chunk, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${offset.toString(16).padStart(8, "0")}  ${pairs.padEnd(width * 3 - 1)}  ${printable}`);
  }
  return lines.join("\n");
}

function section(title, ...children) {
  return el("section", { class: "detail-section" }, el("h3", {}, title), ...children);
}

function bodyView(body) {
  if (!body) return el("p", { class: "muted" }, "No body preview for this event.");
  const views = [];
  if (body.json !== null && body.json !== undefined) views.push(["JSON", body.json]);
  if (body.text !== null && body.text !== undefined) views.push(["Text", body.text]);
  views.push(["Hex", body.hex || hexDump(body.text || "")]);
  const pre = el("pre", { class: "body-pre", tabindex: "0" });
  const tabs = el("div", { class: "body-tabs", role: "group", "aria-label": "Body view" });
  const show = (index) => {
    pre.textContent = views[index][1];
    for (const [i, button] of [...tabs.children].entries()) button.setAttribute("aria-pressed", String(i === index));
  };
  for (const [index, [name]] of views.entries()) {
    tabs.append(el("button", { type: "button", onclick: () => show(index) }, name));
  }
  show(0);
  // body.note: why a JSON-looking body is shown as text (nested too deep, too long once indented) or as hex.
  const note = `${size(body.size)} · ${body.kind}${body.truncated ? " · preview truncated" : ""}` +
    (body.note ? ` · ${body.note}` : "");
  return el("div", {}, el("div", { class: "body-bar" }, tabs, el("span", { class: "muted mono" }, note)), pre);
}

const TITLES = { returned: "Returned message", delivery: "Delivery", tap: "Tapped message" };

function title(kind, data) {
  if (kind === "trace") return data.kind === "deliver" ? "Traced delivery" : "Traced publish";
  return TITLES[kind] || (data.refused ? "Refused publish" : "Published message");
}

/** Fill `container` with the detail of one event: `kind` (published, delivery, returned, tap, trace), its
 *  `data`, and what the feed knows of its lab id. */
export function renderDetail(container, kind, data, message) {
  const props = { ...(data.properties || {}) };
  const headers = { ...(props.headers || {}) };
  delete props.headers;
  const labHeaders = {};
  for (const name of LAB_HEADERS) {
    if (name in headers) {
      labHeaders[name] = headers[name];
      delete headers[name];
    }
  }
  const summary = [
    ["event", kind],
    ["lab id", data.id],
    ["exchange", data.exchange === undefined ? undefined : exchangeLabel(data.exchange)],
    ["routing key", data.routing_key],
  ];
  if (kind === "delivery") {
    summary.push(["queue", data.queue], ["consumer", data.consumer_id], ["delivery tag", data.delivery_tag],
      ["redelivered", String(data.redelivered)], ["ack mode", data.ack],
      ["publish → delivery", data.latency_ms === null ? null : `${data.latency_ms} ms`]);
  } else if (kind === "published" && data.refused) {
    summary.push(["refused", `${data.refused.reply_code} ${data.refused.message}`],
      ["outcome", "the broker refused the publish and closed the lab's channel: nothing was routed"]);
  } else if (kind === "published") {
    summary.push(["confirmed", String(data.confirmed)], ["routed", String(data.routed)],
      ["mandatory", String(data.mandatory)], ["size", size(data.size)]);
    if (data.routed === false) {
      summary.push(["outcome", data.mandatory ? "returned to the publisher (basic.return)" : "dropped by the broker: no queue took it"]);
    }
  } else if (kind === "returned") {
    summary.push(["reply", `${data.reply_code} ${data.reply_text}`]);
  } else if (kind === "tap") {
    summary.push(["tap", data.tap_id], ["redelivered", String(data.redelivered)]);
  } else if (kind === "trace") {
    summary.push(["trace", data.kind], ["queue", data.queue],
      ["routed to", data.kind === "publish" ? (data.routed_queues?.length ? data.routed_queues.join(", ") : "no queue") : null],
      ["redelivered", typeof data.redelivered === "boolean" ? String(data.redelivered) : null],
      ["connection", data.connection], ["channel", data.channel], ["user", data.user], ["node", data.node],
      ["vhost", data.vhost]);
  }
  const route = [];
  if (message) {
    const predicted = message.predicted;
    route.push(["predicted", predicted ? (predicted.length ? predicted.join(", ") : "no queue") : "unknown (the lab cannot see where this exchange routes)"]);
    route.push(["delivered to", message.delivered.size ? [...message.delivered].sort().join(", ") : "none seen yet"]);
    if (message.mismatch) route.push(["difference", "prediction and delivery differ"]);
    if (message.check) route.push(["re-read", message.check.note]);
    for (const note of message.notes || []) route.push(["note", note]);
  }
  const body = data.body || message?.published?.body || null;
  container.replaceChildren(
    el("p", { class: `detail-kind badge badge-${kind === "published" && data.routed === false ? "unroutable" : kind}` },
      title(kind, data)),
    facts(summary),
    route.length ? section("Route", facts(route)) : "",
    data.id && !data.refused ? timelineSection(data.id) : "",
    section("Properties", Object.keys(props).length ? facts(Object.entries(props)) : el("p", { class: "muted" }, "none set")),
    section("Headers", Object.keys(headers).length
      ? el("pre", { class: "body-pre small" }, JSON.stringify(headers, null, 2))
      : el("p", { class: "muted" }, "no application headers")),
    Object.keys(labHeaders).length ? section("Lab headers", facts(Object.entries(labHeaders))) : "",
    section("Body", bodyView(body)),
  );
}
