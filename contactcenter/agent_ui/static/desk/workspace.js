// The ticket workspace: timeline, reply with drafts and collision warning, ticket controls,
// the customer panel and the assist panels (SLA clocks, knowledge, offers).
import { api, ApiError, clear, debounce, el, left, me, t, when } from "./util.js";
import { identityBlock } from "./identity.js";

const $ = (id) => document.getElementById(id);
// composeBase: the last message the agent had seen when they started this reply; a reply by
// someone else after it is a collision even if the timeline has refreshed since.
const state = { number: null, ticketId: null, lastSeen: 0, composeBase: null, data: null,
  socket: null, typing: false };

// Where the assist panels' actions go (the capability packages' endpoints).
export const endpoints = {
  articleUse: (number) => `/api/v1/tickets/${number}/kb-uses`,
  offerOutcome: (offerId) => `/api/v1/offers/${offerId}/outcome`,
};

export function currentTicketId() { return state.ticketId; }
export function currentNumber() { return state.number; }

export function init(socket) {
  state.socket = socket;
  $("reply").addEventListener("submit", (e) => { e.preventDefault(); send(false); });
  const saveDraft = debounce(() => saveDraftNow(), 800);
  $("reply-text").addEventListener("input", () => {
    if (state.composeBase === null) state.composeBase = state.lastSeen;
    if (!$("reply-text").value) state.composeBase = null;
    $("draft-state").textContent = t("editing…");
    saveDraft();
    setTyping(true);
    stopTyping();
  });
  $("ws-status").addEventListener("change", (e) => patch({ status: e.target.value }));
  $("ws-priority").addEventListener("change", (e) => patch({ priority: e.target.value }));
  $("ws-queue").addEventListener("change", (e) => patch({ queue_id: Number(e.target.value) }));
  $("ws-tags").addEventListener("change", (e) => patch({
    tags: e.target.value.split(",").map((s) => s.trim()).filter(Boolean) }));
  $("ws-take").addEventListener("click", () => patch({ assignee_id: me }));
  $("ws-merge").addEventListener("click", () => ask(t("Merge this ticket into ticket number:"),
    (n) => api("POST", `/desk/api/tickets/${state.number}/merge`, { into: n }).then((t2) => open(t2.number))));
  $("ws-link").addEventListener("click", () => ask(t("Link to ticket number:"),
    (n) => api("POST", `/desk/api/tickets/${state.number}/links`, { number: n }).then(() => reload())));
  $("canned").addEventListener("change", (e) => {
    const option = e.target.selectedOptions[0];
    if (option?.dataset.text) insert(option.dataset.text);
    e.target.value = "";
  });
  setInterval(tickClocks, 1000);
}

function ask(question, action) {
  const answer = window.prompt(question);
  const n = Number(answer);
  if (answer && Number.isInteger(n) && n > 0) action(n).catch(showError);
}

function showError(err) {
  const box = $("collision");
  box.hidden = false;
  clear(box).append(err instanceof ApiError ? err.message : String(err));
}

const stopTyping = debounce(() => setTyping(false), 3000);
function setTyping(on) {
  if (state.typing === on || !state.ticketId) return;
  state.typing = on;
  state.socket.emit("typing", { ticket_id: state.ticketId, typing: on });
}

async function saveDraftNow() {
  if (!state.number) return;
  try {
    await api("PUT", `/desk/api/tickets/${state.number}/draft`,
      { text: $("reply-text").value, internal: $("reply-internal").checked });
    $("draft-state").textContent = t("draft saved");
  } catch (err) {
    $("draft-state").textContent = t("draft not saved: offline");
  }
}

function insert(text) {
  const area = $("reply-text");
  const at = area.selectionStart ?? area.value.length;
  area.value = area.value.slice(0, at) + text + area.value.slice(area.selectionEnd ?? at);
  area.dispatchEvent(new Event("input"));
  area.focus();
}

async function patch(changes) {
  try {
    await api("PATCH", `/desk/api/tickets/${state.number}`, changes);
    await reload();
  } catch (err) { showError(err); await reload(); }
}

async function send(force) {
  const text = $("reply-text").value;
  if (!text.trim()) return;
  const box = $("collision");
  box.hidden = true;
  try {
    await api("POST", `/desk/api/tickets/${state.number}/reply`, {
      text, internal: $("reply-internal").checked, channel: $("reply-channel").value || null,
      last_seen_message_id: state.composeBase ?? state.lastSeen, force });
    $("reply-text").value = "";
    state.composeBase = null;
    $("draft-state").textContent = "";
    setTyping(false);
    await reload();
  } catch (err) {
    if (err instanceof ApiError && err.status === 409 && err.body?.collision) {
      clear(box).append(
        el("p", {}, t("{name} replied while you were typing:", {
          name: err.body.replies.map((r) => r.author_name || r.sender || t("someone")).join(", ") })),
        ...err.body.replies.map((r) => el("blockquote", {}, r.text.slice(0, 500))),
        el("button", { type: "button", id: "send-anyway", onclick: () => send(true) }, t("Send anyway")),
      );
      box.hidden = false;
      await reload(true);
    } else showError(err);
  }
}

