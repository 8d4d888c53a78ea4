// The routing explainer: pick an exchange, type a routing key (and headers), and see live, before anything is
// published, which bindings match (token by token), which do not and why, and which queues get the message.
// It asks POST /api/route (debounced) on every keystroke and again whenever the topology changes.
import { $, el } from "./dom.js";
import { exchangeLabel as label } from "./format.js";

const DEBOUNCE_MS = 140;

const showWord = (word) => (word === "" ? "ε" : word);

// ------------------------------------------------------------------ explanation views
function topicView(explanation) {
  const steps = explanation.steps || [];
  const tokens = explanation.tokens || steps.map((s) => s.token);
  const words = explanation.words || [];
  const failed = explanation.failed_at;
  const cells = [];
  steps.forEach((step, index) => {
    const taken = step.words || [];
    const wordsNode = taken.length
      ? el("span", { class: "tok-words" }, ...taken.map((w, i) => [i ? el("span", { class: "dot" }, ".") : null,
        el("span", { class: w === "" ? "word empty" : "word", title: w === "" ? "an empty word" : undefined },
          showWord(w))]))
      : el("span", { class: "tok-words none", title: "takes no words" }, "∅");
    cells.push(el("span", { class: `tok ${step.ok ? "ok" : "fail"}`, dataset: { index } },
      el("span", { class: "tok-pattern" }, showWord(step.token)), wordsNode));
  });
  // Tokens the match never reached, and key words no token took.
  for (let i = steps.length; i < tokens.length; i += 1) {
    cells.push(el("span", { class: "tok unreached", title: "not reached" },
      el("span", { class: "tok-pattern" }, showWord(tokens[i])), el("span", { class: "tok-words none" }, "·")));
  }
  if (failed && failed.token_index >= tokens.length && failed.word_index < words.length) {
    cells.push(el("span", { class: "tok fail leftover", title: "words no token takes" },
      el("span", { class: "tok-pattern" }, "—"),
      el("span", { class: "tok-words" }, words.slice(failed.word_index).map(showWord).join("."))));
  }
  if (!tokens.length && !cells.length) {
    cells.push(el("span", { class: `tok ${explanation.matched ? "ok" : "fail"}` },
      el("span", { class: "tok-pattern" }, "(empty)"), el("span", { class: "tok-words none" }, "∅")));
  }
  return el("div", { class: "tokens", role: "group", "aria-label": "pattern tokens and the key words they take" },
    ...cells);
}

function headersView(explanation) {
  const rows = (explanation.checks || []).map((c) => el("tr", { class: c.ok ? "ok" : "fail" },
    el("td", { class: "mark" }, c.ok ? "✓" : "✗"),
    el("td", {}, el("code", {}, c.header)),
    el("td", {}, el("code", {}, c.expected === null ? "(any value)" : JSON.stringify(c.expected))),
    el("td", {}, c.present === false || c.actual === undefined ? el("span", { class: "muted" }, "missing")
      : el("code", {}, JSON.stringify(c.actual))),
    el("td", { class: "muted" }, c.reason || "")));
  const mode = el("span", { class: "tag xmatch" }, `x-match ${explanation.x_match}`);
  const ignored = (explanation.ignored || []).length
    ? el("span", { class: "muted" }, ` ignored: ${explanation.ignored.join(", ")}`) : null;
  return el("div", { class: "headers-check" }, el("div", {}, mode, ignored),
    rows.length ? el("table", { class: "checks" },
      el("thead", {}, el("tr", {}, el("th", {}, ""), el("th", {}, "header"), el("th", {}, "binding wants"),
        el("th", {}, "message has"), el("th", {}, ""))),
      el("tbody", {}, ...rows)) : null);
}

function explanationView(explanation) {
  if (!explanation) return null;
  if (explanation.type === "topic" || explanation.steps) return topicView(explanation);
  if (explanation.type === "headers" || explanation.checks) return headersView(explanation);
  return null;
}

