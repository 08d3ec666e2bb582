// Marketing page: the conversion report as a chart and a table, by the chosen dimension.
const select = document.getElementById("conv-by");
const body = document.querySelector("#conv-table tbody");
const canvas = document.getElementById("conv-chart");
let chart = null;

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function render(items) {
  body.replaceChildren(...items.map((r) => {
    const tr = document.createElement("tr");
    tr.append(cell(r.key), cell(r.shown), cell(r.accepted), cell(r.declined),
      cell(r.not_relevant), cell(`${(r.conversion * 100).toFixed(1)}%`));
    return tr;
  }));
  if (!items.length) {
    const tr = document.createElement("tr");
    const td = cell("No offers shown yet.");
    td.colSpan = 6;
    tr.append(td);
    body.append(tr);
  }
  const data = {
    labels: items.map((r) => r.key),
    datasets: [
      { label: "Shown", data: items.map((r) => r.shown), backgroundColor: "#9bb7e0" },
      { label: "Accepted", data: items.map((r) => r.accepted), backgroundColor: "#1d7a38" },
    ],
  };
  if (chart) {
    chart.data = data;
    chart.update();
  } else if (window.Chart) {
    chart = new window.Chart(canvas, {
      type: "bar", data,
      options: { responsive: true, maintainAspectRatio: false, animation: false },
    });
  }
  canvas.dataset.rows = String(items.length);
}

async function load() {
  const by = encodeURIComponent(select.value);
  const response = await fetch(`/api/v1/sales/conversion?by=${by}`, { credentials: "same-origin" });
  if (!response.ok) return;
  const report = await response.json();
  render(report.items || []);
  document.body.dataset.loaded = select.value;
}

select.addEventListener("change", load);
load();
