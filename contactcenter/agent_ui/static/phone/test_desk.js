// The test page's boot: connect the desk socket and mount the phone (tests only).
import { mount } from "./softphone.js";

const root = document.getElementById("phone");
const socket = io("/agent", { transports: ["websocket"] });
socket.on("connect", () => { root.dataset.connected = "yes"; });
mount(root, { socket, ticket: null, csrfToken: root.dataset.csrf });
