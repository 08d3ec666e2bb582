// Article suggestions on the agent desk: a list for the open ticket with one-click insert.
//
// Usage (from the desk):
//   import { mountSuggestions } from "/static/knowledge/desk_suggestions.js";
//   const kb = mountSuggestions({ container, replyBox, csrf });
//   kb.show(ticketNumber);            // on opening a ticket, and on "kb.suggestions_ready"
//   kb.live(text, lang);              // optional: suggestions for text being typed
// Inserting records the use (POST /api/v1/tickets/<n>/kb-uses), which feeds first-contact
// resolution per article. Titles are set with textContent: nothing here is parsed as HTML.

export function mountSuggestions({ container, replyBox, csrf }) {
  let current = null;

  async function api(url, options = {}) {
    const response = await fetch(url, {
      credentials: "same-origin",
      ...options,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, ...(options.headers || {}) },
    });
    if (!response.ok) throw new Error(`${response.status} ${url}`);
    return response.json();
  }

  function insert(text) {
    const start = replyBox.selectionStart ?? replyBox.value.length;
    const end = replyBox.selectionEnd ?? start;
    replyBox.value = replyBox.value.slice(0, start) + text + replyBox.value.slice(end);
    replyBox.focus();
    replyBox.dispatchEvent(new Event("input", { bubbles: true }));
  }

  async function use(article, kind) {
    const used = await api(`/api/v1/tickets/${current}/kb-uses`, {
      method: "POST", body: JSON.stringify({ article_id: article.id, kind }),
    });
    insert(kind === "link" && used.link ? `${used.title}: ${used.link}` : used.text || used.title);
  }

  function render(results) {
    container.replaceChildren();
    if (!results.length) {
      const empty = document.createElement("p");
      empty.textContent = "No suggested articles.";
      container.append(empty);
      return;
    }
    const list = document.createElement("ol");
    for (const article of results) {
      const item = document.createElement("li");
      item.dataset.article = article.id;
      const title = document.createElement("span");
      title.textContent = article.title;
      item.append(title);
      for (const [kind, label] of [["answer", "Insert answer"], ["link", "Insert link"]]) {
        if (kind === "link" && article.visibility !== "public") continue;
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = label;
        button.addEventListener("click", () => use(article, kind).catch(console.warn));
        item.append(" ", button);
      }
      list.append(item);
    }
    container.append(list);
  }

  return {
    async show(ticketNumber) {
      current = ticketNumber;
      const data = await api(`/api/v1/tickets/${ticketNumber}/suggestions`);
      if (current === ticketNumber) render(data.results);
    },
    async live(text, lang) {
      const params = new URLSearchParams({ text: text.slice(0, 4000) });
      if (lang) params.set("lang", lang);
      render((await api(`/api/v1/kb/suggest?${params}`)).results);
    },
  };
}
