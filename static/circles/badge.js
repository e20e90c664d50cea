// The unread-notifications badge in the navigation: the server pushes the count over a WebSocket
// after every change. Without JavaScript the link still works; the page shows what is unread.
const badge = document.querySelector("[data-notification-badge]");

function show(count) {
  badge.querySelector("[data-count]").textContent = String(count);
  badge.hidden = count === 0;
}

function connect(delay) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}/ws/notifications/`);
  socket.addEventListener("open", () => { delay = 1000; });
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "badge") show(message.count);
  });
  socket.addEventListener("close", (event) => {
    // 4401: signed out, nothing to wait for. Otherwise try again, more slowly each time.
    if (event.code !== 4401) window.setTimeout(() => connect(Math.min(delay * 2, 60000)), delay);
  });
}

if (badge) connect(1000);
