// The one Socket.IO connection of the page. Panels subscribe with on(event, handler).
import { io } from "../vendor/socket.io-client/socket.io.esm.min.js";

const socket = io({ transports: ["websocket", "polling"], reconnectionDelayMax: 3000 });
const linkListeners = new Set();

export function on(event, handler) {
  socket.on(event, handler);
}

export function emit(event, payload) {
  socket.emit(event, payload);
}

/** handler(state) with state "online" | "offline", now and on every change of the browser-server link. */
export function onLinkChange(handler) {
  linkListeners.add(handler);
  handler(socket.connected ? "online" : "offline");
}

function notify(state) {
  for (const handler of linkListeners) handler(state);
}

// Under load the server sends many events in one `batch`: hand each to the handlers of its own name.
socket.on("batch", (batch) => {
  for (const item of batch.events || []) {
    for (const handler of socket.listeners(item.event)) handler(item.data);
  }
});

socket.on("connect", () => notify("online"));
socket.on("disconnect", () => notify("offline"));
socket.io.on("reconnect_attempt", () => notify("offline"));
