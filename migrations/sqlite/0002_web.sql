-- Web UI state, SQLite flavour (same tables as the PostgreSQL file). Every token a browser
-- or a client holds is stored only as a hash: SHA-256 hex for 256-bit random tokens
-- (sessions, trusted browsers), argon2id for application passcodes, which people type.

-- A browser session. `stage` is 'anonymous' (only a CSRF token for the login form),
-- 'factor' (password accepted, second factor pending) or 'full'.
CREATE TABLE web_sessions (
    id_hash         TEXT    PRIMARY KEY,
    user_id         INTEGER REFERENCES users(id) ON DELETE CASCADE,
    stage           TEXT    NOT NULL,
    csrf_token      TEXT    NOT NULL,
    source          TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);
CREATE INDEX web_sessions_expires ON web_sessions(expires_at);

-- A browser a user chose to trust: it skips the second factor on the web only.
CREATE TABLE trusted_devices (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash      TEXT    NOT NULL UNIQUE,
    label           TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    last_used_at    INTEGER
);
CREATE INDEX trusted_devices_user ON trusted_devices(user_id);

-- Application passcodes: accepted over SSH in place of password + second factor, only for
-- scp, sftp, exec and ProxyJump.
CREATE TABLE app_passcodes (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    label           TEXT    NOT NULL,
    passcode_hash   TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    UNIQUE (user_id, label)
);
