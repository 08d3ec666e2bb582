// Live field events over the /agent namespace: resume from a cursor, replay, resync.
// onChange(event) runs for every field.* event in id order; onResync() when the log is too old.

export function connectLive(root, onChange, onResync) {
  let cursor = Number(root.dataset.cursor || 0);
  const badge = document.getElementById("live");
  const show = (state, text) => { badge.dataset.state = state; badge.textContent = text; };
  // eslint-disable-next-line no-undef
  const socket = io("/agent", { transports: ["websocket"] });
  window.fieldSocket = socket;  // for diagnostics and the browser tests
  function apply(event) {
    if (event.id <= cursor) return;  // replay and live delivery may overlap
    cursor = event.id;
    if (event.type.startsWith("field.")) onChange(event);
  }
  socket.on("connect", async () => {
    const answer = await socket.emitWithAck("resume", { cursor });
    if (answer.resync_required) {
      cursor = answer.last_event_id;
      onResync();
    } else {
      (answer.events || []).forEach(apply);
    }
    show("live", "live");
  });
  socket.on("disconnect", () => show("offline", "reconnecting…"));
  socket.on("connect_error", (err) => show("offline", `offline: ${err.message}`));
  socket.on("event", apply);
  return socket;
}

export function apiClient(root) {
  const csrf = root.dataset.csrf;
  return async function api(method, url, body) {
    const options = { method, credentials: "same-origin", headers: { "X-CSRFToken": csrf } };
    if (body instanceof FormData) options.body = body;
    else if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const res = await fetch(url, options);
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.error || `${res.status}`);
    return data;
  };
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

export function when(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit", timeZone: "UTC" }) + " UTC";
}
