// Test page only: mount the chat panel on a bare page with its own /agent socket.
import { mount } from './panel.js';

const container = document.getElementById('chat-panel');
const socket = window.io('/agent', { transports: ['websocket'] });
socket.once('connect', () => {
  mount(container, { socket, chatId: container.dataset.chatId, csrfToken: container.dataset.csrf });
});
