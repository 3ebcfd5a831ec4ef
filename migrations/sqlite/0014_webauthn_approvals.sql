-- Approve in the browser (sqlite flavour; the same as the other file): an SSH login
-- waiting for its user to touch a security key on a web page. The login (any node) writes
-- the row and polls it; the page at the link (any node) shows the code and the source
-- address the SSH prompt shows, to that user only, and sets approved_at after a WebAuthn
-- assertion begun for this row (ceremony binding "ssh-approval:ID"). The login takes it
-- once (used_at). token_hash is the SHA-256 of the link's token; attempt names the SSH
-- login; the row expires with the login's wait.
CREATE TABLE webauthn_approvals (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    attempt         TEXT    NOT NULL,
    token_hash      TEXT    NOT NULL UNIQUE,
    code            TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    node            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    approved_at     INTEGER,
    approved_from   TEXT,
    used_at         INTEGER
);
CREATE INDEX webauthn_approvals_expires ON webauthn_approvals(expires_at);
