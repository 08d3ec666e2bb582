// The Erlang C calculator and the forecast from a queue's history.
import { api, duration, el, percent } from "./common.js";

const form = document.getElementById("staffing-form");
const result = document.getElementById("staffing-result");
const forecastForm = document.getElementById("forecast-form");

function params(f) {
  const p = new URLSearchParams();
  for (const [k, v] of new FormData(f).entries()) if (v !== "") p.set(k, v);
  if (p.has("agents")) p.delete("service_level");
  return p;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const r = await api(`/staffing?${params(form)}`);
    const rows = [["Traffic", `${r.traffic_erlangs.toFixed(2)} Erlangs`], ["Agents needed", r.agents],
      ["Probability of waiting", percent(r.wait_probability)], ["Service level", percent(r.service_level)],
      ["Average speed of answer", r.asa_seconds === null ? "unbounded" : duration(r.asa_seconds)],
      ["Occupancy", percent(r.occupancy)], ["Scheduled headcount", r.scheduled_headcount]];
    result.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-field": k }, v)]));
  } catch (err) {
    result.replaceChildren(el("dt", {}, "Error"), el("dd", {}, err.message));
  }
});

forecastForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const p = params(forecastForm);
  for (const k of ["target_seconds", "service_level", "shrinkage", "aht_seconds"]) {
    const v = form.elements[k].value; if (v) p.set(k, v);
  }
  const r = await api(`/staffing/forecast?${p}`);
  document.querySelector("#forecast tbody").replaceChildren(...r.intervals.map((i) =>
    el("tr", {}, el("td", {}, i.label), el("td", {}, i.contacts), el("td", {}, i.aht_seconds ?? "–"),
      el("td", {}, i.agents_needed), el("td", {}, i.scheduled_headcount), el("td", {}, percent(i.service_level)))));
});
