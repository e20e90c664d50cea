// The live session room. Protocol: docs/live-protocol.md.
//
// The server is the truth. We keep its state, apply its events strictly in seq order, ask for
// anything missing, and resend our own unacknowledged commands (same ids) after a reconnect; the
// server applies each id once, so a resend can never double an action.

const STATE_KEYS = ["round", "holder", "order", "spoken", "hands", "timer", "away", "moment",
  "status", "facilitator", "present", "messages"];
const SNAPSHOT_MESSAGES = 50;
const FINAL_CLOSES = {
  4401: "You have been signed out. Sign in again to come back to the room.",
  4403: "You are no longer in this circle, so the room has closed for you.",
  4404: "This room is not available to you.",
  4410: "The room is closed now.",
};
const PING_MS = 25000;

const root = document.getElementById("room");
const $ = (id) => document.getElementById(id);

let socket = null;
let attempt = 0;
let clockOffset = 0; // server time minus our time, from the last snapshot
let room = null; // static parts: rounds, people, me
let state = null; // the replayable state, with seq
const buffered = new Map(); // seq -> event that arrived ahead of a gap
const pending = new Map(); // client id -> command not yet acknowledged
let counter = 0;
let pingTimer = null;
let lastAnnounced = "";
let timeUpFor = null;

function newId() {
  counter += 1;
  const random = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2));
  return `${random.slice(0, 12)}-${counter}`;
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function command(type, fields = {}) {
  const message = { type, id: newId(), ...fields };
  pending.set(message.id, message);
  send(message);
}

function setConnection(text) {
  $("connection").textContent = text;
  root.classList.toggle("is-offline", text !== "");
}