export async function open(number) {
  if (state.ticketId) state.socket.emit("unwatch", { ticket_id: state.ticketId });
  state.number = number;
  state.lastSeen = 0;
  state.composeBase = null;
  await reload();
  $("workspace").hidden = false;
  $("side").hidden = false;
  state.socket.emit("watch", { ticket_id: state.ticketId });
  history.replaceState(null, "", `#ticket-${number}`);
  $("reply-text").focus();
  mountChat(state.data.ticket);
}

// A live chat's panel (static/chat/panel.js) above the reply form, for chat tickets only.
let chatPanel = null;
async function mountChat(ticket) {
  chatPanel?.unmount();
  chatPanel = null;
  const box = $("chat-panel");
  box.hidden = ticket.channel !== "chat";
  if (box.hidden) return;
  const { mount } = await import("/static/chat/panel.js");
  const panel = await mount(box, { socket: state.socket, ticket: { id: ticket.id },
    csrfToken: $("desk").dataset.csrf });
  if (state.ticketId === ticket.id && !chatPanel) chatPanel = panel;
  else panel.unmount();
}

export async function reload(keepDraft = true) {
  if (!state.number) return;
  const data = await api("GET", `/desk/api/tickets/${state.number}/workspace`);
  state.data = data;
  state.ticketId = data.ticket.id;
  renderHead(data);
  renderTimeline(data.messages);
  if (!keepDraft || !$("reply-text").value) {
    $("reply-text").value = data.draft?.text || "";
    $("reply-internal").checked = !!data.draft?.internal;
    if (data.draft) $("draft-state").textContent = t("draft restored");
  }
  renderCustomer(data);
  renderChannels(data.ticket, data.customer);
  loadCanned();
  loadAssist();
}

export function reconnected() {
  if (state.ticketId) state.socket.emit("watch", { ticket_id: state.ticketId });
}

export function onEvent(event) {
  const p = event.payload || {};
  if (!state.ticketId) return;
  // An edit or merge of this ticket's customer, made on any screen (customer.* events).
  const customerId = state.data?.customer?.id;
  if (event.type.startsWith("customer.") && customerId
      && [p.customer_id, p.survivor_id, p.merged_id].includes(customerId)) {
    reload();
    return;
  }
  if (p.ticket_id === state.ticketId || p.id === state.ticketId) {
    if (event.type === "kb.suggestions_ready" || event.type.startsWith("sla.")) loadAssist();
    else reload();
  }
}

export function showViewers(data) {
  if (data.ticket_id !== state.ticketId) return;
  const others = data.viewers.filter((v) => v.user_id !== me);
  const box = clear($("ws-viewers"));
  if (others.length) {
    box.append(...others.map((v) => el("span", { class: v.typing ? "viewer typing" : "viewer" },
      v.typing ? t("{name} is typing a reply", { name: v.name }) : t("{name} is viewing", { name: v.name }))));
  }
}

function renderHead({ ticket, queues, can_assign: canAssign }) {
  $("ws-title").textContent = `#${ticket.number} ${ticket.subject}`;
  // Mail that named another ticket without proof of sender: the From may be forged (ID-1).
  const unverified = $("ws-unverified");
  unverified.hidden = !ticket.sender_unverified;
  unverified.textContent = ticket.claimed_ticket_number
    ? t("Unverified sender: claims to reply to #{number}", { number: ticket.claimed_ticket_number })
    : t("Unverified sender");
  $("ws-visit").href = `/field/new?ticket=${ticket.number}`;
  $("ws-status").value = ticket.status;
  $("ws-priority").value = ticket.priority;
  const queue = clear($("ws-queue"));
  queue.append(el("option", { value: "" }, "—"),
    ...queues.map((q) => el("option", { value: q.id, selected: q.slug === ticket.queue }, q.name)));
  $("ws-tags").value = (ticket.tags || []).join(", ");
  $("ws-take").hidden = ticket.assignee_id === me;
  $("ws-take").dataset.canAssign = canAssign;
  const links = clear($("ws-links"));
  for (const link of ticket.links || []) {
    links.append(el("a", { href: `#ticket-${link.number}`, class: "link",
      onclick: (e) => { e.preventDefault(); open(link.number); } },
      `${link.kind === "merged" ? t("merged into") : t("related")} #${link.number} ${link.subject}`));
  }
}

