// The one Socket.IO connection of the page. Panels subscribe with on(event, handler).
//
// High-rate events arrive either one by one under their own name or, under load, inside a `batch`:
// {"events": [{"event", "data"}...], "dropped": {name: n}, "totals": {name: n}}. This module unpacks batches,
// so panels only subscribe to their event names. `dropped` counts the events of each name the server left out
// of this browser's view since the connection started (a flood, or this tab reading too slowly); they were
// never dropped from the broker. onDropped(handler) reports them, summed over reconnects.
import { io } from "../vendor/socket.io-client/socket.io.esm.min.js";

const socket = io({ transports: ["websocket", "polling"], reconnectionDelayMax: 3000 });
const linkListeners = new Set();
const dropListeners = new Set();
const droppedBefore = {}; // drops of earlier connections, by event name
let droppedNow = {}; // drops of the current connection, by event name (the server's running count)
let serverTotals = {};

export function on(event, handler) {
  socket.on(event, handler);
}

export function off(event, handler) {
  socket.off(event, handler);
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

socket.on("connect", () => notify("online"));
socket.on("disconnect", () => {
  // The next connection starts its own count on the server: keep what this one missed.
  for (const [name, n] of Object.entries(droppedNow)) droppedBefore[name] = (droppedBefore[name] || 0) + n;
  droppedNow = {};
  notify("offline");
});
socket.io.on("reconnect_attempt", () => notify("offline"));
