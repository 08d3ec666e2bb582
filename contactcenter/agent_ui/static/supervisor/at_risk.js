// The at-risk list with one-click actions, agents' load with presence and capacity, and
// the failed-intake queue with replay. Lists reload after an action and on related events.
import { api, connectLive, duration, el } from "./common.js";

const status = document.getElementById("risk-status");
const agentOptions = document.getElementById("agent-options");
let cursor = Number(document.getElementById("sv").dataset.cursor || 0);
let pending = null;

function say(text) { status.textContent = text; }

async function act(path, body, done) {
  try {
    const answer = await api(path, { method: "POST", body });
    say(done(answer));
    await refresh();
  } catch (err) {
    say(`Not done: ${err.message}`);
  }
}

function ticketRow(t) {
  const select = el("select", { "aria-label": `Reassign #${t.number} to` });
  select.append(agentOptions.content.cloneNode(true));
  const reassign = el("button", { type: "button", class: "sv-reassign" }, "Reassign");
  reassign.addEventListener("click", () => act(`/supervisor/tickets/${t.ticket_id}/reassign`,
    { agent_id: Number(select.value) }, () => `#${t.number} reassigned`));
  const raise = el("button", { type: "button", class: "sv-raise" }, "Raise priority");
  raise.addEventListener("click", () => act(`/supervisor/tickets/${t.ticket_id}/priority`, {},
    (a) => `#${t.number} is now ${a.priority}`));
  const note = el("input", { type: "text", maxLength: 2000, placeholder: "Note for the agent" });
  const add = el("button", { type: "button", class: "sv-note" }, "Add note");
  add.addEventListener("click", () => note.value.trim() && act(`/supervisor/tickets/${t.ticket_id}/note`,
    { text: note.value }, () => `Note added to #${t.number}`));
  return el("tr", { "data-ticket": t.ticket_id, class: t.breached ? "sv-red" : "sv-amber" },
    el("td", {}, t.number), el("td", {}, t.subject), el("td", {}, t.target),
    el("td", {}, t.breached ? `${duration(-t.seconds_left)} overdue` : `in ${duration(t.seconds_left)}`),
    el("td", {}, t.priority), el("td", {}, t.assignee || "–"),
    el("td", { class: "sv-actions" }, select, reassign, raise, note, add));
}

function agentRow(a) {
  const presence = el("select", { "aria-label": `Presence of ${a.name}` },
    ...["available", "busy", "away", "offline"].map((p) => el("option", { value: p, selected: p === a.presence }, p)));
  presence.addEventListener("change", () => act(`/supervisor/agents/${a.id}/presence`,
    { presence: presence.value }, () => `${a.name} is ${presence.value}`));
  const caps = Object.entries(a.capacity).map(([kind, [load, max]]) => {
    const input = el("input", { type: "number", min: 0, max: 100, value: max, class: "sv-cap",
      "aria-label": `${kind} capacity of ${a.name}` });
    input.addEventListener("change", () => act(`/supervisor/agents/${a.id}/capacity`,
      { kind, maximum: Number(input.value) }, () => `${a.name}: ${kind} capacity ${input.value}`));
    return el("label", {}, `${kind} ${load}/`, input);
  });
  const load = Object.values(a.capacity).reduce((n, [l]) => n + l, 0);
  return el("tr", { "data-agent": a.id }, el("td", {}, a.name), el("td", {}, a.state),
    el("td", {}, load), el("td", {}, presence), el("td", {}, ...caps));
}

function failedRow(r) {
  const replay = el("button", { type: "button" }, "Replay");
  replay.addEventListener("click", () => act(`/supervisor/failed-intake/${r.id}/replay`, {},
    (a) => a.ticket ? `Payload ${r.id} made ticket #${a.ticket}` : `Payload ${r.id} failed again: ${a.error || a.state}`));
  return el("tr", { "data-raw": r.id }, el("td", {}, r.id), el("td", {}, r.channel),
    el("td", {}, r.received_at.slice(0, 16).replace("T", " ")), el("td", {}, r.error),
    el("td", {}, r.attempts), el("td", {}, replay));
}

async function refresh() {
  const [risk, board, failed] = await Promise.all([
    api("/supervisor/at-risk"), api("/supervisor/wallboard"), api("/supervisor/failed-intake")]);
  cursor = Math.max(cursor, board.last_event_id);
  document.querySelector("#risk-tickets tbody").replaceChildren(...risk.tickets.map(ticketRow));
  document.querySelector("#risk-contracts tbody").replaceChildren(...risk.contracts.map((c) =>
    el("tr", {}, el("td", {}, c.customer), el("td", {}, c.level), el("td", {}, c.ends_on), el("td", {}, c.days_left))));
  document.querySelector("#agent-load tbody").replaceChildren(...board.agents.map(agentRow));
  document.querySelector("#failed tbody").replaceChildren(...failed.items.map(failedRow));
}

// Events only nudge a reload, at most once every two seconds (no polling storm).
function nudge(event) {
  if (event.id <= cursor) return;
  cursor = event.id;
  if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 2000);
}

await refresh();
connectLive({ getCursor: () => cursor, onEvent: nudge, onResync: refresh });
