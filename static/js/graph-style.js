// The graph's look: one Cytoscape stylesheet, scaled for the larger-type (projector / presenter) mode.
// Kinds are told apart by shape and colour; the legend in templates/panels/graph.html matches these.

export const COLOURS = {
  exchange: "#ff8a3d", default: "#8b98a5", queue: "#4ea1ff", consumer: "#3fb950", server: "#c586ff",
  binding: "#9aa7b4", e2e: "#ff8a3d", alternate: "#d29922", deadletter: "#f85149", consume: "#3fb950",
  text: "#dce3ea", muted: "#8b98a5", bg: "#0f1419", message: "#ffd866", dropped: "#f85149",
};

/** The stylesheet, with type `scale` times larger (1 normal, about 1.6 for a projector). */
export function graphStyle(scale = 1) {
  const font = (px) => Math.round(px * scale);
  return [
    // Labels beside their node (the layout reserves room for them), so a column of 40 queues stays readable.
    { selector: "node", style: {
      label: "data(label)", color: COLOURS.text, "font-size": font(12), "font-family": "system-ui, sans-serif",
      "text-valign": "center", "text-halign": "right", "text-margin-x": 5, "text-wrap": "wrap",
      "text-max-width": 220 * scale, "text-background-color": COLOURS.bg, "text-background-opacity": 0.7,
      "text-background-padding": 1, "border-width": 2, "border-color": COLOURS.bg, width: 18 * scale,
      height: 18 * scale, "min-zoomed-font-size": 6,
    } },
    { selector: "node[kind='exchange']", style: { shape: "hexagon", "background-color": COLOURS.exchange,
      width: 30 * scale, height: 26 * scale, "text-valign": "top", "text-halign": "center", "text-margin-x": 0,
      "text-margin-y": -3, "font-weight": "bold" } },
    { selector: "node[kind='exchange'][?internal]", style: { "border-style": "dashed", "border-color": COLOURS.text } },
    { selector: "node[kind='default']", style: { shape: "hexagon", "background-color": COLOURS.default,
      "border-style": "dashed", "border-color": COLOURS.text, width: 30 * scale, height: 26 * scale,
      "text-valign": "top", "text-halign": "center", "text-margin-x": 0, "text-margin-y": -3 } },
    { selector: "node[kind='queue']", style: { shape: "barrel", "background-color": COLOURS.queue,
      width: 30 * scale, height: 18 * scale } },
    { selector: "node[kind='consumer']", style: { shape: "ellipse", "background-color": COLOURS.consumer,
      width: 16 * scale, height: 16 * scale } },
    { selector: "node[kind='server']", style: { shape: "star", "background-color": COLOURS.server,
      width: 22 * scale, height: 22 * scale } },
    { selector: "node[?final]", style: { opacity: 0.4 } },
    { selector: "node:selected", style: { "border-color": "#ffffff", "border-width": 3 } },
    { selector: "node.flash", style: { "border-color": COLOURS.message, "border-width": 4 } },
    { selector: "edge", style: {
      width: 1.6 * scale, "line-color": COLOURS.binding, "target-arrow-color": COLOURS.binding,
      "target-arrow-shape": "triangle", "curve-style": "bezier", "arrow-scale": 0.9 * scale,
      // The key sits near the edge's far end, where a fan of bindings has spread out, not in the crowded middle.
      "target-label": "data(label)", "target-text-offset": 58 * scale, "font-size": font(10),
      "font-family": "ui-monospace, Menlo, Consolas, monospace", color: "#c9d3dd",
      "text-background-color": COLOURS.bg, "text-background-opacity": 0.85, "text-background-padding": 1,
      "min-zoomed-font-size": 6,
    } },
    { selector: "edge[kind='e2e'], edge[kind='alternate'], edge[kind='deadletter']", style: {
      "target-label": "", label: "data(label)", "text-rotation": "autorotate" } },
    { selector: "edge[kind='e2e']", style: { width: 3 * scale, "line-color": COLOURS.e2e,
      "target-arrow-color": COLOURS.e2e, "target-arrow-shape": "triangle-tee" } },
    { selector: "edge[kind='alternate']", style: { "line-style": "dashed", "line-color": COLOURS.alternate,
      "target-arrow-color": COLOURS.alternate, color: COLOURS.alternate } },
    { selector: "edge[kind='deadletter']", style: { "line-style": "dotted", width: 2.4 * scale,
      "line-color": COLOURS.deadletter, "target-arrow-color": COLOURS.deadletter, color: COLOURS.deadletter } },
    { selector: "edge[kind='consume']", style: { "line-color": COLOURS.consume, "target-arrow-color": COLOURS.consume,
      "target-arrow-shape": "vee", "target-label": "" } },
    { selector: "edge[kind='default']", style: { "line-style": "dashed", "line-color": COLOURS.default,
      "target-arrow-color": COLOURS.default } },
    { selector: "edge:selected", style: { "line-color": "#ffffff", "target-arrow-color": "#ffffff", width: 3 * scale } },
  ];
}
