-- Second factors that are approved outside the login itself (sqlite flavour): mailed codes
-- and "Authorize" links, and the health of the services the factors depend on. Both are
-- in the database so that every node of a cluster sees them: a link clicked on one node
-- releases a login waiting on another.

-- One mailed code (and, for a login, its Authorize link). `attempt` binds it to the login
-- attempt that asked for it (an SSH connection, a web login session), so a click or a
-- code releases that login and no other. Codes are stored as argon2id hashes, link tokens
-- as SHA-256 (they are 256-bit random).
CREATE TABLE email_approvals (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose         TEXT    NOT NULL,
    attempt         TEXT    NOT NULL,
    address         TEXT    NOT NULL,
    code_hash       TEXT    NOT NULL,
    token_hash      TEXT    UNIQUE,
    source          TEXT    NOT NULL DEFAULT '',
    frontend        TEXT    NOT NULL DEFAULT '',
    node            TEXT    NOT NULL DEFAULT '',
    wrong_codes     INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    decision        TEXT,
    decided_at      INTEGER,
    decided_from    TEXT,
    used_at         INTEGER
);
CREATE INDEX email_approvals_attempt ON email_approvals(user_id, attempt);
CREATE INDEX email_approvals_created ON email_approvals(user_id, created_at);

-- The last success and the last error talking to a factor's service (SMTP relay, Duo,
-- YubiKey validation servers, RADIUS), for the admin health page.
CREATE TABLE factor_health (
    method          TEXT    PRIMARY KEY,
    last_ok_at      INTEGER,
    last_error      TEXT,
    last_error_at   INTEGER,
    last_error_node TEXT
);