function bindingLine(item) {
  const b = item.binding;
  const via = (item.via || []).length > 1
    ? el("span", { class: "via", title: "exchange-to-exchange hops" }, item.via.map(label).join(" ⇒ "))
    : null;
  const key = b.routing_key === "" ? el("span", { class: "muted" }, "(empty key)") : el("code", { class: "pattern" }, b.routing_key);
  return el("div", { class: "binding-line" },
    el("span", { class: "src" }, label(b.source)),
    el("span", { class: "arrow" }, b.destination_type === "exchange" ? " ⇒ " : " → "),
    el("span", { class: "dst" }, b.destination),
    b.destination_type === "exchange" ? el("span", { class: "tag flag" }, "exchange") : null,
    el("span", { class: "key" }, " ", key),
    via);
}

function itemView(item, matched) {
  const explanation = item.explanation || {};
  const reason = !matched && explanation.failed_at ? explanation.failed_at.reason : null;
  return el("li", {
    class: `route-item ${matched ? "route-match" : "route-miss"}`,
    dataset: { destination: item.binding.destination, pattern: item.binding.routing_key },
  },
  el("span", { class: "verdict", "aria-label": matched ? "matches" : "does not match" }, matched ? "✓" : "✗"),
  el("div", { class: "route-body" },
    bindingLine(item),
    explanationView(explanation),
    el("p", { class: "why" }, reason ? `Fails: ${reason}` : explanation.text || "")));
}

// A binding the message missed, the smallest change that would make it match, and that change.
function nearView(item) {
  const fix = item.fix || {};
  const headers = fix.headers && Object.keys(fix.headers).length ? JSON.stringify(fix.headers) : null;
  return el("li", { class: "near-item", dataset: { destination: item.binding.destination, distance: item.distance } },
    el("span", { class: "verdict", title: "edits needed" }, `±${item.distance}`),
    el("div", { class: "route-body" },
      bindingLine(item),
      el("p", { class: "why near-difference" }, item.difference),
      el("p", { class: "near-fix" }, "Would match with key ", el("code", {}, fix.routing_key ?? ""),
        headers ? [" and headers ", el("code", {}, headers)] : null)));
}

// ------------------------------------------------------------------ the whole result
function resultView(result) {
  const nodes = [];
  const count = result.queues.length;
  const lab = new Set(result.lab_queues || []);
  if (result.refused) {
    nodes.push(el("div", { class: "route-verdict unroutable" }, el("strong", {}, `Refused: ${result.refused}`),
      el("span", { class: "muted" }, " the broker refuses the publish itself (403 ACCESS_REFUSED)")));
  } else if (result.routed === null) {
    nodes.push(el("div", { class: "route-verdict unknown" }, el("strong", {}, "Unknown"),
      el("span", { class: "muted" }, " the exchange exists, but the lab cannot see its bindings (see the notes)")));
  } else {
    nodes.push(el("div", { class: `route-verdict ${result.routed ? "routed" : "unroutable"}` },
      result.routed
        ? el("strong", {}, `Routed to ${count} queue${count === 1 ? "" : "s"}`)
        : el("strong", {}, "Unroutable"),
      result.routed ? el("span", { class: "queues" }, ...result.queues.map((q) => el("span",
        { class: "route-queue", title: lab.has(q) ? "the lab's own tap" : undefined }, lab.has(q) ? `${q} (lab's tap)` : q)))
        : el("span", { class: "muted" }, " no queue takes this message: the broker drops it (or returns it if mandatory)")));
  }
  for (const alt of result.alternates || []) {
    nodes.push(el("p", { class: "route-alternate" }, "Alternate exchange used: ",
      el("code", {}, label(alt.exchange)), " ⇒ ", el("code", {}, label(alt.alternate))));
  }
  const matches = result.matches || [];
  const misses = result.misses || [];
  if (!matches.length && !misses.length) {
    nodes.push(el("p", { class: "muted empty-note" }, `${label(result.exchange)} has no bindings to compare.`));
  } else {
    nodes.push(el("h3", {}, `Matching bindings (${matches.length})`));
    nodes.push(matches.length ? el("ul", { class: "route-list" }, ...matches.map((m) => itemView(m, true)))
      : el("p", { class: "muted empty-note" }, "No binding matches."));
  }
  if (misses.length) {
    const total = result.misses_total ?? misses.length;
    nodes.push(el("h3", {}, `Not matching (${total})`, total > misses.length
      ? el("span", { class: "muted" }, ` the first ${misses.length} shown`) : null));
    nodes.push(el("ul", { class: "route-list" }, ...misses.map((m) => itemView(m, false))));
  }
  const near = result.near_misses || [];
  if (near.length) {
    nodes.push(el("h3", {}, `Near misses (${near.length})`));
    nodes.push(el("ul", { class: "route-list near-misses" }, ...near.map(nearView)));
  }
  // The verdict already says when nothing takes the message.
  const notes = (result.notes || []).filter((n) => !(n.startsWith("no queue takes") && !result.routed));
  if (notes.length) {
    nodes.push(el("ul", { class: "route-notes" }, ...notes.map((n) => el("li", {}, n))));
  }
  return nodes;
}

