// The page's one set of formatting helpers: times, exchange names, sizes, durations, body snippets. Every panel
// uses these, so a label reads the same everywhere. Pure functions, no DOM.

/** "(default exchange)" for the nameless default exchange, else the name itself. */
export const DEFAULT_EXCHANGE_LABEL = "(default exchange)";

export function exchangeLabel(name) {
  return name === "" || name === null || name === undefined ? DEFAULT_EXCHANGE_LABEL : name;
}

/** The short form for tight cells: "(default)". */
export function exchangeShort(name) {
  return name === "" || name === null || name === undefined ? "(default)" : name;
}

/** Local time of day, HH:MM:SS, of an epoch in seconds (now when missing). */
export function timeOfDay(epochSeconds) {
  const d = epochSeconds ? new Date(epochSeconds * 1000) : new Date();
  return d.toLocaleTimeString([], { hour12: false });
}

/** Local time of day with milliseconds, HH:MM:SS.mmm, of an epoch in seconds (now when missing). */
export function clock(epochSeconds) {
  const d = epochSeconds ? new Date(epochSeconds * 1000) : new Date();
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

/** A byte count as people read it: "512 B", "4.0 KiB", "1.5 MiB". */
export function size(bytes) {
  if (bytes === null || bytes === undefined || Number.isNaN(Number(bytes))) return "";
  const n = Number(bytes);
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

/** "1 message", "2 messages". */
export function plural(count, word, many = `${word}s`) {
  return `${count} ${count === 1 ? word : many}`;
}

/** A duration in milliseconds as people read it: "0.42 ms", "37 ms", "1.20 s"; "—" when there is none. */
export function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 10) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** One line of a message's body (the preview object every message carries): its text, flattened and cut at
 *  `max` characters, or "‹3 B binary›". */
export function bodySnippet(body, max = 80) {
  if (!body) return "";
  const text = body.text ?? null;
  if (text === null) return `‹${size(body.size)} binary›`;
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? flat.slice(0, max) + "…" : flat || "‹empty›";
}
