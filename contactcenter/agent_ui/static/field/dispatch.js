// The dispatch board: unassigned visits with suggestions, each technician's day on a
// timeline, assignment by drag and drop or by click, live updates, and the field report.
import { apiClient, connectLive, el, when } from "./live.js";

const root = document.getElementById("dispatch");
const api = apiClient(root);
const dayInput = document.getElementById("day");
dayInput.value = new Date().toISOString().slice(0, 10);
const START_HOUR = 6, END_HOUR = 22;
let technicians = [];

function banner(text) { window.alert(text); }

function hours() {
  const box = document.getElementById("hours");
  box.replaceChildren();
  for (let h = START_HOUR; h < END_HOUR; h += 2) box.append(el("span", { text: `${String(h).padStart(2, "0")}:00` }));
}

function card(visit) {
  const li = el("li", { class: `fd-card fd-${visit.priority}`, draggable: "true", "data-visit": String(visit.id) },
    el("strong", { text: `#${visit.id} ${visit.problem.slice(0, 80)}` }),
    el("span", { class: "fd-muted", text: `${visit.address} · ${visit.area || "no area"}` }),
    el("span", { class: "fd-muted", text: `skills: ${visit.skills.join(", ") || "none"}` }),
    visit.due_at ? el("span", { class: visit.breached ? "fd-late" : (visit.warned ? "fd-warn" : "fd-muted"), text: `on site by ${when(visit.due_at)}` }) : null,
    visit.window_start ? el("span", { class: "fd-muted", text: `window ${when(visit.window_start)} (${visit.confirmation})` }) : null);
  const suggestBtn = el("button", { type: "button", class: "fd-suggest", text: "Suggest" });
  const list = el("ol", { class: "fd-suggestions" });
  suggestBtn.addEventListener("click", async () => {
    list.replaceChildren(el("li", { text: "…" }));
    try {
      const data = await api("GET", `/api/v1/field/visits/${visit.id}/suggestions`);
      list.replaceChildren();
      if (!data.items.length) list.append(el("li", { text: "No technician fits." }));
      for (const s of data.items) {
        const btn = el("button", { type: "button", class: "fd-assign", "data-technician": String(s.technician_id), text: `Assign ${s.name}` });
        btn.addEventListener("click", () => assign(visit.id, s.technician_id));
        list.append(el("li", {}, btn, el("span", { class: "fd-muted", text: ` ${s.reasons.join(", ")}` })));
      }
    } catch (err) { list.replaceChildren(el("li", { class: "error", text: err.message })); }
  });
  li.append(suggestBtn, list);
  li.addEventListener("dragstart", (e) => e.dataTransfer.setData("text/plain", String(visit.id)));
  return li;
}

async function assign(visitId, technicianId) {
  try { await api("POST", `/api/v1/field/visits/${visitId}/assign`, { technician_id: technicianId }); }
  catch (err) { banner(err.message); }
  await load();
}

function block(visit) {
  const b = el("div", { class: `fd-block fd-state-${visit.state}`, "data-visit": String(visit.id), title: `${visit.problem} · ${visit.address}`,
    text: `#${visit.id} ${visit.problem.slice(0, 30)}` });
  if (visit.state === "assigned") {
    const back = el("button", { type: "button", class: "fd-unassign", title: "Unassign", "aria-label": `Unassign visit ${visit.id}`, text: "×" });
    back.addEventListener("click", () => assign(visit.id, null));
    b.prepend(back);
  }
  if (visit.window_start) {
    const start = new Date(visit.window_start), end = new Date(visit.window_end);
    const span = (END_HOUR - START_HOUR) * 60;
    const from = (start.getUTCHours() * 60 + start.getUTCMinutes()) - START_HOUR * 60;
    const length = (end - start) / 60000;
    b.style.left = `${Math.max(0, (from / span) * 100)}%`;
    b.style.width = `${Math.max(4, (length / span) * 100)}%`;
  } else {
    b.classList.add("fd-unscheduled");
  }
  return b;
}

function technicianRow(tech) {
  const row = el("div", { class: "fd-row", "data-technician": String(tech.id) },
    el("span", { class: "fd-name", text: `${tech.name} (${tech.home_area || "-"})` }));
  const lane = el("div", { class: "fd-lane" });
  tech.visits.forEach((v) => lane.append(block(v)));
  row.append(lane);
  row.addEventListener("dragover", (e) => { e.preventDefault(); row.classList.add("fd-drop"); });
  row.addEventListener("dragleave", () => row.classList.remove("fd-drop"));
  row.addEventListener("drop", (e) => {
    e.preventDefault();
    row.classList.remove("fd-drop");
    const id = Number(e.dataTransfer.getData("text/plain"));
    if (id) assign(id, tech.id);
  });
  return row;
}

async function load() {
  const data = await api("GET", `/api/v1/field/board?day=${dayInput.value}`);
  technicians = data.technicians;
  const list = document.getElementById("unassigned");
  list.replaceChildren(...data.unassigned.map(card));
  document.getElementById("no-unassigned").hidden = data.unassigned.length > 0;
  document.getElementById("technicians").replaceChildren(...technicians.map(technicianRow));
}

function rows(tbody, items, cells) {
  tbody.replaceChildren(...items.map((item) => el("tr", {}, ...cells(item).map((c) => el("td", { text: String(c ?? "–") })))));
}

async function loadReport() {
  const r = await api("GET", "/api/v1/field/report?days=30");
  const figures = document.getElementById("report-figures");
  const pct = (v) => (v === null || v === undefined ? "–" : `${v}%`);
  const pairs = [["Visits", r.visits], ["First-time fix", pct(r.first_time_fix_rate)],
    ["Ticket to visit (median min)", r.ticket_to_visit_minutes.median ?? "–"],
    ["On-time arrival", pct(r.on_time_arrival_rate)]];
  if ("cost_per_visit" in r) pairs.push(["Cost per visit", r.cost_per_visit ?? "–"]);
  figures.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
  rows(document.querySelector("#csat-tech tbody"), r.satisfaction_by_technician, (x) => [x.name, x.answers, x.average]);
  rows(document.querySelector("#csat-area tbody"), r.satisfaction_by_area, (x) => [x.name, x.answers, x.average]);
  const costs = document.querySelector("#cost-contract tbody");
  if (costs && r.cost_by_contract) rows(costs, r.cost_by_contract, (x) => [x.contract || "no contract", x.visits, x.total, x.per_visit]);
}

dayInput.addEventListener("change", load);
hours();
load();
loadReport();
connectLive(root, () => load(), () => load());
