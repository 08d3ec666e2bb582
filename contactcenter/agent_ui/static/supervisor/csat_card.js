// The agent's own satisfaction scores, for the desk.
//
// mount(container, ctx): ctx is {socket, ticket, csrfToken}. Shows the agent's average and
// latest comments over 30 days (GET /api/v1/csat/me) and refreshes when a "csat.answered"
// event reaches the agent's room through ctx.socket. Returns an unmount function.
export function mount(container, ctx = {}) {
  const box = document.createElement("section");
  box.className = "sv-csat-card";
  container.append(box);
  async function load() {
    const response = await fetch("/api/v1/csat/me", { credentials: "same-origin" });
    if (!response.ok) return;
    const data = await response.json();
    const title = document.createElement("h3");
    title.textContent = data.average === null ? "No satisfaction scores yet"
      : `Satisfaction ${data.average.toFixed(2)} / 5 (${data.responses} answers, 30 days)`;
    const list = document.createElement("ul");
    for (const r of data.latest.slice(0, 5)) {
      const item = document.createElement("li");
      item.textContent = `#${r.ticket}: ${r.score}/5${r.comment ? ` “${r.comment}”` : ""}`;
      list.append(item);
    }
    box.replaceChildren(title, list);
  }
  const onEvent = (event) => { if (event && event.type === "csat.answered") load(); };
  if (ctx.socket) ctx.socket.on("event", onEvent);
  load();
  return () => { if (ctx.socket) ctx.socket.off("event", onEvent); box.remove(); };
}
