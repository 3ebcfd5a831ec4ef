-- Security keys and passkeys (WebAuthn), sqlite flavour (same as the other file).
-- One row per registered credential: a user may have several, each named. credential_id is
-- the authenticator's id (base64url), unique across the installation, so one key is never
-- two users'. credential holds the relying party's view of it (public key, algorithm,
-- flags; JSON), sign_count the highest signature counter seen: an assertion whose counter
-- does not go above it (unless both are 0) is refused as a cloned key. rp_id is the
-- relying party (host of public_url) the key was registered with: a key is only ever
-- asked for and accepted there.
CREATE TABLE webauthn_credentials (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id   TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    rp_id           TEXT    NOT NULL,
    credential      TEXT    NOT NULL,
    sign_count      INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    UNIQUE (user_id, name)
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials(user_id);

-- A registration or assertion in progress: the challenge the browser must sign, as the
-- relying party keeps it (state, JSON), so that any node can finish it. Bound to what it
-- is for (binding: a web login attempt, an enrollment, an SSH approval), used once
-- (used_at is set by the first finish, before the check), and valid until expires_at.
-- id_hash is the SHA-256 of the ceremony id the browser carries.
CREATE TABLE webauthn_ceremonies (
    id_hash         TEXT    PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind            TEXT    NOT NULL,
    binding         TEXT    NOT NULL,
    name            TEXT    NOT NULL DEFAULT '',
    state           TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER
);
CREATE INDEX webauthn_ceremonies_expires ON webauthn_ceremonies(expires_at);