// --- Connection, with exponential backoff and jitter --------------------------------------------

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}${root.dataset.socketPath}`);
  socket.addEventListener("open", () => {
    attempt = 0;
    setConnection("");
    send({ type: "sync", last_seq: state ? state.seq : null });
    for (const message of pending.values()) send(message);
    clearInterval(pingTimer);
    pingTimer = setInterval(() => send({ type: "ping", id: newId() }), PING_MS);
  });
  socket.addEventListener("message", (frame) => receive(JSON.parse(frame.data)));
  socket.addEventListener("close", (event) => {
    clearInterval(pingTimer);
    if (FINAL_CLOSES[event.code]) {
      setConnection(FINAL_CLOSES[event.code]);
      root.classList.add("is-closed");
      return;
    }
    attempt += 1;
    // Up to 15 s, full jitter: a restarted server is not stampeded by every tab at once.
    const ceiling = Math.min(15000, 500 * 2 ** attempt);
    const delay = ceiling / 2 + Math.random() * ceiling / 2;
    setConnection("Reconnecting…");
    setTimeout(connect, delay);
  });
}

function receive(message) {
  switch (message.type) {
    case "snapshot":
      takeSnapshot(message.snapshot);
      break;
    case "events":
      message.events.forEach(offer);
      break;
    case "event":
      offer(message.event);
      break;
    case "ack":
      pending.delete(message.id);
      break;
    case "pong":
      // The room moved on without us hearing it (a lost bell): fetch what we missed.
      if (state && message.seq > state.seq) send({ type: "sync", last_seq: state.seq });
      break;
    case "error":
      if (message.code === "rate_limited" && pending.has(message.id)) {
        const again = pending.get(message.id);
        setTimeout(() => send(again), 1000);
        break;
      }
      pending.delete(message.id);
      showError(message.message);
      break;
    case "closed":
      setConnection(message.message);
      break;
    default:
      break;
  }
}

function takeSnapshot(snapshot) {
  clockOffset = Date.parse(snapshot.now) - Date.now();
  room = { rounds: snapshot.rounds, people: snapshot.people, me: snapshot.me };
  state = { seq: snapshot.seq };
  for (const key of STATE_KEYS) state[key] = snapshot[key];
  for (const seq of [...buffered.keys()]) if (seq <= state.seq) buffered.delete(seq);
  drain();
  render();
}

// Apply in order; an event past a gap waits in `buffered` while we ask for what is missing.
function offer(event) {
  if (!state || event.seq <= state.seq) return;
  buffered.set(event.seq, event);
  if (!drain()) send({ type: "sync", last_seq: state.seq });
  render();
}

function drain() {
  while (buffered.has(state.seq + 1)) {
    const event = buffered.get(state.seq + 1);
    buffered.delete(event.seq);
    apply(event);
  }
  return buffered.size === 0;
}

// Mirrors circles.live.apply_event.
function apply(event) {
  const before = state;
  state = { ...state, ...event.patch, seq: event.seq };
  if (event.message) state.messages = [...state.messages, event.message].slice(-SNAPSHOT_MESSAGES);
  if (event.patch.present && room && event.patch.present.some((id) => !room.people[id])) {
    // Someone joined the circle after our snapshot: fetch names afresh.
    send({ type: "sync", last_seq: null });
  }
  announce(before, event);
}

// --- Rendering -------------------------------------------------------------------------------------

function name(id) {
  if (id === room.me) return "You";
  return (room.people[id] && room.people[id].name) || "Someone";
}

function isFacilitator() {
  const me = room.people[room.me];
  return state.facilitator === room.me || (me && me.role === "facilitator");
}

function say(text) {
  if (!text || text === lastAnnounced) return;
  lastAnnounced = text;
  $("announcer").textContent = text;
}

function announce(before, event) {
  if (!room) return;
  if (event.patch.round !== undefined && event.patch.round !== before.round) {
    const round = room.rounds[state.round];
    say(`Round ${state.round + 1}: ${round ? round.title : ""}`);
  } else if (event.patch.holder !== undefined && state.holder !== null) {
    say(state.holder === room.me ? "You have the talking piece." : `${name(state.holder)} has the talking piece.`);
  } else if (state.holder === null && state.status === "live" && state.order[0] === room.me
    && before.order[0] !== room.me) {
    say("The talking piece is offered to you. You can take it or pass.");
  } else if (event.kind === "session.ended") {
    say("The session has ended. Thank you for being here.");
  }
}

function show(selector, visible) {
  for (const element of document.querySelectorAll(selector)) element.hidden = !visible;
}

function render() {
  if (!state || !room) return;
  root.dataset.seq = String(state.seq);
  const live = state.status === "live";
  const round = room.rounds[state.round];
  $("round-title").textContent = round ? round.title : "Our circle";
  $("round-prompt").textContent = round ? round.prompt : "";
  $("round-position").textContent = room.rounds.length ? `Round ${state.round + 1} of ${room.rounds.length}` : "";
  $("status-line").textContent = {
    scheduled: "The circle has not started yet. The facilitator will begin when people are here.",
    live: "",
    ended: "The session has ended. Thank you for being here.",
  }[state.status] || "";
  root.classList.toggle("is-ended", state.status === "ended");

  $("holder-line").textContent = state.holder === null
    ? (live && state.order.length ? `Offered to ${name(state.order[0])}.` : "Nobody is speaking.")
    : `${name(state.holder)} ${state.holder === room.me ? "have" : "has"} the talking piece.`;

  const offeredToMe = live && state.holder === null && state.order[0] === room.me;
  show('[data-command="turn.accept"]', offeredToMe);
  show('[data-command="turn.pass"]', live && state.order.includes(room.me));
  show('[data-command="turn.finish"]', live && state.holder === room.me);
  show('[data-command="hand.raise"]', live && !state.hands.includes(room.me));
  show('[data-command="hand.lower"]', live && state.hands.includes(room.me));

  renderOrder();
  renderPeople();
  renderFacilitation(live);
  renderMessages();
  for (const [id, key] of [["moment", "moment"], ["away", "away"]]) {
    $(id).setAttribute("aria-pressed", String(state[key].includes(room.me)));
  }
  $("message-form").hidden = state.status === "ended";
  tick();
}

function renderOrder() {
  const list = $("order");
  list.replaceChildren();
  const canReorder = isFacilitator() && state.status === "live";
  state.order.forEach((id, index) => {
    const item = document.createElement("li");
    item.textContent = name(id);
    if (canReorder) {
      for (const [label, step] of [["Move up", -1], ["Move down", 1]]) {
        const target = index + step;
        if (target < 0 || target >= state.order.length) continue;
        const button = document.createElement("button");
        button.type = "button";
        button.className = "link-button";
        button.textContent = label;
        button.setAttribute("aria-label", `${label}: ${name(id)}`);
        button.addEventListener("click", () => {
          const order = [...state.order];
          [order[index], order[target]] = [order[target], order[index]];
          command("order.set", { order });
        });
        item.append(" ", button);
      }
    }
    list.append(item);
  });
  $("order-empty").hidden = state.order.length > 0 || state.status !== "live";
}

function renderPeople() {
  const list = $("people");
  list.replaceChildren();
  for (const id of state.present) {
    const item = document.createElement("li");
    const notes = [];
    if (id === state.facilitator) notes.push("facilitating");
    if (id === state.holder) notes.push("speaking");
    if (state.hands.includes(id)) notes.push("hand raised");
    if (state.away.includes(id)) notes.push("stepped out");
    if (state.moment.includes(id)) notes.push("taking a moment");
    item.textContent = notes.length ? `${name(id)} (${notes.join(", ")})` : name(id);
    item.classList.toggle("is-away", state.away.includes(id));
    list.append(item);
  }
}

function fillSelect(select, ids) {
  const chosen = select.value;
  select.replaceChildren(...ids.map((id) => {
    const option = document.createElement("option");
    option.value = String(id);
    option.textContent = name(id);
    return option;
  }));
  if (ids.map(String).includes(chosen)) select.value = chosen;
}

function renderFacilitation(live) {
  const leading = isFacilitator() && state.status !== "ended";
  $("facilitate").hidden = !leading;
  if (!leading) return;
  show('[data-command="session.start"]', state.status === "scheduled");
  show('[data-command="round.previous"]', live && state.round > 0);
  show('[data-command="round.next"]', live && state.round < room.rounds.length - 1);
  show('[data-command="order.shuffle"]', live && state.order.length > 1);
  $("give-form").hidden = !live;
  fillSelect($("give-to"), state.present);
  fillSelect($("hand-to"), Object.keys(room.people).map(Number).filter((id) => id !== state.facilitator));
}

function renderMessages() {
  const list = $("messages");
  const known = list.childElementCount;
  if (known > state.messages.length || (known && Number(list.lastElementChild.dataset.seq)
    !== state.messages[known - 1].seq)) list.replaceChildren();
  for (const message of state.messages.slice(list.childElementCount)) {
    const item = document.createElement("li");
    item.dataset.seq = String(message.seq);
    const who = document.createElement("strong");
    who.textContent = `${name(message.author)}: `;
    item.append(who, message.text);
    list.append(item);
  }
}

// --- The speaker's timer: the server stores the start and length, every client counts down --------

let audio = null;

function beep() {
  if (!$("sound").checked) return;
  audio = audio || new AudioContext();
  const tone = audio.createOscillator();
  const volume = audio.createGain();
  tone.frequency.value = 528;
  volume.gain.setValueAtTime(0.0001, audio.currentTime);
  volume.gain.exponentialRampToValueAtTime(0.15, audio.currentTime + 0.05);
  volume.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 1.2);
  tone.connect(volume).connect(audio.destination);
  tone.start();
  tone.stop(audio.currentTime + 1.3);
}

function tick() {
  const timer = state && state.timer;
  $("timer").hidden = !timer;
  if (!timer) return;
  const ends = Date.parse(timer.started_at) + timer.seconds * 1000;
  const left = Math.max(0, Math.round((ends - (Date.now() + clockOffset)) / 1000));
  $("timer-text").textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
  const up = left === 0;
  $("timer").classList.toggle("is-up", up);
  if (up && timeUpFor !== timer.started_at) {
    timeUpFor = timer.started_at;
    beep();
    say(`Time is up for ${name(state.holder)}. There's no rush to finish your sentence.`);
  }
}

// --- Controls ----------------------------------------------------------------------------------

function showError(text) {
  $("room-error").textContent = text;
}

root.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-command]");
  if (!button || !state) return;
  showError("");
  const type = button.dataset.command;
  if (type === "round.next" || type === "round.previous") {
    command(type, { round: state.round });
  } else if (type === "moment.set" || type === "away.set") {
    command(type, { on: button.getAttribute("aria-pressed") !== "true" });
  } else if (type === "session.end") {
    if (window.confirm("End the session for everyone?")) command(type);
  } else {
    command(type);
  }
});

$("give-form").addEventListener("submit", (event) => {
  event.preventDefault();
  command("piece.give", { to: Number($("give-to").value) });
});

$("hand-form").addEventListener("submit", (event) => {
  event.preventDefault();
  command("facilitation.hand", { to: Number($("hand-to").value) });
});

$("message-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("message-text").value.trim();
  if (!text) return;
  command("message.post", { text });
  $("message-text").value = "";
});

setInterval(tick, 1000);
connect();
