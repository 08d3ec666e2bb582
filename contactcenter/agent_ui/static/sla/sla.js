// Attainment report: fetch /api/v1/sla/report and draw a table and a stacked bar chart.
// Chart.js comes from /vendor/chart.umd.js (global `Chart`); no inline scripts (CSP).

const form = document.getElementById("report-form");
const body = document.querySelector("#attainment tbody");
const canvas = document.getElementById("attainment-chart");
let chart = null;

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function render(rows) {
  body.replaceChildren();
  if (!rows.length) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    const td = cell("No targets in this period.");
    td.colSpan = 7;
    tr.append(td);
    body.append(tr);
  }
  for (const r of rows) {
    const tr = document.createElement("tr");
    const pct = r.attainment_percent === null ? "—" : `${r.attainment_percent}%`;
    tr.append(cell(r.label), cell(String(r.total)), cell(String(r.met)),
      cell(String(r.breached), r.breached ? "bad" : ""), cell(String(r.open)), cell(pct),
      cell(r.avg_business_minutes === null ? "—" : String(r.avg_business_minutes)));
    body.append(tr);
  }
  const data = {
    labels: rows.map((r) => r.label),
    datasets: [
      { label: "met", data: rows.map((r) => r.met), backgroundColor: "#3c9d5d" },
      { label: "breached", data: rows.map((r) => r.breached), backgroundColor: "#c0392b" },
      { label: "open", data: rows.map((r) => r.open), backgroundColor: "#9aa5b1" },
    ],
  };
  if (typeof Chart === "undefined") return;
  if (chart) chart.destroy();
  chart = new Chart(canvas, {
    type: "bar", data,
    options: { animation: false, responsive: false,
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
  });
  canvas.dataset.drawn = String(rows.length);
}

async function load() {
  const params = new URLSearchParams();
  params.set("group_by", document.getElementById("group-by").value);
  const kind = document.getElementById("kind").value;
  if (kind) params.set("kind", kind);
  const days = Math.min(366, Math.max(1, Number(document.getElementById("days").value) || 30));
  const until = new Date();
  params.set("until", until.toISOString());
  params.set("since", new Date(until.getTime() - days * 86400000).toISOString());
  const res = await fetch(`/api/v1/sla/report?${params}`, { credentials: "same-origin" });
  if (!res.ok) {
    body.replaceChildren();
    const tr = document.createElement("tr");
    const td = cell(`Report unavailable (${res.status}).`);
    td.colSpan = 7;
    tr.append(td);
    body.append(tr);
    return;
  }
  render((await res.json()).rows);
}

form.addEventListener("change", load);
form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
load();
