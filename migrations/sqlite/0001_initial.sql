-- Gatehouse schema, SQLite flavour. Ids, flags and UTC epoch seconds are INTEGER (BIGINT on
-- PostgreSQL); the two files must describe the same tables.

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    email           TEXT,
    password_hash   TEXT,
    is_admin        INTEGER NOT NULL DEFAULT 0,
    locked          INTEGER NOT NULL DEFAULT 0,
    exempt_2fa      INTEGER NOT NULL DEFAULT 0,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    last_method     TEXT,
    created_at      INTEGER NOT NULL
);

CREATE TABLE user_groups (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    force_2fa       INTEGER NOT NULL DEFAULT 0,
    allowed_methods TEXT,
    created_at      INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_id        INTEGER NOT NULL REFERENCES user_groups(id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members(user_id);

CREATE TABLE settings (
    key             TEXT PRIMARY KEY,
    value           TEXT NOT NULL
);

CREATE TABLE ssh_keys (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    algorithm       TEXT    NOT NULL,
    public_key      TEXT    NOT NULL,
    fingerprint     TEXT    NOT NULL,
    comment         TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    UNIQUE (user_id, fingerprint)
);

CREATE TABLE targets (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    host            TEXT    NOT NULL,
    port            INTEGER NOT NULL,
    username        TEXT    NOT NULL,
    credential_kind TEXT    NOT NULL,
    credential      TEXT    NOT NULL,
    host_key        TEXT,
    created_at      INTEGER NOT NULL
);

CREATE TABLE grants (
    id              INTEGER PRIMARY KEY,
    target_id       INTEGER NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    user_id         INTEGER REFERENCES users(id) ON DELETE CASCADE,
    group_id        INTEGER REFERENCES user_groups(id) ON DELETE CASCADE,
    created_at      INTEGER NOT NULL,
    CHECK ((user_id IS NULL) <> (group_id IS NULL))
);
CREATE UNIQUE INDEX grants_user ON grants(target_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX grants_group ON grants(target_id, group_id) WHERE group_id IS NOT NULL;

CREATE TABLE factors (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    method          TEXT    NOT NULL,
    secret          TEXT,
    label           TEXT    NOT NULL DEFAULT '',
    last_step       INTEGER,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    UNIQUE (user_id, method)
);

CREATE TABLE backup_codes (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash       TEXT    NOT NULL,
    used_at         INTEGER,
    created_at      INTEGER NOT NULL
);
CREATE INDEX backup_codes_user ON backup_codes(user_id);

CREATE TABLE login_failures (
    id              INTEGER PRIMARY KEY,
    user_name       TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    at              INTEGER NOT NULL
);
CREATE INDEX login_failures_user ON login_failures(user_name, at);
CREATE INDEX login_failures_source ON login_failures(source, at);

CREATE TABLE lockouts (
    subject         TEXT PRIMARY KEY,
    locked_until    INTEGER NOT NULL
);

CREATE TABLE audit_events (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    node            TEXT    NOT NULL,
    actor           TEXT,
    user_name       TEXT,
    event           TEXT    NOT NULL,
    outcome         TEXT    NOT NULL,
    source          TEXT,
    detail          TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events(at);
CREATE INDEX audit_events_user ON audit_events(user_name, at);
