// The desktop page: asks the portal to bring the person's session up, then opens its channel (one
// WebSocket) and draws what the session's agent holds: Sectors, Active Apps, its counter.
"use strict";

const RECONNECT_MS = 1000;  // a dropped channel is opened again after a second
const SIGNED_OUT = 4401;    // the portal's close code when the sign-in that opened the channel ended
// This tab's input, numbered; kept until a frame acknowledges it, and sent again on a new channel
// (the agent applies each once): a network blip loses none.
const input = {tab: crypto.randomUUID(), seq: 0, pending: []};

function cell(row, text) {
  row.insertCell().textContent = text;
}

function draw(frame) {
  document.getElementById("counter").textContent = String(frame.ticks);
  const sectors = document.querySelector("#sectors tbody");
  const apps = document.querySelector("#active-apps tbody");
  sectors.replaceChildren();
  apps.replaceChildren();
  for (const entry of frame.path) {
    if (entry.level === 3) {
      const row = apps.insertRow();
      cell(row, entry.name);
      cell(row, entry.name in frame.apps ? `pid ${frame.apps[entry.name]}` : "not running");
    } else {
      cell(sectors.insertRow(), entry.name);
    }
  }
}

function openChannel(desktop) {
  const state = document.getElementById("channel-state");
  const error = document.getElementById("channel-error");
  const socket = new WebSocket(`wss://${location.host}/session/channel`);
  const send = (command) => {
    const message = {...command, tab: input.tab, seq: ++input.seq};
    input.pending.push(message);
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  };
  const name = () => document.getElementById("entry-name").value.trim();
  document.getElementById("open-sector").onclick = () => send({cmd: "push", level: 1, name: name()});
  document.getElementById("launch-app").onclick = () => send({cmd: "launch", name: name(), blob_mb: 1});
  document.getElementById("close-last").onclick = () => send({cmd: "pop"});
  gate.send = send;  // gate.js: the prompt's messages go on this channel
  socket.onopen = () => {
    state.textContent = "open";
    desktop.dataset.channel = "open";
    for (const message of input.pending) socket.send(JSON.stringify(message));
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "frame") {
      input.pending = input.pending.filter((sent) => sent.seq > message.acked);
      draw(message);
      desktop.dataset.ticks = String(message.ticks);
    } else if (message.type === "error") {
      error.textContent = message.error;
    } else {
      gate.onMessage(message);  // gate.js
    }
  };
  socket.onclose = (event) => {
    if (event.code === SIGNED_OUT) {  // in another tab, or timed out: nothing to reconnect on
      state.textContent = "signed out";
      desktop.dataset.channel = "signed-out";
      error.textContent = "You are signed out. Sign in again to go on.";
      return;
    }
    state.textContent = "reconnecting";
    desktop.dataset.channel = "closed";
    setTimeout(() => openChannel(desktop), RECONNECT_MS);
  };
}

(async () => {
  const status = document.getElementById("session-status");
  if (!status) return;
  try {
    const data = await post("/session/open");  // portal.js
    status.textContent = data.message;
    status.dataset.state = "ready";
    status.dataset.action = data.action;
  } catch (error) {
    status.textContent = error.message;
    status.dataset.state = "unavailable";
    return;
  }
  const desktop = document.getElementById("desktop");
  desktop.hidden = false;
  openChannel(desktop);
})();
