// The phone on the agent desktop: pops an offered call with the caller's story, accepts or
// declines it through the desk socket, and runs the Twilio Voice SDK softphone.
//
// mount(container, ctx) -> { unmount }
//   container  an element the phone renders into (a status line and the call pop-up)
//   ctx        { socket, ticket, csrfToken, me, popup }: the desk's Socket.IO connection to /agent
//              (its "event" envelopes carry offer.made / offer.* / call.*), the open ticket
//              ({number} or null, for click to call) and the CSRF token for API calls.
// The Voice SDK (window.Twilio.Device, from /vendor/twilio.min.js) is optional: without it,
// or without a token (503), calls are taken on the agent's forwarding number.

const api = (ctx, path, options = {}) => fetch(`/api/v1${path}`, {
  credentials: "same-origin",
  ...options,
  headers: { "Content-Type": "application/json", "X-CSRFToken": ctx.csrfToken || "",
             ...(options.headers || {}) },
});

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function card(data) {
  const customer = data.customer || {};
  const call = data.call || {};
  const history = el("ul", { class: "phone-history" },
    ...(data.history || []).map((t) => el("li", {},
      `#${t.number} ${t.subject} (${t.channel}, ${t.status})`)));
  return el("div", { class: "phone-card" },
    el("h3", { class: "phone-caller" }, customer.name || call.from || "Unknown caller"),
    el("p", { class: "phone-number" }, call.from || ""),
    el("p", { class: "phone-tier" }, `Tier ${customer.value_tier || "-"}`),
    el("p", { class: "phone-contract" }, data.contract
      ? `Contract ${data.contract.level} until ${data.contract.ends_on}` : "No active contract"),
    data.ticket ? el("p", { class: "phone-ticket" },
      `Ticket #${data.ticket.number}: ${data.ticket.subject}`) : null,
    call.ivr_choices ? el("p", { class: "phone-menu" }, `Menu: ${call.ivr_choices}`) : null,
    data.priority_reason ? el("p", { class: "phone-reason" }, data.priority_reason) : null,
    el("h4", {}, "History"), history);
}

async function startDevice(ctx, status) {
  if (!window.Twilio || !window.Twilio.Device) { status.textContent = "Phone: forwarding"; return null; }
  const answer = await api(ctx, "/phone/token");
  if (!answer.ok) { status.textContent = "Phone: forwarding"; return null; }
  const { token } = await answer.json();
  const device = new window.Twilio.Device(token, { closeProtection: true });
  device.on("registered", () => { status.textContent = "Phone: ready"; });
  device.on("error", (err) => { status.textContent = `Phone: ${err.message}`; });
  device.on("tokenWillExpire", async () => {
    const fresh = await api(ctx, "/phone/token");
    if (fresh.ok) device.updateToken((await fresh.json()).token);
  });
  // A bridged call rings the softphone: the agent already accepted the offer, so answer it.
  device.on("incoming", (call) => { call.accept(); status.textContent = "Phone: on a call"; });
  await device.register();
  return device;
}

export function mount(container, ctx) {
  const status = el("span", { class: "phone-status", role: "status" }, "Phone: starting");
  const popup = el("section", { class: "phone-popup", hidden: "", "aria-live": "assertive" });
  container.append(status, popup);
  let device = null;
  let offer = null;

  async function show(payload) {
    offer = payload;
    const answer = await api(ctx, `/phone/items/${payload.item_id}/caller`);
    if (!answer.ok || offer !== payload) return;
    const data = await answer.json();
    const accept = el("button", { class: "phone-accept", type: "button" }, "Accept");
    const decline = el("button", { class: "phone-decline", type: "button" }, "Decline");
    accept.addEventListener("click", () => respond("accept"));
    decline.addEventListener("click", () => respond("decline"));
    popup.replaceChildren(el("h2", {}, "Incoming call"), card(data), accept, decline);
    popup.hidden = false;
  }

  async function respond(answer) {
    if (!offer) return;
    const result = await ctx.socket.emitWithAck("offer", { offer_id: offer.offer_id, answer });
    popup.hidden = true;
    status.textContent = result && result.error ? `Phone: ${result.error}`
      : answer === "accept" ? "Phone: connecting…" : "Phone: ready";
    offer = null;
  }

  function onEvent(envelope) {
    const payload = envelope.payload || {};
    if (payload.kind !== "call") return;
    // Offers reach the whole queue's room: only the offered agent's phone pops.
    if (envelope.type === "offer.made" && ctx.me !== undefined && payload.agent_id !== ctx.me) return;
    if (envelope.type === "offer.made") show(payload);
    else if (offer && payload.item_id === offer.item_id &&
             ["offer.withdrawn", "offer.expired", "item.completed", "item.abandoned"]
               .includes(envelope.type)) {
      popup.hidden = true;
      offer = null;
    }
  }

  // The desk shows its own offer card for every kind of work; it mounts the phone with
  // popup: false for the device, its status line and click to call.
  if (ctx.popup !== false) ctx.socket.on("event", onEvent);
  startDevice(ctx, status).then((d) => { device = d; }).catch((err) => {
    status.textContent = `Phone: ${err.message}`;
  });

  return {
    // Click to call from the open ticket (the agent's phone rings first).
    async call(to) {
      if (!ctx.ticket) return null;
      const answer = await api(ctx, `/tickets/${ctx.ticket.number}/calls`,
                               { method: "POST", body: JSON.stringify(to ? { to } : {}) });
      return answer.json();
    },
    unmount() {
      ctx.socket.off("event", onEvent);
      if (device) device.destroy();
      container.replaceChildren();
    },
  };
}
