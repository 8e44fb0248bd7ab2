// The prompt (the command gate): a command is staged in the session, shown as the session read it
// with its verdict and reasons, approved once its wait is over (a destructive one with a passkey
// whose challenge is bound to exactly that stage), then its output and exit status come back.
// The session and the gateway decide everything; this page only shows and carries.
"use strict";

const gate = {send: null, stage: null, timer: null, ready: false};  // ready: its wait is over
const VERDICTS = {run: "Runs once you approve it.", destructive: "Destructive: approve it with your passkey.",
                  denied: "Denied: the gate will not run it."};

function byId(id) {
  return document.getElementById(id);
}

function gateSay(text) {
  byId("gate-status").textContent = text;
}

function showStage(stage) {
  gate.stage = stage;
  const box = byId("staged");
  box.hidden = false;
  box.dataset.verdict = stage.verdict;
  box.dataset.id = stage.id;
  byId("staged-shown").textContent = stage.shown === null ? stage.line : stage.shown;  // text, never markup
  byId("staged-verdict").textContent = VERDICTS[stage.verdict];
  const reasons = byId("staged-reasons");
  reasons.replaceChildren();
  for (const reason of [...stage.reasons, ...stage.notes]) {
    reasons.appendChild(document.createElement("li")).textContent = reason;
  }
  const approve = byId("approve");
  approve.disabled = true;
  gate.ready = false;
  approve.hidden = stage.verdict === "denied";
  clearTimeout(gate.timer);
  if (stage.verdict !== "denied") {
    gateSay(`Wait ${stage.wait_seconds} s, read it, then approve.`);
    gate.timer = setTimeout(() => { gate.ready = true; approve.disabled = false; gateSay("Ready to approve."); },
                            stage.wait_seconds * 1000);
  } else {
    gateSay("");
  }
}

function endStage() {
  clearTimeout(gate.timer);
  gate.stage = null;
  byId("staged").hidden = true;
}

gate.onMessage = (message) => {
  const output = byId("command-output");
  if (message.type === "staged") {
    showStage(message);
  } else if (message.type === "approved") {
    endStage();
    output.hidden = false;
    output.textContent = "";
    output.dataset.exit = "";
    gateSay("Running…");
  } else if (message.type === "output") {
    output.textContent += message.data;
  } else if (message.type === "exited") {
    output.dataset.exit = String(message.exit);
    gateSay(`Exit status ${message.exit}` + (message.cut ? ` (${message.cut} bytes of output not shown)` : ""));
  } else if (message.type === "refused") {
    gateSay(message.error);
    if (gate.stage && message.id === gate.stage.id) byId("approve").disabled = !gate.ready;
  } else if (message.type === "cancelled") {
    endStage();
    gateSay("Cancelled.");
  }
};

async function approve() {
  const stage = gate.stage;
  if (!stage || !gate.send) return;
  byId("approve").disabled = true;
  const message = {cmd: "approve", id: stage.id, digest: stage.digest};
  if (stage.verdict === "destructive") {
    gateSay("Waiting for your passkey…");
    try {
      const options = await post("/gate/challenge", {id: stage.id, digest: stage.digest});  // portal.js
      const credential = await navigator.credentials.get(
        {publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey)});
      message.assertion = credential.toJSON();
      message.challenge = options.publicKey.challenge;
    } catch (error) {
      gateSay("Not approved: " + error.message);
      byId("approve").disabled = !gate.ready;
      return;
    }
  }
  gate.send(message);
}

byId("stage").addEventListener("click", () => {
  const line = byId("prompt-line").value;
  if (gate.send && line.trim()) gate.send({cmd: "stage", line});
});
byId("approve").addEventListener("click", approve);
byId("cancel").addEventListener("click", () => {
  if (gate.stage && gate.send) gate.send({cmd: "cancel", id: gate.stage.id});
});
