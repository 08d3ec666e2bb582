// The desk's live connection: join, keep a cursor, replay on reconnect, reload on resync.
const desk = document.getElementById("desk");
const live = document.getElementById("live");
const list = document.getElementById("events");
let cursor = Number(desk.dataset.cursor || 0);

function show(state, text) {
  live.dataset.state = state;
  live.textContent = text;
}

function apply(event) {
  if (event.id <= cursor) return;            // replay and live delivery may overlap
  cursor = event.id;
  const item = document.createElement("li");
  item.textContent = `${event.type} #${event.payload.number ?? ""} ${event.payload.subject ?? ""}`;
  list.prepend(item);
  while (list.children.length > 50) list.lastElementChild.remove();
}

const socket = io("/agent", { transports: ["websocket"] });
socket.on("connect", async () => {
  const answer = await socket.emitWithAck("resume", { cursor });
  if (answer.resync_required) { window.location.reload(); return; }
  (answer.events || []).forEach(apply);
  show("live", "live");
});
socket.on("disconnect", () => show("offline", "reconnecting…"));
socket.on("connect_error", (err) => show("offline", `offline: ${err.message}`));
socket.on("event", apply);