function renderTimeline(messages) {
  const list = clear($("timeline"));
  for (const m of messages) {
    state.lastSeen = Math.max(state.lastSeen, m.id);
    const who = m.direction === "inbound" ? (m.sender || t("customer"))
      : (m.author_name || t("agent"));
    const head = el("div", { class: "msg-head" },
      el("span", { class: `badge ch-${m.channel}` }, m.channel),
      el("strong", {}, who),
      m.direction === "note" ? el("span", { class: "badge note" }, t("internal note")) : null,
      el("time", { datetime: m.received_at }, when(m.received_at)),
      m.direction === "outbound" ? el("span", { class: "muted" }, m.delivery_state) : null);
    const body = el("div", { class: "msg-body" });
    if (m.html) {
      // Sanitised at intake, and shown in a sandbox without scripts as a second wall.
      const frame = el("iframe", { sandbox: "", class: "msg-html", title: t("message") });
      frame.srcdoc = m.html;
      body.append(frame);
    } else body.append(el("pre", { class: "msg-text" }, m.text));
    const files = (m.attachments || []).map((a) => el("a", {
      href: `/api/v1/attachments/${a.id}`, download: a.filename, class: "attachment" },
      a.preview ? el("img", { src: `/api/v1/attachments/${a.id}/preview`, alt: "",
        class: "thumb", loading: "lazy", width: 64, height: 64 }) : null,
      `${a.filename} (${a.content_type})`));
    list.append(el("li", { class: `msg ${m.direction}`, dataset: { message: m.id } }, head, body,
      files.length ? el("div", { class: "files" }, files) : null));
  }
  list.lastElementChild?.scrollIntoView({ block: "end" });
}

function money(value, currency) {
  return value === null || value === undefined ? "•••" : `${value} ${currency || ""}`.trim();
}

// The channels a reply can take: the ticket's own, and those the customer has an address for.
function renderChannels(ticket, customer) {
  const kinds = new Set((customer.identities || []).map((i) => i.kind));
  const options = [ticket.channel];
  if (kinds.has("email") && !options.includes("email")) options.push("email");
  if (kinds.has("phone") && !options.includes("sms")) options.push("sms");
  const select = clear($("reply-channel"));
  select.append(...options.map((c) => el("option", { value: c === ticket.channel ? "" : c }, c)));
}

async function mergeCustomer(customer) {
  const answer = window.prompt(t("Merge which customer (id) into {name}?", { name: customer.name || customer.id }));
  const other = Number(answer);
  if (!answer || !Number.isInteger(other) || other <= 0) return;
  try {
    await api("POST", `/api/v1/customers/${customer.id}/merge`, { merged_id: other });
    await reload();
  } catch (err) { showError(err); }
}

function renderCustomer({ customer, history, can_merge_customers: canMerge,
  can_edit_customers: canEdit }) {
  const focusedId = document.activeElement?.closest("#customer-body") ? document.activeElement.id : undefined;
  const box = clear($("customer-body"));
  box.append(...[
    canMerge ? el("button", { type: "button", id: "customer-merge", class: "small",
      onclick: () => mergeCustomer(customer) }, t("Merge a duplicate…")) : null,
    el("p", { class: "cust-name" }, customer.name || t("(no name)"),
      customer.language ? el("span", { class: "muted" }, ` · ${customer.language}`) : null),
    identityBlock(customer, { canEdit: !!canEdit, canMerge: !!canMerge, onChange: () => reload(),
      focusedId }),
    customer.organisation ? el("p", {}, t("Organisation: {name}", { name: customer.organisation.name || customer.organisation })) : null,
    el("p", { id: "tier" }, t("Tier: {tier}", { tier: customer.value_tier || "—" })),
    el("p", { id: "ltv" }, t("Lifetime value: {value}", { value: money(customer.lifetime_value) })),
    el("h4", {}, t("Contracts")),
    el("ul", { id: "contracts" }, (customer.contracts || []).map((c) =>
      el("li", { class: `contract ${c.status}` }, `${c.level} · ${c.status} · ${c.starts_on} → ${c.ends_on}`,
        ` · ${money(c.value, c.currency)}`))),
    el("h4", {}, t("Purchases")),
    el("ul", { id: "purchases" }, (customer.purchases || []).slice(0, 10).map((p) =>
      el("li", {}, `${p.product?.name || p.product || p.sku || ""} · ${when(p.purchased_at)} · ${money(p.amount, p.currency)}`))),
  ].filter(Boolean));
  const list = clear($("history"));
  for (const h of history) {
    list.append(el("li", {}, el("a", { href: `#ticket-${h.number}`,
      onclick: (e) => { e.preventDefault(); open(h.number); } }, `#${h.number} ${h.subject}`),
    el("span", { class: "muted" }, ` · ${h.channels.join(", ")} · ${h.status} · ${when(h.created_at)}`)));
  }
}

