-- Security keys used as SSH keys for the second factor (sk-ssh-ed25519@openssh.com,
-- sk-ecdsa-sha2-nistp256@openssh.com), sqlite flavour (same as the other file). Apart from
-- ssh_keys (primary credentials): a key here never opens a login on its own. public_key is
-- the OpenSSH one-line form without the comment; verify_required says the signature must
-- carry the user-verification flag (PIN or biometric); last_counter is the highest
-- signature counter accepted so far (a counter that does not grow is refused).
CREATE TABLE ssh_sk_keys (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    algorithm       TEXT    NOT NULL,
    public_key      TEXT    NOT NULL,
    fingerprint     TEXT    NOT NULL,
    name            TEXT    NOT NULL DEFAULT '',
    verify_required INTEGER NOT NULL DEFAULT 0,
    last_counter    INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    UNIQUE (user_id, fingerprint)
);
