// The RPC panel's entry: one call, a burst, the fib servers, the timeline of the lab client's round trips with
// its latency histogram, and the inspector of every application's RPC seen in the trace; each in its own module.
import { $ } from "./dom.js";
import { setupBurst } from "./rpc-burst.js";
import { setupCall } from "./rpc-call.js";
import { Histogram } from "./rpc-histogram.js";
import { setupInspect } from "./rpc-inspect.js";
import { setupServers } from "./rpc-servers.js";
import { setupTimeline } from "./rpc-timeline.js";

export function init(section) {
  const histogram = new Histogram($("#rpc-histogram", section), $("#rpc-hist-note", section));
  setupTimeline(section, histogram);
  setupCall(section);
  setupBurst(section);
  const refreshServers = setupServers(section);
  const refreshInspect = setupInspect(section);

  // Polling only while the panel is shown.
  let ticks = 0;
  setInterval(() => {
    if (section.hidden || document.hidden) return;
    refreshServers();
    if (ticks++ % 3 === 0) refreshInspect();
  }, 1000);
  refreshServers();
  refreshInspect();
  histogram.draw();
  section.dataset.ready = "true"; // the forms have their handlers now (tests wait for this)
}
