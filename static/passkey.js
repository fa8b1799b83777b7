"use strict";
// The portal's one script: it runs a WebAuthn ceremony for a form that offers one, puts the
// authenticator's answer in the offer's answer field and sends the form. Without it (or without WebAuthn) the offer
// stays hidden and the form works with a code. The CSP allows exactly this text, by its hash.
(() => {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }
  const encode = (buffer) =>
    btoa(String.fromCharCode(...new Uint8Array(buffer)))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
  const decode = (text) =>
    Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  // webauthn-rs writes absent members as null, which the browser's dictionaries refuse.
  const clean = (value) => {
    if (Array.isArray(value)) {
      return value.map(clean);
    }
    if (value && typeof value === "object") {
      const out = {};
      for (const [key, member] of Object.entries(value)) {
        if (member !== null) {
          out[key] = clean(member);
        }
      }
      return out;
    }
    return value;
  };
  const create = (options) => {
    options.challenge = decode(options.challenge);
    options.user.id = decode(options.user.id);
    for (const c of options.excludeCredentials || []) {
      c.id = decode(c.id);
    }
    return navigator.credentials.create({ publicKey: options });
  };
  const get = (options) => {
    options.challenge = decode(options.challenge);
    for (const c of options.allowCredentials || []) {
      c.id = decode(c.id);
    }
    return navigator.credentials.get({ publicKey: options });
  };
  const answer = (credential) => {
    const r = credential.response;
    const response = { clientDataJSON: encode(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = encode(r.attestationObject);
    } else {
      response.authenticatorData = encode(r.authenticatorData);
      response.signature = encode(r.signature);
      response.userHandle = r.userHandle ? encode(r.userHandle) : null;
    }
    const rawId = encode(credential.rawId);
    return { id: rawId, rawId, type: credential.type, response, extensions: {} };
  };
  for (const fallback of document.querySelectorAll("[data-passkey-fallback]")) {
    fallback.hidden = true;
  }
  for (const available of document.querySelectorAll("[data-passkey-available]")) {
    available.hidden = false;
  }
  for (const offer of document.querySelectorAll("[data-passkey]")) {
    const form = offer.closest("form");
    const failed = offer.querySelector("[data-passkey-error]");
    offer.hidden = false;
    offer.querySelector("button").addEventListener("click", async () => {
      failed.hidden = true;
      const options = clean(JSON.parse(offer.dataset.passkey)).publicKey;
      try {
        const made = offer.dataset.ceremony === "create" ? create(options) : get(options);
        offer.querySelector("[data-passkey-answer]").value = JSON.stringify(answer(await made));
        form.submit();
      } catch (e) {
        failed.hidden = false;
      }
    });
  }
})();
