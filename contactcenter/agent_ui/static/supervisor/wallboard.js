// The live wallboard: tiles per queue and kind and agents by state, kept current from the
// supervisors room's events; a snapshot is fetched only at start, on resync and at midnight.
import { api, connectLive, duration, el, percent } from "./common.js";
import { WallboardModel } from "./wallboard_model.js";

const tilesRoot = document.getElementById("tiles");
const agentsBody = document.querySelector("#agents tbody");
const summary = document.getElementById("agent-summary");
const STATES = ["available", "on_contact", "wrap_up", "away", "offline"];
const LABELS = { available: "Available", on_contact: "On contact", wrap_up: "Wrap-up", away: "Away", offline: "Offline" };
let model = null;
let scheduled = false;

async function loadSnapshot() {
  model = new WallboardModel(await api("/supervisor/wallboard"));
  render();
}

function figure(label, value, field, level) {
  return el("div", { class: `sv-figure sv-${level || "ok"}`, "data-field": field, "data-level": level || "ok" },
    el("span", { class: "sv-label" }, label), el("span", { class: "sv-value" }, value));
}

function render() {
  scheduled = false;
  if (!model) return;
  const now = Date.now();
  const tiles = [...model.tiles.values()].filter((t) => t.active);
  tilesRoot.replaceChildren(...(tiles.length ? tiles.map((tile) => {
    const f = model.tileFigures(tile, now);
    const lv = model.levels(tile, f);
    const worst = ["red", "amber"].find((c) => Object.values(lv).includes(c)) || "ok";
    const node = el("article", { class: `sv-tile sv-${worst}`, "data-queue": tile.queue_id, "data-kind": tile.kind,
      "data-figures": JSON.stringify(f) },
      el("h3", {}, `${tile.queue} · ${tile.kind}`),
      figure("Waiting", f.waiting_now, "waiting_now"),
      figure("Longest wait", duration(f.longest_wait_seconds), "longest_wait", lv.wait),
      figure(`SL 15 min (goal ${tile.goal}% in ${duration(tile.target)})`, percent(f.last_15_min.service_level), "sl_15", lv.sl_15),
      figure("SL today", percent(f.today.service_level), "sl_today", lv.sl_today),
      figure("Abandoned today", percent(f.today.abandonment), "abandonment", lv.abandonment),
      figure("ASA today", duration(f.today.asa_seconds), "asa"),
      figure("Answered today", f.today.answered, "answered"));
    return node;
  }) : [el("p", { class: "sv-muted" }, "No queue has work today.")]));
  const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
  const rows = [...model.agents.values()].map((agent) => {
    const state = model.agentState(agent);
    counts[state] += 1;
    return el("tr", { "data-agent": agent.id, "data-state": state },
      el("td", {}, agent.name), el("td", { class: `sv-state sv-state-${state}` }, LABELS[state]),
      el("td", {}, duration((now - model.agentSince(agent)) / 1000)), el("td", {}, agent.held.size));
  });
  agentsBody.replaceChildren(...rows);
  summary.replaceChildren(...STATES.map((s) => el("span", { class: `sv-count sv-state-${s}`, "data-state": s },
    `${LABELS[s]}: `, el("strong", {}, counts[s]))));
}

function schedule() {
  if (!scheduled) { scheduled = true; requestAnimationFrame(render); }
}

function onEvent(event) {
  if (!model) return;
  if (model.apply(event)) {
    if (model.unknown) { loadSnapshot(); return; }
    schedule();
  }
}

await loadSnapshot();
connectLive({ getCursor: () => (model ? model.cursor : 0), onEvent, onResync: loadSnapshot });
setInterval(() => {
  if (model && Date.now() >= model.dayStart + 86400000) loadSnapshot();
  else schedule();
}, 1000);
