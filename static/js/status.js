// The broker status indicator and the overview card: follows `broker_status` live.
import { el, $, setText } from "./dom.js";
import { timeOfDay } from "./format.js";
import { on, onLinkChange } from "./socket.js";

const LABELS = {
  connected: "broker connected",
  connecting: "connecting…",
  reconnecting: "reconnecting…",
  down: "broker down",
  stopped: "stopped",
  offline: "lab server unreachable",
};
const HISTORY_LIMIT = 50;
let lastBroker = null;
let lastHistoryKey = null;

function showState(state, blocked) {
  const pill = $("#broker-status");
  // A memory or disk alarm: connected, but publishes are refused ("the broker is blocking publishers: ...").
  pill.dataset.state = state === "connected" && blocked ? "blocked" : state;
  setText(pill.querySelector(".status-text"), state === "connected" && blocked ? blocked : LABELS[state] || state);
}

function render(broker) {
  lastBroker = broker;
  showState(broker.state, broker.blocked);
  setText("#broker-url", broker.url);
  setText("#broker-version", broker.server_version || "—");
  const stateCell = $("#broker-state");
  stateCell.className = `state-${broker.state}`;
  setText(stateCell, broker.state);
  const error = $("#broker-error");
  error.hidden = !broker.error && !broker.blocked;
  const retry = broker.retry_at && !broker.connected ? `; next retry at ${timeOfDay(broker.retry_at)}` : "";
  setText(error, broker.error ? `Last error: ${broker.error}${retry}` : broker.blocked || "");
  // The same status comes both from /api/health and from the live link's greeting: one history line each.
  const key = `${broker.state}|${broker.since}|${broker.error || ""}|${broker.blocked || ""}`;
  if (key === lastHistoryKey) return;
  lastHistoryKey = key;
  const history = $("#status-history");
  const why = broker.error || broker.blocked;
  history.prepend(el("li", { class: `state-${broker.state}` }, `${timeOfDay(broker.since)} ${broker.state}`,
    why ? ` — ${why}` : ""));
  while (history.children.length > HISTORY_LIMIT) history.lastElementChild.remove();
}

async function refreshHealth() {
  try {
    const response = await fetch("/api/health");
    const health = await response.json();
    setText("#broker-management", health.management ? "available" : "not reachable (optional)");
    if (!lastBroker) render(health.broker);
  } catch {
    setText("#broker-management", "unknown");
  }
}

// The server dropped this page's earlier connection (it had too much waiting unread): say so until dismissed.
function showDropped(notice) {
  let node = $("#live-dropped");
  if (!node) {
    node = el("p", { id: "live-dropped", class: "error-text live-dropped", role: "alert" });
    node.addEventListener("click", () => node.remove());
    document.querySelector("main").prepend(node);
  }
  setText(node, `${timeOfDay(notice.at)} ${notice.reason} (click to dismiss)`);
}

export function init() {
  on("broker_status", render);
  on("client_dropped", showDropped);
  onLinkChange((link) => {
    setText("#socket-state", link === "online" ? "live (websocket)" : "disconnected, retrying…");
    if (link === "offline") showState("offline");
    else if (lastBroker) showState(lastBroker.state, lastBroker.blocked);
  });
  refreshHealth();
  setInterval(refreshHealth, 15000);
}
