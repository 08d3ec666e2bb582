// The phone on the agent desktop: the Twilio Voice SDK softphone, its status line and click
// to call. An offered call pops on the desk's own offer card (desk.js) like every other kind
// of work; accepting it there makes the server bridge the caller to this softphone.
//
// mount(container, ctx) -> { call, unmount }
//   container  an element the phone renders its status line into
//   ctx        { socket, ticket, csrfToken, me }: the desk's Socket.IO connection to /agent,
//              the open ticket ({number} or null, for click to call) and the CSRF token.
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
  container.append(status);
  let device = null;
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
      if (device) device.destroy();
      container.replaceChildren();
    },
  };
}
