// The desk: live connection with cursor, replay and resync; the inbox; presence and wrap-up;
// the offer card (screen pop); keyboard shortcuts. The workspace lives in desk/workspace.js.
import { api, clear, debounce, el, left, me, t } from "./desk/util.js";
import * as workspace from "./desk/workspace.js";

const $ = (id) => document.getElementById(id);
const desk = $("desk");
const live = $("live");
const list = $("events");
let cursor = Number(desk.dataset.cursor || 0);
let view = "all";
let savedView = "";

function show(state, text) {
  live.dataset.state = state;
  live.textContent = text;
  $("banner").hidden = state !== "offline";
}

// ---- inbox -------------------------------------------------------------------------------

function filters() {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData($("filters"))) if (value) params.set(name, value);
  if (savedView) params.set("saved", savedView);
  else params.set("view", view);
  return params;
}

async function loadInbox() {
  let data;
  try { data = await api("GET", `/desk/api/inbox?${filters()}`); } catch { return; }
  const body = clear($("tickets"));
  if (!data.items.length) body.append(el("tr", { class: "empty" }, el("td", { colspan: 6 }, t("Nothing open."))));
  for (const item of data.items) {
    const row = el("tr", { dataset: { ticket: item.id, number: item.number }, tabindex: 0,
      title: item.priority_reason || "", class: item.due_at && new Date(item.due_at) < new Date() ? "overdue" : "" },
    el("td", {}, item.number), el("td", {}, item.subject),
    el("td", {}, item.customer_name, item.tier ? el("span", { class: `tier tier-${item.tier}` }, item.tier) : null),
    el("td", {}, item.channel), el("td", {}, item.status),
    el("td", { class: "due", dataset: { due: item.due_at || "" } }, item.due_at ? left(item.due_at) : ""));
    body.append(row);
  }
}
const refreshInbox = debounce(loadInbox, 300);

$("tickets").addEventListener("click", (e) => {
  const row = e.target.closest("tr[data-number]");
  if (row) workspace.open(Number(row.dataset.number));
});
$("tickets").addEventListener("keydown", (e) => {
  const row = e.target.closest("tr[data-number]");
  if (!row) return;
  if (e.key === "Enter") workspace.open(Number(row.dataset.number));
  if (e.key === "ArrowDown" || e.key === "j") { row.nextElementSibling?.focus(); e.preventDefault(); }
  if (e.key === "ArrowUp" || e.key === "k") { row.previousElementSibling?.focus(); e.preventDefault(); }
});
$("views").addEventListener("click", (e) => {
  const tab = e.target.closest("[data-view]");
  if (!tab) return;
  view = tab.dataset.view;
  savedView = "";
  $("saved-views").value = "";
  for (const b of $("views").querySelectorAll("[data-view]")) b.setAttribute("aria-selected", b === tab);
  loadInbox();
});
$("filters").addEventListener("input", refreshInbox);
$("filters").addEventListener("submit", (e) => { e.preventDefault(); loadInbox(); });

async function loadSavedViews() {
  const data = await api("GET", "/desk/api/views").catch(() => ({ items: [] }));
  const select = clear($("saved-views"));
  select.append(el("option", { value: "" }, t("Saved views…")),
    ...data.items.map((v) => el("option", { value: v.id }, v.name)));
}
$("saved-views").addEventListener("change", (e) => { savedView = e.target.value; loadInbox(); });
$("save-view").addEventListener("click", async () => {
  const name = window.prompt(t("Name of this view:"));
  if (!name) return;
  const chosen = {};
  for (const [k, v] of new FormData($("filters"))) if (v) chosen[k] = v;
  await api("POST", "/desk/api/views", { name, view, filters: chosen }).catch((err) => alertBox(err.message));
  loadSavedViews();
});

function alertBox(text) {
  const banner = $("banner");
  banner.textContent = text;
  banner.hidden = false;
  setTimeout(() => { banner.hidden = true; }, 5000);
}

