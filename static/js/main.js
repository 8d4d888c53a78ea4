// Entry point of the page: wires the panels to the live socket.
import { $$ } from "./dom.js";
import { initStatus } from "./status.js";

function initTabs() {
  const tabs = $$(".tab");
  const select = (name) => {
    for (const tab of tabs) tab.setAttribute("aria-selected", String(tab.dataset.panel === name));
    for (const panel of $$(".panel")) panel.hidden = panel.dataset.panel !== name;
    history.replaceState(null, "", `#${name}`);
  };
  for (const tab of tabs) tab.addEventListener("click", () => select(tab.dataset.panel));
  const wanted = location.hash.slice(1);
  select(tabs.some((t) => t.dataset.panel === wanted) ? wanted : tabs[0].dataset.panel);
}

initTabs();
initStatus();
