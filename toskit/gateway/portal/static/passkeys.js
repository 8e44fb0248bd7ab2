// Passkeys for the TOS portal: the browser's own WebAuthn JSON forms (parse...FromJSON, toJSON),
// so no encoding is done by hand here. The server checks everything; this only carries it
// (post: portal.js).
"use strict";

function say(text) {
  const status = document.getElementById("passkey-status");
  if (status) status.textContent = text;
}

function go(path) {  // only this site's own pages
  if (typeof path === "string" && path.startsWith("/") && !path.startsWith("//")) window.location.assign(path);
}

const supported = window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON;

const signIn = document.getElementById("passkey-sign-in");
if (signIn && supported) {
  signIn.hidden = false;
  signIn.addEventListener("click", async () => {
    say("Waiting for your passkey…");
    try {
      const options = await post("/auth/passkey/begin");
      const credential = await navigator.credentials.get(
        {publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey)});
      go((await post("/auth/passkey/complete", credential.toJSON())).next);
    } catch (error) {
      say("Passkey sign-in failed: " + error.message);
    }
  });
}

const addForm = document.getElementById("passkey-add-form");
if (addForm && supported) {
  addForm.hidden = false;
  document.getElementById("passkey-add").addEventListener("click", async () => {
    say("Waiting for your device…");
    try {
      const options = await post("/passkeys/register/begin");
      const credential = await navigator.credentials.create(
        {publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey)});
      await post("/passkeys/register/complete",
                 {credential: credential.toJSON(), name: document.getElementById("passkey-name").value});
      window.location.reload();
    } catch (error) {
      say("The passkey was not added: " + error.message);
    }
  });
}