// ---- presence and wrap-up ----------------------------------------------------------------

const socket = io("/agent", { transports: ["websocket"] });
window.deskSocket = socket;  // for diagnostics and the browser tests
let wrapUntil = null;

$("presence").addEventListener("change", async (e) => {
  const presence = e.target.value;
  $("away-reason").hidden = presence !== "away";
  const answer = await socket.emitWithAck("presence", { presence, reason: $("away-reason").value });
  if (answer.error) alertBox(answer.error);
});
$("away-reason").addEventListener("change", () => {
  socket.emit("presence", { presence: "away", reason: $("away-reason").value });
});

function presenceChanged(p) {
  if (p.agent_id !== me) return;
  if (p.presence !== "wrap_up") $("presence").value = ["available", "away", "offline"].includes(p.presence) ? p.presence : $("presence").value;
  wrapUntil = p.presence === "wrap_up" && p.wrap_up_until ? new Date(p.wrap_up_until) : null;
  tickWrap();
}
function tickWrap() {
  const box = $("wrapup");
  if (!wrapUntil || wrapUntil < new Date()) { box.hidden = true; return; }
  box.hidden = false;
  box.textContent = t("Wrap-up {time}", { time: left(wrapUntil.toISOString()) });
}

// ---- offers (screen pop) -----------------------------------------------------------------

let offer = null;
let offerTimer = null;

async function offered(p) {
  if (p.agent_id !== me) return;
  let card;
  try { card = await api("GET", `/desk/api/items/${p.item_id}/card`); } catch { return; }
  offer = { id: p.offer_id, itemId: p.item_id, card };
  const call = card.kind === "call";
  $("offer-title").textContent = call ? t("Incoming call") : t("New contact");
  $("offer-who").textContent = `${card.customer?.name || t("Unknown caller")}${card.tier ? ` · ${t("tier")} ${card.tier}` : ""}`;
  $("offer-what").textContent = `${call && card.sender ? `${card.sender} · ` : ""}${card.channel}${card.ticket ? ` · #${card.ticket.number} ${card.ticket.subject}` : ""}${card.contract ? ` · ${card.contract}` : ""}`;
  clear($("offer-history")).append(...(card.history || []).map((h) =>
    el("li", {}, `#${h.number} ${h.subject} · ${h.channels.join(", ")} · ${h.status}`)));
  $("offer-why").textContent = card.reason || "";
  $("offer").hidden = false;
  $("offer-accept").focus();
  clearInterval(offerTimer);
  const expires = card.expires_at || p.offer_expires_at;
  const tick = () => {
    if (!expires) return;
    const seconds = Math.max(0, Math.round((new Date(expires) - Date.now()) / 1000));
    $("offer-countdown").textContent = t("{n} s to answer", { n: seconds });
    if (seconds <= 0) closeOffer();
  };
  tick();
  offerTimer = setInterval(tick, 500);
  if (document.hidden) notify(card);
}

function notify(card) {
  try {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    osc.connect(ctx.destination);
    osc.frequency.value = 880;
    osc.start();
    osc.stop(ctx.currentTime + 0.3);
  } catch { /* no audio: the notification still shows */ }
  if ("Notification" in window && Notification.permission === "granted") {
    new Notification(t("New contact"), { body: `${card.customer?.name || ""} · ${card.channel}` });
  }
}

function closeOffer() {
  clearInterval(offerTimer);
  offer = null;
  $("offer").hidden = true;
}

async function answerOffer(answer) {
  if (!offer) return;
  const current = offer;
  closeOffer();
  const result = await socket.emitWithAck("offer", { offer_id: current.id, answer });
  if (result.error) { alertBox(result.error); return; }
  if (answer === "accept" && current.card.ticket) workspace.open(current.card.ticket.number);
}
$("offer-accept").addEventListener("click", () => answerOffer("accept"));
$("offer-decline").addEventListener("click", () => answerOffer("decline"));

