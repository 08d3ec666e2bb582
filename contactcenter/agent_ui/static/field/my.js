// The technician's page: today's visits in order; one visit's details, history and articles;
// travel, check-in, parts, photos and check-out. New assignments arrive live.
import { apiClient, connectLive, el, when } from "./live.js";

const root = document.getElementById("my");
const api = apiClient(root);
let current = null;

function banner(text) {
  const b = document.getElementById("banner");
  b.textContent = text;
  b.hidden = false;
  setTimeout(() => { b.hidden = true; }, 5000);
}

async function loadList() {
  const data = await api("GET", "/api/v1/field/my/visits");
  const list = document.getElementById("visits");
  list.replaceChildren(...data.items.map((v) => {
    const li = el("li", { class: `fd-item fd-state-${v.state}`, "data-visit": String(v.id) },
      el("strong", { text: `${v.window_start ? when(v.window_start) : "any time"} · ${v.customer.name}` }),
      el("span", { text: v.address }),
      el("span", { class: "fd-muted", text: `${v.problem.slice(0, 80)} · ${v.state.replace("_", " ")}` }));
    li.tabIndex = 0;
    li.addEventListener("click", () => open(v.id));
    li.addEventListener("keydown", (e) => { if (e.key === "Enter") open(v.id); });
    return li;
  }));
  document.getElementById("no-visits").hidden = data.items.length > 0;
}

function render(v) {
  current = v;
  document.getElementById("v-title").textContent = `Visit #${v.id} · ticket #${v.ticket.number}`;
  document.getElementById("v-customer").textContent = v.customer.name;
  const phone = document.getElementById("v-phone");
  phone.textContent = v.customer.phone || "no phone";
  phone.href = v.customer.phone ? `tel:${v.customer.phone}` : "#";
  document.getElementById("v-address").textContent = `${v.address}${v.area ? ` (${v.area})` : ""}`;
  document.getElementById("v-window").textContent = v.window_start ? `Window ${when(v.window_start)} – ${when(v.window_end)}` : "No window agreed";
  document.getElementById("v-problem").textContent = `${v.problem}${v.parts_needed ? ` · bring: ${v.parts_needed}` : ""}`;
  const checkedIn = v.checked_in_at ? ` · checked in ${when(v.checked_in_at)}` : "";
  document.getElementById("v-state").textContent = `State: ${v.state.replace("_", " ")}${checkedIn}`;
  document.getElementById("travel").hidden = v.state !== "assigned" || Boolean(v.travel_started_at);
  document.getElementById("check-in").hidden = v.state !== "assigned";
  const working = v.state === "in_progress";
  for (const id of ["part-form", "photo-form", "out-form"]) document.getElementById(id).hidden = !working;
  document.getElementById("v-parts").replaceChildren(...v.parts.map((p) => el("li", { text: `${p.quantity} × ${p.name}${p.sku ? ` (${p.sku})` : ""}` })));
  document.getElementById("v-photos").replaceChildren(...v.photos.map((p) => el("li", {},
    el("img", { src: `/api/v1/field/visits/${v.id}/photos/${p.id}`, alt: p.filename, class: "fd-thumb" }))));
  const outcome = document.getElementById("v-outcome");
  outcome.hidden = !v.outcome;
  outcome.textContent = v.outcome ? `Outcome: ${v.outcome.replace("_", " ")} · ${v.work_minutes ?? 0} min on site` : "";
  if (v.history) {
    document.getElementById("v-history").replaceChildren(...v.history.map((m) => el("li", { class: `fd-msg fd-${m.direction}` },
      el("span", { class: "fd-muted", text: `${m.direction} · ${m.channel} · ${when(m.at)}` }), el("p", { text: m.text }))));
    document.getElementById("v-articles").replaceChildren(...(v.articles.length ? v.articles.map((a) => el("li", { text: a.title }))
      : [el("li", { class: "fd-muted", text: "No matching article." })]));
  }
}

async function open(id) {
  try {
    render(await api("GET", `/api/v1/field/my/visits/${id}`));
  } catch (err) { banner(err.message); return; }
  document.getElementById("visits").hidden = true;
  document.getElementById("no-visits").hidden = true;
  document.getElementById("visit").hidden = false;
  window.scrollTo(0, 0);
}

async function step(path, body) {
  try {
    const v = await api("POST", `/api/v1/field/my/visits/${current.id}/${path}`, body);
    render({ ...current, ...v });
    return true;
  } catch (err) { banner(err.message); return false; }
}

document.getElementById("back").addEventListener("click", async () => {
  document.getElementById("visit").hidden = true;
  document.getElementById("visits").hidden = false;
  current = null;
  await loadList();
});
document.getElementById("travel").addEventListener("click", () => step("travel"));
document.getElementById("check-in").addEventListener("click", () => step("check-in"));
document.getElementById("part-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const ok = await step("parts", { name: f.get("name"), sku: f.get("sku"), quantity: Number(f.get("quantity") || 1), unit_cost: f.get("unit_cost") || "0" });
  if (ok) e.target.reset();
});
document.getElementById("photo-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = document.getElementById("photo");
  if (!input.files.length) { banner("Choose a photo first."); return; }
  const body = new FormData();
  body.append("photo", input.files[0]);
  if (await step("photos", body)) input.value = "";
});
document.getElementById("out-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  await step("check-out", { outcome: f.get("outcome"), notes: f.get("notes"), signed_by: f.get("signed_by") });
});

loadList();
connectLive(root, (event) => {
  if (event.type === "field.visit_assigned" && event.payload.technician_id === Number(root.dataset.me)) {
    banner(`New visit #${event.payload.visit_id} assigned to you.`);
  }
  if (!current) loadList();
}, () => { if (!current) loadList(); });
