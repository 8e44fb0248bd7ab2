// What the portal's page scripts share (loaded first on every page).
"use strict";

// A POST to this portal: JSON both ways, the page's CSRF token in its header; the portal's own
// words when it refuses.
async function post(url, body) {
  const reply = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json",
              "X-CSRF-Token": document.querySelector('meta[name="csrf"]').content},
    body: JSON.stringify(body || {}),
  });
  const data = await reply.json().catch(() => ({}));
  if (!reply.ok) throw new Error(data.error || "The request was refused.");
  return data;
}
