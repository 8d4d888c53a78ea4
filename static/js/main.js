// Entry point of the page: builds the tabs from the panels and starts each panel's module.
// A panel is <section class="panel" data-panel="NAME" data-title="Title" data-module="NAME.js">; its module
// exports init(sectionElement).
import { ensureAuthorized } from "./auth.js";
import { $, $$, el } from "./dom.js";

function selectPanel(name) {
  for (const tab of $$(".tab")) tab.setAttribute("aria-selected", String(tab.dataset.panel === name));
  for (const panel of $$(".panel")) panel.hidden = panel.dataset.panel !== name;
  history.replaceState(null, "", `#${name}`);
}

function buildTabs(panels) {
  const nav = $(".tabs");
  for (const [index, panel] of panels.entries()) {
    const tab = el("button", { role: "tab", class: "tab", dataset: { panel: panel.dataset.panel },
      title: `${panel.dataset.title} (Alt+${index + 1})` }, panel.dataset.title);
    tab.addEventListener("click", () => selectPanel(panel.dataset.panel));
    nav.append(tab);
  }
  document.addEventListener("keydown", (event) => {
    const index = Number(event.key) - 1;
    if (event.altKey && index >= 0 && index < panels.length) {
      event.preventDefault();
      selectPanel(panels[index].dataset.panel);
    }
  });
  window.addEventListener("hashchange", () => {
    const name = location.hash.slice(1);
    if (panels.some((p) => p.dataset.panel === name)) selectPanel(name);
  });
  const wanted = location.hash.slice(1);
  selectPanel(panels.some((p) => p.dataset.panel === wanted) ? wanted : panels[0].dataset.panel);
}

async function startPanels(panels) {
  for (const panel of panels) {
    if (!panel.dataset.module) continue;
    try {
      const module = await import(`./${panel.dataset.module}`);
      module.init(panel);
    } catch (error) {
      console.error(`panel ${panel.dataset.panel} failed to start`, error);
      panel.prepend(el("p", { class: "error-text" }, `This panel failed to start: ${error.message}`));
    }
  }
}

const panels = $$(".panel");
buildTabs(panels);
ensureAuthorized().then(() => startPanels(panels));
