// The RPC panel's latency histogram: replies by round-trip time on a log scale, 0.1 ms to 10 s, drawn on a canvas
// at most once a frame.
import { setText } from "./dom.js";
import { everyFrame } from "./list.js";

export class Histogram {
  constructor(canvas, note) {
    this.canvas = canvas;
    this.note = note;
    this.min = -1; // 10^-1 ms
    this.max = 4; // 10^4 ms
    this.perDecade = 5;
    this.counts = new Array((this.max - this.min) * this.perDecade).fill(0);
    this.total = 0;
    this.schedule = everyFrame(() => this.draw());
  }

  add(latencyMs) {
    if (typeof latencyMs !== "number" || !(latencyMs >= 0)) return;
    const position = (Math.log10(Math.max(latencyMs, 1e-3)) - this.min) * this.perDecade;
    const index = Math.min(this.counts.length - 1, Math.max(0, Math.floor(position)));
    this.counts[index] += 1;
    this.total += 1;
    this.schedule();
  }

  clear() {
    this.counts.fill(0);
    this.total = 0;
    this.schedule();
  }

  draw() {
    const { canvas } = this;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 600;
    const height = canvas.clientHeight || 180;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const g = canvas.getContext("2d");
    g.scale(ratio, ratio);
    g.clearRect(0, 0, width, height);
    const style = getComputedStyle(document.documentElement);
    const muted = style.getPropertyValue("--muted").trim() || "#8b98a5";
    const line = style.getPropertyValue("--line").trim() || "#26303b";
    const accent = style.getPropertyValue("--accent").trim() || "#ff8a3d";
    const left = 34, bottom = 22, top = 8;
    const plotW = width - left - 8, plotH = height - bottom - top;
    const peak = Math.max(1, ...this.counts);
    const barW = plotW / this.counts.length;
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = muted;
    g.strokeStyle = line;
    g.beginPath();
    g.moveTo(left, top + plotH + 0.5);
    g.lineTo(left + plotW, top + plotH + 0.5);
    g.stroke();
    const labels = { "-1": "0.1ms", 0: "1ms", 1: "10ms", 2: "100ms", 3: "1s", 4: "10s" };
    for (let decade = this.min; decade <= this.max; decade += 1) {
      const x = left + (decade - this.min) * this.perDecade * barW;
      g.fillText(labels[decade], Math.min(x - 10, width - 34), height - 6);
      g.beginPath();
      g.moveTo(x + 0.5, top);
      g.lineTo(x + 0.5, top + plotH);
      g.stroke();
    }
    g.fillText(String(peak), 2, top + 10);
    g.fillText("0", 2, top + plotH);
    g.fillStyle = accent;
    this.counts.forEach((count, i) => {
      if (!count) return;
      const h = Math.max(1, (count / peak) * plotH);
      g.fillRect(left + i * barW + 1, top + plotH - h, Math.max(1, barW - 2), h);
    });
    setText(this.note, this.total ? `${this.total} replies seen (bursts are sampled)` : "no replies yet");
  }
}
