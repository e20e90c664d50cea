// Live perspectives on a thread page. The socket only says "there is something new"; the page
// then fetches the server-rendered perspectives newer than the last one it shows, so the HTML is
// always rendered (and sanitised) by the server and a missed message is caught up on reconnect.

const list = document.querySelector("#replies[data-live]");

if (list) {
  const status = document.getElementById("live-status");
  const afterUrl = list.dataset.afterUrl;
  let retry = 1000;
  let fetching = Promise.resolve();

  const lastId = () => {
    const items = list.querySelectorAll("[data-reply-id]");
    return items.length ? items[items.length - 1].dataset.replyId : "0";
  };

  const catchUp = () => {
    fetching = fetching.then(async () => {
      const response = await fetch(`${afterUrl}?after=${encodeURIComponent(lastId())}`, {
        headers: { "HX-Request": "true" },
        credentials: "same-origin",
      });
      if (!response.ok) return;
      const template = document.createElement("template");
      template.innerHTML = await response.text();
      let added = 0;
      for (const article of template.content.querySelectorAll("article[data-reply-id]")) {
        if (!document.getElementById(article.id)) {
          list.append(article);
          added += 1;
        }
      }
      if (added) {
        document.getElementById("no-replies")?.remove();
        status.textContent = added === 1 ? "A new perspective was added." : `${added} new perspectives were added.`;
        if (window.htmx) window.htmx.process(list);
      }
    }).catch(() => {});
    return fetching;
  };

  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}${list.dataset.wsPath}`);
    socket.addEventListener("open", () => {
      retry = 1000;
      catchUp();
    });
    socket.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      if (message.type === "reply.created") {
        catchUp().then(() => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify({ type: "read" })));
      }
    });
    socket.addEventListener("close", (event) => {
      if (event.code === 4403) return; // not (or no longer) a member: nothing more to hear
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    });
  };

  connect();
}
