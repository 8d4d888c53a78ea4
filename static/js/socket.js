// The one Socket.IO connection of the page. Panels subscribe with on(event, handler).
//
// High-rate events arrive either one by one under their own name or, under load, inside a `batch`:
// {"events": [{"event", "data"}...], "dropped": {name: n}, "totals": {name: n}}. This module unpacks batches,
// so panels only subscribe to their event names. `dropped` counts the events of each name the server left out
// of this browser's view since the connection started (a flood, or this tab reading too slowly); they were
// never dropped from the broker. onDropped(handler) reports them, summed over reconnects.
import { io } from "../vendor/socket.io-client/socket.io.esm.min.js";

// Each (re)connect names the session this page had before, so that a server that dropped it (this tab stopped
// reading) can say why: the `client_dropped` event.
let previousSid = null;
const socket = io({
  transports: ["websocket", "polling"],
  reconnectionDelayMax: 3000,
  auth: (cb) => cb(previousSid ? { previous_sid: previousSid } : {}),
});
const linkListeners = new Set();
const dropListeners = new Set();
const droppedBefore = {}; // drops of earlier connections, by event name
let droppedNow = {}; // drops of the current connection, by event name (the server's running count)
let serverTotals = {};

// Recent events replayed after a (re)connect, kept a few seconds for panels that subscribe a little later.
let replay = { items: [], until: 0 };
let disconnectedAt = null; // performance.now() when the live link last dropped (null: never)

export function on(event, handler) {
  socket.on(event, handler);
  if (performance.now() < replay.until) {
    for (const item of replay.items) if (item.event === event) handler(item.data);
  }
}

export function off(event, handler) {
  socket.off(event, handler);
}

/** This page's Socket.IO session id (null while offline): a burst started with it ends when the page goes. */
export function sessionId() {
  return socket.id || null;
}

export function emit(event, payload) {
  socket.emit(event, payload);
}

/** handler(state) with state "online" | "offline", now and on every change of the browser-server link. */
export function onLinkChange(handler) {
  linkListeners.add(handler);
  handler(socket.connected ? "online" : "offline");
}

/** Events of `name` this page did not get (dropped from its view), over all connections so far. */
export function droppedCount(name) {
  return (droppedBefore[name] || 0) + (droppedNow[name] || 0);
}

/** Events of `name` the server has published since it started (as of the last batch). */
export function serverTotal(name) {
  return serverTotals[name] || 0;
}

/** handler({name: dropped}) whenever the drop counts change (the full counts, summed over reconnects). */
export function onDropped(handler) {
  dropListeners.add(handler);
}

function notify(state) {
  for (const handler of linkListeners) handler(state);
}

function allDropped() {
  const names = new Set([...Object.keys(droppedBefore), ...Object.keys(droppedNow)]);
  return Object.fromEntries([...names].map((name) => [name, droppedCount(name)]));
}

// Under load the server sends many events in one `batch`: hand each to the handlers of its own name.
socket.on("batch", (batch) => {
  const dropped = batch.dropped || {};
  const changed = Object.keys(dropped).some((name) => dropped[name] !== droppedNow[name]);
  droppedNow = { ...dropped };
  if (batch.totals) serverTotals = batch.totals;
  for (const item of batch.events || []) {
    for (const handler of socket.listeners(item.event)) handler(item.data);
  }
  if (changed) {
    const counts = allDropped();
    for (const handler of dropListeners) handler(counts);
  }
});

// On every (re)connect the server sends the newest high-rate events. A page that lost its link takes those
// younger than the time since the drop (it got the older ones live); a fresh page starts empty on purpose.
socket.on("recent", (recent) => {
  if (disconnectedAt === null) return;
  const gap = (performance.now() - disconnectedAt) / 1000;
  // A little slack: the drop is noticed a moment after it happens, and an event lost in that moment matters
  // more than the rare repeat of one received just before it.
  const items = (recent.events || []).filter((item) => item.age_s < gap + 0.1);
  replay = { items, until: performance.now() + 5000 };
  for (const item of items) {
    for (const handler of socket.listeners(item.event)) handler(item.data);
  }
});

socket.on("connect", () => {
  previousSid = socket.id;
  notify("online");
});
socket.on("disconnect", () => {
  disconnectedAt = performance.now();
  // The next connection starts its own count on the server: keep what this one missed.
  for (const [name, n] of Object.entries(droppedNow)) droppedBefore[name] = (droppedBefore[name] || 0) + n;
  droppedNow = {};
  notify("offline");
});
socket.io.on("reconnect_attempt", () => notify("offline"));