async function loadCanned() {
  const data = await api("GET", `/desk/api/tickets/${state.number}/canned`).catch(() => ({ items: [] }));
  const select = clear($("canned"));
  select.append(el("option", { value: "" }, t("Canned response…")),
    ...data.items.map((c) => el("option", { value: c.id, dataset: { text: c.text } }, `${c.shortcut} · ${c.title}`)));
}

async function loadAssist() {
  const number = state.number;
  const data = await api("GET", `/desk/api/tickets/${number}/assist`).catch(() => null);
  if (!data || number !== state.number) return;
  renderClocks(data.sla);
  renderSuggestions(data.knowledge);
  renderOffers(data.offers);
  if (data.value?.ok && data.value.data) {
    const v = data.value.data;
    $("tier").textContent = t("Tier: {tier}", { tier: v.tier || "—" }) + (v.reason ? ` · ${v.reason}` : "");
  }
}

function unavailable(list, panel) {
  list.append(el("li", { class: "muted" }, panel?.error || t("unavailable")));
}

function renderClocks(panel) {
  const list = clear($("sla"));
  if (!panel?.ok) return unavailable(list, panel);
  const { clocks, entitlement } = panel.data;
  const line = typeof entitlement === "string" ? entitlement : entitlement?.text;
  if (line) list.append(el("li", { class: `entitlement ${entitlement?.state || ""}` }, line));
  for (const c of clocks || []) {
    list.append(el("li", { class: "clock", dataset: { due: c.due_at || "", warn: c.warn_at || "", met: c.met_at || "", paused: c.paused ? "1" : "" } },
      el("span", { class: "clock-kind" }, c.kind), " ", el("span", { class: "clock-left" }, "")));
  }
  tickClocks();
}

function tickClocks() {
  const now = Date.now();
  for (const li of document.querySelectorAll("#sla li.clock")) {
    const { due, warn, met, paused } = li.dataset;
    const label = li.querySelector(".clock-left");
    if (met) { li.dataset.state = "met"; label.textContent = t("met"); continue; }
    if (paused) { li.dataset.state = "paused"; label.textContent = t("paused"); continue; }
    if (!due) continue;
    const dueAt = new Date(due).getTime();
    li.dataset.state = now >= dueAt ? "red" : (warn && now >= new Date(warn).getTime()) ? "amber" : "green";
    label.textContent = left(due, now);
  }
}

function renderSuggestions(panel) {
  const list = clear($("suggestions"));
  if (!panel?.ok) return unavailable(list, panel);
  const items = Array.isArray(panel.data) ? panel.data : (panel.data?.results || panel.data?.items || []);
  if (!items.length) list.append(el("li", { class: "muted" }, t("No suggestions yet.")));
  for (const a of items) {
    list.append(el("li", { class: "suggestion" },
      el("strong", {}, a.title), a.snippet ? el("p", { class: "muted" }, a.snippet) : null,
      el("button", { type: "button", class: "insert", onclick: () => useArticle(a, "answer") }, t("Insert answer")),
      el("button", { type: "button", onclick: () => useArticle(a, "link") }, t("Insert link"))));
  }
}

// Inserting an article records its use (the first-contact-resolution signal) and gives
// back the text or the public link to insert.
async function useArticle(article, kind) {
  try {
    const used = await api("POST", endpoints.articleUse(state.number),
      { article_id: article.id, kind });
    insert(kind === "link" ? (used.link || used.title) : (used.text || used.title));
  } catch (err) { showError(err); }
}

function renderOffers(panel) {
  const list = clear($("offers"));
  if (!panel?.ok) return unavailable(list, panel);
  const items = Array.isArray(panel.data) ? panel.data : (panel.data?.offers || panel.data?.items || []);
  if (!items.length) list.append(el("li", { class: "muted" }, t("Nothing to offer.")));
  for (const o of items) {
    const id = o.id ?? o.offer_id;
    list.append(el("li", { class: "offer", dataset: { offer: id } },
      el("strong", {}, o.product?.name || o.title || ""),
      el("p", { class: "script" }, o.script || ""),
      el("p", { class: "muted" }, o.reason || ""),
      ...["accepted", "declined", "not_relevant"].map((outcome) => el("button", {
        type: "button", class: `outcome ${outcome}`,
        onclick: async (e) => {
          try {
            await api("POST", endpoints.offerOutcome(id), { outcome });
            e.target.closest("li").replaceChildren(el("span", { class: "muted" }, t("Recorded: {outcome}", { outcome: t(outcome) })));
          } catch (err) { showError(err); }
        } }, t(outcome)))));
  }
}
