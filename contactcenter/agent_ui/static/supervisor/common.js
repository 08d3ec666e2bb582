// Shared helpers of the supervisor pages: API calls with the CSRF header, the live socket.
const root = document.getElementById("sv");
export const csrfToken = root ? root.dataset.csrf : "";

export async function api(path, { method = "GET", body } = {}) {
  const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.headers["X-CSRFToken"] = csrfToken;
    options.body = JSON.stringify(body);
  }
  const response = await fetch(`/api/v1${path}`, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export function percent(value) {
  return value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)}%`;
}

// Connect to the /agent namespace (the supervisors room), replay from a cursor, and call
// onResync when the server says the cursor is too old (the page reloads its snapshot).
export function connectLive({ getCursor, onEvent, onResync }) {
  const live = document.getElementById("live");
  const show = (state, text) => { if (live) { live.dataset.state = state; live.textContent = text; } };
  const socket = io("/agent", { transports: ["websocket"] });
  socket.on("connect", async () => {
    const answer = await socket.emitWithAck("resume", { cursor: getCursor() });
    if (answer.resync_required) await onResync();
    else (answer.events || []).forEach(onEvent);
    show("live", "live");
  });
  socket.on("disconnect", () => show("offline", "reconnecting…"));
  socket.on("connect_error", (err) => show("offline", `offline: ${err.message}`));
  socket.on("event", onEvent);
  return socket;
}
