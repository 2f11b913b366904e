// The browser side of examples/python/chat.py: one WebSocket to /chat?name=...&room=...,
// JSON both ways, reconnecting with growing delays when the connection drops.
// Whatever a person typed (names, rooms, messages) reaches the page as textContent,
// never as HTML, so no one can inject markup into another person's page.
"use strict";

const FIRST_RETRY_MS = 1000;
const LONGEST_RETRY_MS = 30000;

const $ = (id) => document.getElementById(id);

let me = null;        // {name, room} while in a room, else null
let socket = null;    // the current WebSocket; any other one's events are stale
let retryDelay = FIRST_RETRY_MS;
let retryTimer = null;
let countdownTimer = null;

function chatUrl(name, room) {
  // The WebSocket sits beside the page, on the same host and port, so the page works
  // behind any address the server is reached by.
  const url = new URL("chat", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.search = new URLSearchParams({ name, room }).toString();
  return url.href;
}

// A name or a room as the server keeps it: white space runs made single spaces, at
// most 32 characters. The page compares names with it ("mine" or not).
function oneLine(value) {
  return value.trim().split(/\s+/).join(" ").slice(0, 32);
}

function roomOfLink() {
  try {
    return decodeURIComponent(location.hash.slice(1));
  } catch {
    return ""; // not a link this page made
  }
}

function setStatus(state, text) {
  const status = $("status");
  status.dataset.state = state;
  status.textContent = text;
}

function connect() {
  clearTimeout(retryTimer);
  clearInterval(countdownTimer);
  setStatus("connecting", "Connecting…");
  $("banner-text").textContent = "Connecting…";
  const ws = new WebSocket(chatUrl(me.name, me.room));
  socket = ws;
  ws.onopen = () => {
    if (socket !== ws) return;
    retryDelay = FIRST_RETRY_MS;
    setStatus("online", "Connected");
    $("banner").hidden = true;
    setOnline(true);
  };
  ws.onmessage = (e) => {
    if (socket === ws) handle(JSON.parse(e.data));
  };
  ws.onclose = () => {
    if (socket !== ws) return; // closed on purpose (Leave)
    socket = null;
    setOnline(false);
    $("people").replaceChildren(); // who is there is unknown until the next join
    scheduleRetry();
  };
}

function scheduleRetry() {
  // Doubling delays up to a limit, each shortened by a random part, so that the
  // clients of a restarted server do not all come back in the same instant.
  const delay = retryDelay * (0.5 + Math.random() / 2);
  retryDelay = Math.min(retryDelay * 2, LONGEST_RETRY_MS);
  const due = Date.now() + delay;
  const tell = () => {
    const seconds = Math.max(1, Math.ceil((due - Date.now()) / 1000));
    $("banner-text").textContent = `Connection lost. Retrying in ${seconds} s…`;
  };
  setStatus("offline", "Offline");
  tell();
  $("banner").hidden = false;
  countdownTimer = setInterval(tell, 1000);
  retryTimer = setTimeout(connect, delay);
}

function setOnline(online) {
  $("message").disabled = !online;
  $("send").querySelector("button").disabled = !online;
  if (online) $("message").focus();
}

function handle(msg) {
  switch (msg.type) {
    case "joined":
      addNotice(`${msg.name} joined`);
      showPeople(msg.people);
      break;
    case "left":
      addNotice(`${msg.name} left`);
      showPeople(msg.people);
      break;
    case "message":
      addMessage(msg.name, msg.text);
      break;
    case "error":
      addNotice(msg.text, "error");
      break;
  }
}

function append(item) {
  const log = $("log");
  // Follow new messages only when the reader is at the end already, not while they
  // scroll back through older ones.
  const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(item);
  if (atEnd) log.scrollTop = log.scrollHeight;
}

function addNotice(text, kind = "notice") {
  const item = document.createElement("li");
  item.className = kind;
  item.textContent = text;
  append(item);
}

function addMessage(name, text) {
  const item = document.createElement("li");
  item.className = name === me.name ? "message mine" : "message";
  const meta = document.createElement("div");
  meta.className = "meta";
  const who = document.createElement("span");
  who.className = "name";
  who.textContent = name;
  const time = document.createElement("time");
  time.textContent = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  meta.append(who, " ", time);
  const body = document.createElement("div");
  body.className = "text";
  body.textContent = text;
  item.append(meta, body);
  append(item);
}

function showPeople(names) {
  const list = $("people");
  list.replaceChildren(
    ...names.map((name) => {
      const item = document.createElement("li");
      item.textContent = name;
      return item;
    }),
  );
  list.dataset.count = String(names.length);
}

function join(name, room) {
  me = { name, room };
  try {
    localStorage.setItem("chat-name", name);
  } catch {
    // storage may be off (private windows): the name is only not remembered
  }
  history.replaceState(null, "", `#${encodeURIComponent(room)}`); // a link to this room
  document.title = `${room} · Roost chat`;
  $("room-name").textContent = `#${room}`;
  $("me").textContent = name;
  $("log").replaceChildren();
  $("people").replaceChildren();
  $("join").hidden = true;
  $("chat").hidden = false;
  setOnline(false);
  connect();
}

function leave() {
  const ws = socket;
  socket = null; // before close(), so that its close event starts no retry
  if (ws) ws.close(1000, "left");
  clearTimeout(retryTimer);
  clearInterval(countdownTimer);
  me = null;
  retryDelay = FIRST_RETRY_MS;
  setStatus("idle", "");
  document.title = "Roost chat";
  history.replaceState(null, "", location.pathname);
  $("banner").hidden = true;
  $("chat").hidden = true;
  $("join").hidden = false;
  $("name").focus();
}

document.addEventListener("DOMContentLoaded", () => {
  try {
    $("name").value = localStorage.getItem("chat-name") || "";
  } catch {
    // no storage: the name starts empty
  }
  const linked = oneLine(roomOfLink());
  if (linked) $("room").value = linked;
  (linked || !$("name").value ? $("name") : $("room")).focus();

  $("join").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = oneLine($("name").value);
    const room = oneLine($("room").value);
    if (name && room) join(name, room);
  });
  $("send").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("message").value;
    if (!text.trim() || !socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ text }));
    $("message").value = "";
  });
  $("leave").addEventListener("click", leave);
  $("retry").addEventListener("click", () => {
    if (me && !socket) connect();
  });
});
