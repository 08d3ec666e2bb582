// The reports page: a filter form, Chart.js charts with tables beneath, and CSV export.
import { api, duration, el, percent } from "./common.js";

const form = document.getElementById("report-form");
const tables = document.getElementById("report-tables");
const csv = document.getElementById("csv");
const charts = {};

function query() {
  const data = new FormData(form);
  const params = new URLSearchParams();
  for (const [key, value] of data.entries()) {
    if (!value) continue;
    if (key === "start") params.set("start", `${value}T00:00:00+00:00`);
    else if (key === "end") {
      const end = new Date(`${value}T00:00:00Z`); end.setUTCDate(end.getUTCDate() + 1);
      params.set("end", end.toISOString());
    } else params.set(key, value);
  }
  return params;
}

function chart(id, config) {
  if (charts[id]) charts[id].destroy();
  charts[id] = new Chart(document.getElementById(id), { ...config, options: { animation: false, responsive: true, ...config.options } });
}

function table(title, header, rows) {
  return el("section", { class: "sv-report-table" }, el("h3", {}, title),
    el("table", { class: "sv-table" }, el("thead", {}, el("tr", {}, ...header.map((h) => el("th", {}, h)))),
      el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c ?? "–")))))));
}

const minutes = (s) => (s === null ? null : Math.round(s / 6) / 10);

async function show(event) {
  if (event) event.preventDefault();
  const params = query();
  csv.href = `/api/v1/reports?${params}&format=csv`;
  const r = await api(`/reports?${params}`);
  chart("chart-hour", { type: "bar", data: { labels: [...Array(24).keys()].map((h) => `${h}:00`),
    datasets: [{ label: "Tickets", data: r.volume.by_hour }] } });
  chart("chart-day", { type: "line", data: { labels: r.volume.by_day.map((d) => d.day),
    datasets: [{ label: "Tickets", data: r.volume.by_day.map((d) => d.count) }] } });
  chart("chart-times", { type: "bar", data: { labels: ["First response", "Resolution"], datasets: [
    { label: "Median (min)", data: [minutes(r.first_response.median_seconds), minutes(r.resolution.median_seconds)] },
    { label: "90th percentile (min)", data: [minutes(r.first_response.p90_seconds), minutes(r.resolution.p90_seconds)] }] } });
  chart("chart-tiers", { type: "bar", data: { labels: r.tiers.map((t) => `Tier ${t.tier}`), datasets: [
    { label: "Average wait (s)", data: r.tiers.map((t) => t.asa_seconds) },
    { label: "Abandonment (%)", data: r.tiers.map((t) => (t.abandonment ?? 0) * 100) }] } });
  const fcr = r.fcr;
  const c = r.csat;
  tables.replaceChildren(
    table("Response times", ["Measure", "Count", "Mean", "Median", "90th percentile"], [
      ["First response", r.first_response.count, duration(r.first_response.mean_seconds), duration(r.first_response.median_seconds), duration(r.first_response.p90_seconds)],
      ["Resolution", r.resolution.count, duration(r.resolution.mean_seconds), duration(r.resolution.median_seconds), duration(r.resolution.p90_seconds)]]),
    table("Service level by queue", ["Queue", "Kind", "Target", "Answered", "Within target", "Abandoned", "Service level", "Abandonment", "ASA"],
      r.service_levels.map((s) => [s.queue, s.kind, `${s.target_seconds}s`, s.answered, s.within_target, s.abandoned, percent(s.service_level), percent(s.abandonment), duration(s.asa_seconds)])),
    table("Wait by customer tier", ["Tier", "Answered", "Abandoned", "Abandonment", "Average wait", "Median wait", "90th percentile"],
      r.tiers.map((t) => [t.tier, t.answered, t.abandoned, percent(t.abandonment), duration(t.asa_seconds), duration(t.median_wait_seconds), duration(t.p90_wait_seconds)])),
    table("First-contact resolution", ["Solved", "On first contact", "Rate", "With a knowledge article"],
      [[fcr.solved, fcr.first_contact, percent(fcr.rate), fcr.with_article ?? "not recorded yet"]]),
    table("Customer satisfaction", ["Answers", "Sent", "Average (1-5)", "Satisfied (4-5)"],
      [[c.responses, c.sent, c.average, percent(c.satisfied_share)]]),
    r.sla ? table("SLA attainment per policy", ["Policy", "Target", "Clocks", "Met", "Breached", "Attainment"],
      r.sla.policies.map((x) => [x.policy, x.kind, x.clocks, x.met, x.breached, percent(x.attainment)])) : "",
    r.sla ? table("SLA attainment per contract", ["Contract", "Level", "Clocks", "Met", "Breached", "Attainment"],
      r.sla.contracts.map((x) => [x.contract, x.level, x.clocks, x.met, x.breached, percent(x.attainment)])) : "",
    r.cross_sell ? table("Cross-sell", ["Tier", "Shown", "Accepted", "Declined", "Not relevant", "Conversion"],
      [...r.cross_sell.tiers.map((x) => [x.tier, x.shown, x.accepted, x.declined, x.not_relevant, percent(x.conversion)]),
       ["All", r.cross_sell.shown, r.cross_sell.accepted, r.cross_sell.declined, r.cross_sell.not_relevant, percent(r.cross_sell.conversion)]]) : "");
  document.body.dataset.report = "ready";
}

const today = new Date();
const week = new Date(today.getTime() - 6 * 86400000);
form.elements.start.value = week.toISOString().slice(0, 10);
form.elements.end.value = today.toISOString().slice(0, 10);
form.addEventListener("submit", show);
show();
