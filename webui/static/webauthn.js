// Security keys and passkeys: the browser's side of a WebAuthn ceremony. A form marked
// data-webauthn="create" (registration) or "get" (login, confirmation) carries the
// options the gateway made in data-options. On submit this asks the browser's
// navigator.credentials, writes its answer as JSON into the form's
// [data-webauthn-response] field and sends the form. Every check is the gateway's.
"use strict";

(function () {
  function toBuffer(b64url) {
    var s = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (c) {
      var copy = Object.assign({}, c);
      copy.id = toBuffer(c.id);
      return copy;
    });
  }

  function create(options) {
    var pk = Object.assign({}, options.publicKey);
    pk.challenge = toBuffer(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: toBuffer(pk.user.id) });
    pk.excludeCredentials = withIds(pk.excludeCredentials);
    return navigator.credentials.create({ publicKey: pk }).then(function (cred) {
      var r = cred.response;
      return {
        id: cred.id,
        rawId: toB64url(cred.rawId),
        type: cred.type,
        response: {
          attestationObject: toB64url(r.attestationObject),
          clientDataJSON: toB64url(r.clientDataJSON),
          transports: typeof r.getTransports === "function" ? r.getTransports() : undefined,
        },
        extensions: {},
      };
    });
  }

  function get(options) {
    var pk = Object.assign({}, options.publicKey);
    pk.challenge = toBuffer(pk.challenge);
    pk.allowCredentials = withIds(pk.allowCredentials);
    return navigator.credentials.get({ publicKey: pk }).then(function (cred) {
      var r = cred.response;
      return {
        id: cred.id,
        rawId: toB64url(cred.rawId),
        type: cred.type,
        response: {
          authenticatorData: toB64url(r.authenticatorData),
          clientDataJSON: toB64url(r.clientDataJSON),
          signature: toB64url(r.signature),
          userHandle: r.userHandle ? toB64url(r.userHandle) : null,
        },
        extensions: {},
      };
    });
  }

  function show(form, text) {
    var el = form.querySelector("[data-webauthn-error]");
    if (el) {
      el.textContent = text;
      el.hidden = false;
    }
  }

  document.querySelectorAll("form[data-webauthn]").forEach(function (form) {
    var field = form.querySelector("[data-webauthn-response]");
    form.addEventListener("submit", function (event) {
      if (!field || field.value) return;
      event.preventDefault();
      if (!window.PublicKeyCredential) {
        show(form, "This browser cannot use security keys or passkeys.");
        return;
      }
      var options;
      try {
        options = JSON.parse(form.dataset.options);
      } catch (e) {
        show(form, "The page is incomplete; reload it.");
        return;
      }
      var ceremony = form.dataset.webauthn === "create" ? create(options) : get(options);
      ceremony.then(
        function (answer) {
          field.value = JSON.stringify(answer);
          form.submit();
        },
        function (e) {
          show(form, "The browser gave no answer from a security key (" + e.name + "). Try again.");
        }
      );
    });
  });
})();