function offerGone(p) {
  if (offer && p.offer_id === offer.id) closeOffer();
}

// ---- the live connection -----------------------------------------------------------------

const OFFER_END = new Set(["offer.expired", "offer.withdrawn", "offer.declined", "offer.accepted"]);

function apply(event) {
  if (event.id <= cursor) return;            // replay and live delivery may overlap
  cursor = event.id;
  const p = event.payload || {};
  const item = document.createElement("li");
  item.textContent = `${event.type} #${p.number ?? ""} ${p.subject ?? ""}`;
  list.prepend(item);
  while (list.children.length > 50) list.lastElementChild.remove();
  if (event.type === "offer.made") offered(p);
  else if (OFFER_END.has(event.type)) offerGone(p);
  if (event.type === "agent.presence_changed") presenceChanged(p);
  if (event.type === "note.mentioned" && p.user_id === me) {
    alertBox(t("{name} mentioned you on #{number}", { name: p.by_name, number: p.number }));
  }
  if (/^(ticket|message|item|sla)\./.test(event.type)) refreshInbox();
  else if (event.type === "customer.updated" && (p.fields || []).includes("name")) refreshInbox();
  workspace.onEvent(event);
}

socket.on("connect", async () => {
  const answer = await socket.emitWithAck("resume", { cursor });
  if (answer.resync_required) { window.location.reload(); return; }
  (answer.events || []).forEach(apply);
  show("live", t("live"));
  workspace.reconnected();
  refreshInbox();
});
socket.on("disconnect", () => show("offline", t("reconnecting…")));
socket.on("connect_error", (err) => show("offline", `${t("offline")}: ${err.message}`));
socket.on("event", apply);
socket.on("viewers", (data) => workspace.showViewers(data));

workspace.init(socket);

// The phone: the Twilio softphone device, its status line and click to call.
const phoneCtx = { socket, ticket: null, csrfToken: desk.dataset.csrf, me };
import("./phone/softphone.js").then(({ mount }) => {
  const phone = mount($("phone"), phoneCtx);
  $("ws-call").addEventListener("click", async () => {
    const number = workspace.currentNumber();
    if (!number) return;
    phoneCtx.ticket = { number };
    const answer = await phone.call().catch((err) => ({ error: String(err) }));
    if (answer?.error) alertBox(answer.error);
  });
}).catch(() => { $("phone").textContent = ""; });

$("locale").addEventListener("change", async (e) => {
  await api("PUT", "/desk/api/me/locale", { locale: e.target.value });
  window.location.reload();
});

// ---- keyboard ----------------------------------------------------------------------------

document.addEventListener("keydown", (e) => {
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName);
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && document.activeElement?.id === "reply-text") {
    $("reply").requestSubmit();
    return;
  }
  if (!$("offer").hidden && !typing) {
    if (e.key === "a") answerOffer("accept");
    if (e.key === "d") answerOffer("decline");
    return;
  }
  if (typing) return;
  if (e.key === "/") { e.preventDefault(); $("filters").q.focus(); }
  if (e.key === "r") { e.preventDefault(); $("reply-text").focus(); }
  if (e.key === "i") { e.preventDefault(); $("tickets").querySelector("tr[data-number]")?.focus(); }
});

setInterval(() => {
  tickWrap();
  for (const cell of document.querySelectorAll("#tickets td.due[data-due]")) {
    if (cell.dataset.due) cell.textContent = left(cell.dataset.due);
  }
}, 1000);

if ("Notification" in window && Notification.permission === "default") {
  document.addEventListener("click", () => Notification.requestPermission().catch(() => {}), { once: true });
}
loadInbox();
loadSavedViews();
function openFromHash() {
  const wanted = /^#ticket-(\d+)$/.exec(window.location.hash);
  if (wanted) workspace.open(Number(wanted[1]));
}
window.addEventListener("hashchange", openFromHash);
openFromHash();
