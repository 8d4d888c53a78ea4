// Presenter mode: larger type for keys, explanations and counters, for a projector. The choice is kept in
// localStorage, so a reload (or the next lesson) keeps it. The button is in the top bar (templates/index.html).
const KEY = "rabbitlens.presenter";

function stored() {
  try {
    return localStorage.getItem(KEY) === "1";
  } catch {
    return false; // storage refused (privacy mode): the toggle still works for this page
  }
}

function apply(on, button) {
  document.body.classList.toggle("presenter", on);
  if (button) button.setAttribute("aria-pressed", String(on));
}

export function setPresenter(on) {
  apply(on, document.getElementById("presenter-toggle"));
  try {
    localStorage.setItem(KEY, on ? "1" : "0");
  } catch {
    /* not remembered, still applied */
  }
}

const button = document.getElementById("presenter-toggle");
apply(stored(), button);
if (button) button.addEventListener("click", () => setPresenter(!document.body.classList.contains("presenter")));