// ------------------------------------------------------------------ wiring
export function initExplainer(section, { api, current, onTopology }) {
  const select = $("#route-exchange", section);
  const keyInput = $("#route-key", section);
  const headersInput = $("#route-headers", section);
  const headersField = $(".headers-field", section);
  const output = $("#route-result", section);
  const spinner = $("#route-busy", section);
  let timer = null;
  let sequence = 0;
  // Nothing is judged before the user asks (types a key, picks an exchange): a red "unroutable" for a key
  // nobody typed reads as an error.
  let asked = false;
  const idleNodes = [...output.cloneNode(true).childNodes];

  function exchangeType() {
    const topology = current();
    const found = topology?.exchanges.find((x) => x.name === select.value);
    return found ? found.type : null;
  }

  function show(state, nodes) {
    output.dataset.state = state;
    output.replaceChildren(...nodes);
  }

  async function explain() {
    const topology = current();
    if (!topology || !select.options.length) return;
    const type = exchangeType();
    headersField.hidden = type !== "headers";
    if (!asked) {
      show("idle", idleNodes.map((node) => node.cloneNode(true)));
      return;
    }
    let headers = {};
    const raw = headersInput.value.trim();
    if (type === "headers" && raw) {
      try {
        headers = JSON.parse(raw);
      } catch (error) {
        show("error", [el("p", { class: "form-error" }, `Headers are not valid JSON yet: ${error.message}`)]);
        return;
      }
    }
    const mine = ++sequence;
    spinner.hidden = false;
    try {
      const result = await api("POST", "/api/route", { exchange: select.value, routing_key: keyInput.value, headers });
      if (mine !== sequence) return; // a newer keystroke already asked
      const state = result.refused ? "refused" : result.routed === null ? "unknown" : result.routed ? "routed" : "unroutable";
      show(state, resultView(result));
    } catch (error) {
      if (mine === sequence) show("error", [el("p", { class: "form-error" }, error.message)]);
    } finally {
      if (mine === sequence) spinner.hidden = true;
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(explain, DEBOUNCE_MS);
  }

  function fillExchanges(topology) {
    const chosen = select.value;
    const names = topology.exchanges.map((x) => x.name);
    select.replaceChildren(...topology.exchanges.map((x) => el("option", { value: x.name }, `${label(x.name)}  ·  ${x.type}`)));
    // Keep the choice; else prefer an exchange the user made over the built-in ones.
    const mine = names.find((n) => n !== "" && !n.startsWith("amq."));
    const keep = names.includes(chosen) && (select.dataset.touched || chosen !== "");
    select.value = keep ? chosen : (mine ?? "");
  }

  const ask = () => { asked = true; schedule(); };
  select.addEventListener("change", () => { select.dataset.touched = "1"; ask(); });
  keyInput.addEventListener("input", ask);
  headersInput.addEventListener("input", ask);
  $("#route-form", section).addEventListener("submit", (event) => { event.preventDefault(); asked = true; explain(); });
  onTopology((topology) => { fillExchanges(topology); schedule(); });
}
