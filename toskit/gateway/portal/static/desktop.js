// The desktop page: asks the portal to bring the person's session up, then says where it stands.
"use strict";

(async () => {
  const status = document.getElementById("session-status");
  if (!status) return;
  const csrf = document.querySelector('meta[name="csrf"]').content;
  try {
    const reply = await fetch("/session/open", {method: "POST", credentials: "same-origin",
                                                headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                                                body: "{}"});
    const data = await reply.json().catch(() => ({}));
    if (!reply.ok) throw new Error(data.error || "The request was refused.");
    status.textContent = data.message;
    status.dataset.state = "ready";
    status.dataset.action = data.action;
  } catch (error) {
    status.textContent = error.message;
    status.dataset.state = "unavailable";
  }
})();
