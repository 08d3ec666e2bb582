// The embeddable chat widget: one <script src=".../chat/widget.js" defer> on any allowed site.
//
// It draws a launcher and a dialog in a shadow root (styles from widget.css), talks to
// the /visitor Socket.IO namespace with a signed visitor token kept in localStorage,
// and never renders what anyone typed as HTML (textContent only). Messages get a client
// id and wait in a local outbox until the server acknowledges them; after a reconnect
// the widget fetches what it missed (resume) and resends the outbox: the server drops
// the duplicates by client id.
(function () {
  'use strict';
  const script = document.currentScript;
  if (!script || window.__ccChatWidget) return;
  window.__ccChatWidget = true;
  const base = new URL(script.src, location.href).origin;
  const data = script.dataset;
  const KEY = 'cc-chat:' + base;
  const store = {
    get(name, fallback) {
      try { return JSON.parse(localStorage.getItem(KEY + ':' + name)) ?? fallback; } catch (e) { return fallback; }
    },
    set(name, value) { try { localStorage.setItem(KEY + ':' + name, JSON.stringify(value)); } catch (e) { /* private mode */ } },
  };
  const uid = () => (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c) node.append(c);
    return node;
  }

  const host = el('div', { id: 'cc-chat-widget' });
  document.body.append(host);
  const root = host.attachShadow({ mode: 'open' });
  root.append(el('link', { rel: 'stylesheet', href: base + '/static/chat/widget.css' }));
  const launcher = el('button', { class: 'launcher', type: 'button', 'aria-expanded': 'false', 'aria-controls': 'cc-dialog', text: 'Chat with us' });
  const dialog = el('section', { id: 'cc-dialog', class: 'dialog', role: 'dialog', 'aria-label': 'Chat with support', hidden: '' });
  const status = el('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const body = el('div', { class: 'body' });
  const closeBtn = el('button', { type: 'button', class: 'close', 'aria-label': 'Close the chat window', text: '×' });
  dialog.append(el('header', {}, el('h2', { text: 'Support' }), closeBtn), status, body);
  root.append(launcher, dialog);
  launcher.addEventListener('click', () => toggle(dialog.hidden));
  closeBtn.addEventListener('click', () => toggle(false));

  let socket = null;
  let state = { chat: null, lastId: 0, agentRead: 0, prechat: [], available: false, ended: false };
  const shown = new Set();
  let outbox = store.get('outbox', []);
  let messagesList = null;
  let typingNote = null;
  let typingTimer = null;
  let typingSent = false;

  function toggle(open) {
    dialog.hidden = !open;
    launcher.setAttribute('aria-expanded', String(open));
    if (open) { connect(); const f = dialog.querySelector('textarea, input'); if (f) f.focus(); markRead(); }
  }

  function loadClient() {
    if (window.io) return Promise.resolve(window.io);
    return new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = base + '/vendor/socket.io.min.js';
      s.onload = () => resolve(window.io);
      s.onerror = reject;
      document.head.append(s);
    });
  }

  function call(event, payload, timeout = 8000) {
    return new Promise((resolve) => {
      if (!socket || !socket.connected) { resolve({ error: 'offline' }); return; }
      socket.timeout(timeout).emit(event, payload, (err, answer) => resolve(err ? { error: 'timeout' } : answer));
    });
  }

  async function connect() {
    if (socket) return;
    const io = await loadClient();
    socket = io(base + '/visitor', {
      transports: ['websocket'],
      auth: (cb) => cb({ token: store.get('token', null), user_id: data.userId || null, user_hash: data.userHash || null,
        page_url: location.href.slice(0, 2000), page_title: document.title.slice(0, 300), language: document.documentElement.lang || null }),
    });
    socket.on('connect', onConnected);
    socket.on('disconnect', () => { status.textContent = 'Reconnecting…'; host.dataset.connected = 'false'; });
    socket.on('connect_error', () => { status.textContent = 'Cannot reach support right now; retrying…'; });
    socket.on('chat_event', onEvent);
    socket.on('typing', (d) => { if (state.chat && d.chat_id === state.chat) showTyping(d.typing); });
  }

  async function onConnected() {
    host.dataset.connected = 'true';
    const hello = await call('hello', {});
    if (hello.error) { status.textContent = hello.error; return; }
    store.set('token', hello.token);
    state.prechat = hello.prechat || [];
    state.available = hello.available;
    status.textContent = '';
    if (hello.chat) {
      state.chat = hello.chat.chat_id;
      if (!messagesList) renderConversation();
      applyView(hello.chat);
      await flushOutbox();
    } else if (!state.chat || state.ended) {
      if (state.ended) return;
      if (hello.available) renderPrechat(); else renderOffline(hello.reason);
    }
  }

  // --- pre-chat, with article suggestions while the first message is typed -----------
  function fieldInput(spec) {
    const id = 'cc-f-' + spec.name;
    const label = el('label', { for: id, text: spec.name[0].toUpperCase() + spec.name.slice(1) + (spec.required ? ' *' : '') });
    let input;
    if (spec.type === 'select') {
      input = el('select', { id, name: spec.name }, el('option', { value: '', text: '—' }), ...spec.options.map((o) => el('option', { value: o, text: o })));
    } else {
      input = el('input', { id, name: spec.name, type: spec.type === 'email' ? 'email' : 'text', autocomplete: spec.type === 'email' ? 'email' : 'name' });
    }
    if (spec.required) input.setAttribute('aria-required', 'true');
    const error = el('span', { class: 'error', id: id + '-error', 'aria-live': 'polite' });
    input.setAttribute('aria-describedby', id + '-error');
    return el('div', { class: 'field' }, label, input, error);
  }

  function renderPrechat() {
    body.replaceChildren();
    const form = el('form', { class: 'prechat', novalidate: '' });
    for (const spec of state.prechat) form.append(fieldInput(spec));
    const text = el('textarea', { id: 'cc-first', name: 'text', rows: '3', 'aria-label': 'Your question', placeholder: 'How can we help?' });
    const articles = el('ul', { class: 'articles', 'aria-label': 'Articles that may answer your question' });
    const formError = el('p', { class: 'error', role: 'alert' });
    form.append(el('div', { class: 'field' }, el('label', { for: 'cc-first', text: 'Your question' }), text), articles,
      el('button', { type: 'submit', class: 'primary', text: 'Start chat' }), formError);
    let timer = null;
    text.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const answer = await call('suggest', { text: text.value });
        articles.replaceChildren(...(answer.articles || []).map((a) => el('li', {},
          el('a', { href: a.url, target: '_blank', rel: 'noopener', text: a.title }))));
      }, 300);
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const prechat = {};
      for (const spec of state.prechat) prechat[spec.name] = form.elements[spec.name].value;
      const clientId = uid();
      const answer = await call('start', { prechat, text: text.value, client_id: clientId, page_url: location.href.slice(0, 2000) });
      form.querySelectorAll('.error').forEach((e) => { e.textContent = ''; });
      if (answer.error) {
        if (answer.fields) {
          for (const [name, msg] of Object.entries(answer.fields)) {
            const e = root.getElementById('cc-f-' + name + '-error'); if (e) e.textContent = msg;
          }
        } else { formError.textContent = answer.error === 'rate_limited' ? 'Please slow down.' : answer.error; }
        return;
      }
      state.chat = answer.chat_id;
      renderConversation();
      addMessage({ message_id: answer.message_id, client_id: clientId, from: 'visitor', text: text.value, attachments: [] });
      showPosition(answer.position);
    });
    body.append(form);
  }

  function renderOffline(reason) {
    body.replaceChildren();
    const why = reason === 'closed_hours' ? 'We are closed right now.' : 'No one is available to chat right now.';
    const form = el('form', { class: 'offline', novalidate: '' });
    const done = el('p', { class: 'done', role: 'status' });
    form.append(el('p', { text: why + ' Leave a message and we will answer by e-mail.' }),
      fieldInput({ name: 'name', type: 'text' }), fieldInput({ name: 'email', type: 'email', required: true }),
      el('div', { class: 'field' }, el('label', { for: 'cc-f-text', text: 'Message *' }), el('textarea', { id: 'cc-f-text', name: 'text', rows: '4' }),
        el('span', { class: 'error', id: 'cc-f-text-error' })),
      el('button', { type: 'submit', class: 'primary', text: 'Send message' }), done);
    const clientId = uid();
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const answer = await call('offline', { client_id: clientId, name: form.elements.name.value, email: form.elements.email.value, text: form.elements.text.value });
      form.querySelectorAll('.error').forEach((e) => { e.textContent = ''; });
      if (answer.fields) {
        for (const [name, msg] of Object.entries(answer.fields)) { const e = root.getElementById('cc-f-' + name + '-error'); if (e) e.textContent = msg; }
        return;
      }
      if (answer.error) { done.textContent = answer.error; return; }
      form.replaceChildren(el('p', { class: 'done', role: 'status', text: 'Thank you. Your request number is #' + answer.ticket + '.' }));
    });
    body.append(form);
  }

  // --- the conversation ---------------------------------------------------------------
  function renderConversation() {
    body.replaceChildren();
    messagesList = el('ol', { class: 'messages', 'aria-live': 'polite', 'aria-label': 'Conversation' });
    typingNote = el('p', { class: 'typing', 'aria-live': 'polite' });
    const input = el('textarea', { id: 'cc-input', rows: '2', 'aria-label': 'Type your message' });
    const send = el('button', { type: 'submit', class: 'primary', text: 'Send' });
    const file = el('input', { type: 'file', id: 'cc-file', 'aria-label': 'Attach a file' });
    const end = el('button', { type: 'button', class: 'end', text: 'End chat' });
    const form = el('form', { class: 'composer' }, input, send);
    form.addEventListener('submit', (ev) => { ev.preventDefault(); const t = input.value; if (!t.trim()) return; input.value = ''; sendMessage(t); typing(false); });
    input.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); } });
    input.addEventListener('input', () => typing(true));
    file.addEventListener('change', () => { if (file.files[0]) upload(file.files[0]); file.value = ''; });
    end.addEventListener('click', async () => { await call('end', { chat_id: state.chat }); });
    body.append(messagesList, typingNote, form, el('div', { class: 'tools' }, el('label', { for: 'cc-file', class: 'attach', text: 'Attach a file' }), file, end));
  }

  function addMessage(m) {
    if (!messagesList) renderConversation();
    const key = m.message_id ? 'm' + m.message_id : 'c' + m.client_id;
    if (shown.has(key) || (m.client_id && shown.has('c' + m.client_id))) {
      const existing = m.client_id && messagesList.querySelector('[data-client-id="' + CSS.escape(m.client_id) + '"]');
      if (existing && m.message_id) { existing.dataset.messageId = m.message_id; existing.classList.remove('pending'); shown.add('m' + m.message_id); }
      return;
    }
    if (m.message_id) shown.add('m' + m.message_id);
    if (m.client_id) shown.add('c' + m.client_id);
    const who = m.from === 'visitor' ? 'You' : m.from === 'agent' ? (m.author || 'Agent') : 'Notice';
    const item = el('li', { class: 'msg ' + m.from + (m.message_id ? '' : ' pending') },
      el('span', { class: 'who', text: who + ': ' }), el('span', { class: 'text', text: m.text || '' }));
    for (const a of m.attachments || []) item.append(el('span', { class: 'file', text: ' [file: ' + a.name + ']' }));
    if (m.message_id) item.dataset.messageId = m.message_id;
    if (m.client_id) item.dataset.clientId = m.client_id;
    if (m.from === 'visitor') item.append(el('span', { class: 'receipt', 'aria-label': 'read by the agent' }));
    messagesList.append(item);
    item.scrollIntoView({ block: 'end' });
    if (m.message_id && m.message_id > state.lastId) state.lastId = m.message_id;
    if (m.from === 'agent') { showTyping(false); markRead(); }
    updateReceipts();
  }

  function updateReceipts() {
    if (!messagesList) return;
    messagesList.querySelectorAll('li.visitor').forEach((li) => {
      const read = li.dataset.messageId && Number(li.dataset.messageId) <= state.agentRead;
      li.querySelector('.receipt').textContent = read ? ' ✓ Read' : '';
    });
  }

  function markRead() {
    if (!state.chat || dialog.hidden || !state.lastId) return;
    call('read', { chat_id: state.chat, message_id: state.lastId });
  }

  function showTyping(on) { if (typingNote) typingNote.textContent = on ? 'Agent is typing…' : ''; }
  function showPosition(position) { if (position) status.textContent = 'Waiting for an agent. You are number ' + position + ' in line.'; }

  function typing(on) {
    if (!state.chat) return;
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(() => typing(false), 2000);
    if (on === typingSent) return;
    typingSent = on;
    if (socket && socket.connected) socket.emit('typing', { chat_id: state.chat, typing: on });
  }

  function sendMessage(text) {
    const entry = { client_id: uid(), text, chat_id: state.chat };
    outbox.push(entry);
    store.set('outbox', outbox);
    addMessage({ client_id: entry.client_id, from: 'visitor', text, attachments: [] });
    deliver(entry);
  }

  async function deliver(entry) {
    const answer = await call('message', entry, 5000);
    if (answer.error === 'rate_limited') { status.textContent = 'You are sending messages too fast; it will be sent shortly.'; setTimeout(() => deliver(entry), (answer.retry_after || 5) * 1000); return; }
    if (answer.error === 'temporary_error' || answer.error === 'timeout') {
      // The server may have stored it: resending is safe (the client id makes it a duplicate).
      setTimeout(() => { if (socket && socket.connected) deliver(entry); }, 3000);
      return;
    }
    if (answer.error) return; // offline: resent on reconnect
    outbox = outbox.filter((e) => e.client_id !== entry.client_id);
    store.set('outbox', outbox);
    addMessage({ message_id: answer.message_id, client_id: entry.client_id, from: 'visitor', text: entry.text });
  }

  async function flushOutbox() {
    for (const entry of outbox.filter((e) => e.chat_id === state.chat)) {
      if (!shown.has('c' + entry.client_id)) addMessage({ client_id: entry.client_id, from: 'visitor', text: entry.text });
      await deliver(entry);
    }
  }

  async function upload(file) {
    const form = new FormData();
    form.append('token', store.get('token', ''));
    form.append('chat_id', state.chat);
    const clientId = uid();
    form.append('client_id', clientId);
    form.append('file', file);
    const response = await fetch(base + '/chat/upload', { method: 'POST', body: form });
    const answer = await response.json().catch(() => ({ error: 'upload failed' }));
    if (answer.error) { status.textContent = 'File not sent: ' + answer.error; return; }
    addMessage({ message_id: answer.message_id, client_id: clientId, from: 'visitor', text: '', attachments: [{ name: file.name }] });
  }

  function applyView(view) {
    state.agentRead = view.agent_read_id || state.agentRead;
    for (const m of view.messages || []) addMessage(m);
    if (view.state === 'waiting') showPosition(view.position);
    else if (view.state === 'active') status.textContent = (view.agent || 'An agent') + ' is chatting with you.';
    else if (view.state === 'ended') showEnded();
  }

  function showEnded() {
    state.ended = true;
    status.textContent = 'The chat has ended.';
    if (root.querySelector('.transcript')) return;
    const email = el('input', { type: 'email', id: 'cc-transcript', name: 'email', autocomplete: 'email' });
    const note = el('p', { class: 'done', role: 'status' });
    const form = el('form', { class: 'transcript' }, el('label', { for: 'cc-transcript', text: 'E-mail me the transcript' }), email,
      el('button', { type: 'submit', text: 'Send transcript' }), note);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const answer = await call('transcript', { chat_id: state.chat, email: email.value });
      note.textContent = answer.error ? answer.error : 'The transcript is on its way.';
    });
    const composer = root.querySelector('.composer'); if (composer) composer.remove();
    body.append(form);
  }

  function onEvent(event) {
    const p = event.payload || {};
    if (!state.chat || p.chat_id !== state.chat) return;
    switch (event.type) {
      case 'chat.message': addMessage(p); break;
      case 'chat.agent_joined': status.textContent = p.agent + ' joined the chat.'; break;
      case 'chat.transferred': status.textContent = 'Transferring you to a colleague…'; break;
      case 'chat.read': if (p.side === 'agent') { state.agentRead = Math.max(state.agentRead, p.message_id); updateReceipts(); } break;
      case 'chat.warning': addMessage({ from: 'system', text: p.text, client_id: 'n' + event.id }); break;
      case 'chat.ended': showEnded(); break;
      default: break;
    }
  }

  // While waiting, refresh the place in line; after a reconnect, fetch what was missed.
  setInterval(async () => {
    if (!state.chat || state.ended || !socket || !socket.connected) return;
    const view = await call('resume', { chat_id: state.chat, after: state.lastId });
    if (!view.error) applyView(view);
  }, 10000);
})();
