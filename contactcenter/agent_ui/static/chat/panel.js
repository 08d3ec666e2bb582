// The agent's chat panel: mount(container, ctx) with ctx = {socket, ticket, csrfToken, chatId?}.
//
// ctx.socket is the desk's /agent Socket.IO socket; ctx.ticket is {id} (or pass
// ctx.chatId). The panel shows the visitor (name, e-mail, whether the site proved who
// they are, the page they are on) and their earlier tickets, the live conversation with
// typing indicators and read receipts, and a composer with canned responses and
// knowledge inserts; it can end or transfer the chat. Everything a visitor typed is
// inserted as text, never as HTML. Returns {unmount()}.

const CANNED = [
  'Hello! How can I help you today?',
  'Let me check that for you; one moment please.',
  'Is there anything else I can help you with?',
  'Thank you for chatting with us. Have a good day!',
];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

function call(socket, event, payload) {
  return new Promise((resolve) => socket.timeout(8000).emit(event, payload, (err, answer) => resolve(err ? { error: 'timeout' } : answer)));
}

export async function mount(container, ctx) {
  const { socket } = ctx;
  const query = ctx.chatId ? { chat_id: ctx.chatId } : { ticket_id: ctx.ticket && ctx.ticket.id };
  const view = await call(socket, 'chat_open', query);
  container.replaceChildren();
  if (view.error) { container.append(el('p', { class: 'error', role: 'alert', text: view.error })); return { unmount() {} }; }
  const chatId = view.chat_id;
  const shown = new Set();
  let lastVisitorId = 0;
  const visitor = view.visitor;
  const info = el('dl', { class: 'chat-visitor' },
    el('dt', { text: 'Visitor' }), el('dd', { text: (visitor.name || 'Anonymous visitor') + (visitor.identified ? ' (verified)' : ' (not verified)') }),
    el('dt', { text: 'E-mail (as typed)' }), el('dd', { text: visitor.email || '—' }),
    el('dt', { text: 'Topic' }), el('dd', { text: visitor.topic || '—' }),
    el('dt', { text: 'Page' }), el('dd', { class: 'chat-page', text: (visitor.page_title ? visitor.page_title + ' — ' : '') + (visitor.page_url || '—') }));
  const history = el('ul', { class: 'chat-history', 'aria-label': 'Earlier tickets' },
    ...view.history.map((t) => el('li', { text: '#' + t.number + ' ' + t.subject + ' (' + t.channel + ', ' + t.status + ')' })));
  const state = el('p', { class: 'chat-state', role: 'status', text: 'Chat ' + view.state });
  const list = el('ol', { class: 'chat-messages', 'aria-live': 'polite', 'aria-label': 'Chat conversation' });
  const typingNote = el('p', { class: 'chat-typing', 'aria-live': 'polite' });
  const input = el('textarea', { class: 'chat-input', rows: '3', 'aria-label': 'Reply to the visitor' });
  const canned = el('select', { class: 'chat-canned', 'aria-label': 'Canned responses' }, el('option', { value: '', text: 'Canned responses…' }),
    ...CANNED.map((c) => el('option', { value: c, text: c })));
  const articles = el('ul', { class: 'chat-articles', 'aria-label': 'Knowledge articles' });
  const suggestBtn = el('button', { type: 'button', class: 'chat-suggest', text: 'Find articles' });
  const send = el('button', { type: 'submit', class: 'chat-send', text: 'Send' });
  const end = el('button', { type: 'button', class: 'chat-end', text: 'End chat' });
  const transferTo = el('input', { type: 'number', class: 'chat-transfer-agent', 'aria-label': 'Transfer to agent id', min: '1' });
  const transfer = el('button', { type: 'button', class: 'chat-transfer', text: 'Transfer' });
  const error = el('p', { class: 'error', role: 'alert' });
  const form = el('form', { class: 'chat-composer' }, canned, input, send);
  container.append(el('section', { class: 'chat-panel', 'aria-label': 'Live chat' }, info, history, state, list, typingNote, form,
    el('div', { class: 'chat-tools' }, suggestBtn, articles, transferTo, transfer, end), error));

  function add(m) {
    if (!m || shown.has(m.message_id)) return;
    shown.add(m.message_id);
    const who = m.from === 'visitor' ? (visitor.name || 'Visitor') : m.from === 'agent' ? (m.author || 'Agent') : 'Notice';
    const item = el('li', { class: 'chat-msg ' + m.from, 'data-message-id': String(m.message_id || '') },
      el('strong', { text: who + ': ' }), el('span', { class: 'text', text: m.text || '' }));
    for (const a of m.attachments || []) item.append(el('span', { class: 'file', text: ' [file: ' + a.name + ']' }));
    list.append(item);
    if (m.from === 'visitor' && m.message_id > lastVisitorId) { lastVisitorId = m.message_id; call(socket, 'chat_read', { chat_id: chatId, message_id: lastVisitorId }); }
  }
  view.messages.forEach(add);
  if (view.state === 'ended') { form.remove(); end.remove(); transfer.remove(); transferTo.remove(); }

  let typingTimer = null; let typingSent = false;
  function typing(on) {
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(() => typing(false), 2000);
    if (on === typingSent) return;
    typingSent = on;
    socket.emit('chat_typing', { chat_id: chatId, typing: on });
  }
  input.addEventListener('input', () => typing(true));
  canned.addEventListener('change', () => { if (canned.value) { input.value = (input.value ? input.value + ' ' : '') + canned.value; canned.value = ''; input.focus(); } });
  suggestBtn.addEventListener('click', async () => {
    const answer = await call(socket, 'chat_suggest', { text: view.messages.filter((m) => m.from === 'visitor').map((m) => m.text).join('\n') });
    articles.replaceChildren(...(answer.articles || []).map((a) => {
      const b = el('button', { type: 'button', text: 'Insert: ' + a.title });
      b.addEventListener('click', () => { input.value = (input.value ? input.value + '\n' : '') + a.title + ': ' + a.url; });
      return el('li', {}, b);
    }));
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    const answer = await call(socket, 'chat_send', { chat_id: chatId, text });
    if (answer.error) { error.textContent = answer.error; return; }
    input.value = ''; typing(false);
    add({ message_id: answer.message_id, from: 'agent', author: 'You', text });
  });
  end.addEventListener('click', async () => { const a = await call(socket, 'chat_end', { chat_id: chatId }); if (a.error) error.textContent = a.error; });
  transfer.addEventListener('click', async () => {
    const a = await call(socket, 'chat_transfer', { chat_id: chatId, agent_id: Number(transferTo.value) });
    error.textContent = a.error || '';
  });

  function onEvent(envelope) {
    const p = envelope.payload || {};
    if (p.chat_id !== chatId) return;
    if (envelope.type === 'chat.message') add(p.visitor);
    else if (envelope.type === 'chat.read' && p.side === 'visitor') {
      list.querySelectorAll('li.agent').forEach((li) => { if (Number(li.dataset.messageId) <= p.message_id) li.classList.add('read'); });
      state.textContent = 'Visitor read your messages';
    } else if (envelope.type === 'chat.ended') { state.textContent = 'Chat ended'; form.remove(); end.remove(); transfer.remove(); transferTo.remove(); }
    else if (envelope.type === 'chat.agent_joined') state.textContent = 'Chat active';
    else if (envelope.type === 'chat.warning') add({ message_id: 'n' + envelope.id, from: 'system', text: p.text });
  }
  function onTyping(d) { if (d.chat_id === chatId) typingNote.textContent = d.typing ? 'Visitor is typing…' : ''; }
  socket.on('event', onEvent);
  socket.on('chat_typing', onTyping);
  return { unmount() { socket.off('event', onEvent); socket.off('chat_typing', onTyping); container.replaceChildren(); } };
}
