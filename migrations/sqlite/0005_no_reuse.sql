-- no-transaction
-- Hardening of the gate, SQLite flavour (same as the PostgreSQL file).
--
-- 1. Ids are never reused. A plain INTEGER PRIMARY KEY hands the id of the newest row
--    to the next insert once that row is deleted, so a new user could take a deleted
--    user's id, and with it anything still holding that id. AUTOINCREMENT forbids reuse;
--    SQLite cannot add it in place, so users, groups and targets are rebuilt (the
--    documented procedure: foreign keys off, copy, drop, rename, check, foreign keys on).
-- 2. `users.enroll_from`: the start of the first-login enrollment window (account
--    created, or factors reset by an administrator); NULL once a factor was enrolled.
--    Users who have no factor yet get a window that starts now, not at their creation.
-- 3. `access_revision`: one counter every change that can withdraw access bumps (lock,
--    delete, policy, grants, factors, keys, passcodes), so every node re-checks its live
--    connections when it moves.
-- 4. `login_failures.pending`: a guess is counted (pending) before it is checked, and
--    settled as a failure or removed after, so parallel guesses never exceed the threshold.
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE users_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE,
    email           TEXT,
    password_hash   TEXT,
    is_admin        INTEGER NOT NULL DEFAULT 0,
    locked          INTEGER NOT NULL DEFAULT 0,
    exempt_2fa      INTEGER NOT NULL DEFAULT 0,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    last_method     TEXT,
    created_at      INTEGER NOT NULL,
    enroll_from     INTEGER
);
INSERT INTO users_new (id, name, email, password_hash, is_admin, locked, exempt_2fa, must_change_password, last_method, created_at, enroll_from)
    SELECT id, name, email, password_hash, is_admin, locked, exempt_2fa, must_change_password, last_method, created_at,
           CASE WHEN EXISTS (SELECT 1 FROM factors f WHERE f.user_id = users.id) THEN NULL ELSE CAST(strftime('%s', 'now') AS INTEGER) END
    FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

CREATE TABLE user_groups_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE,
    force_2fa       INTEGER NOT NULL DEFAULT 0,
    allowed_methods TEXT,
    created_at      INTEGER NOT NULL
);
INSERT INTO user_groups_new (id, name, force_2fa, allowed_methods, created_at)
    SELECT id, name, force_2fa, allowed_methods, created_at FROM user_groups;
DROP TABLE user_groups;
ALTER TABLE user_groups_new RENAME TO user_groups;

CREATE TABLE targets_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE,
    host            TEXT    NOT NULL,
    port            INTEGER NOT NULL,
    username        TEXT    NOT NULL,
    credential_kind TEXT    NOT NULL,
    credential      TEXT    NOT NULL,
    host_key        TEXT,
    created_at      INTEGER NOT NULL
);
INSERT INTO targets_new (id, name, host, port, username, credential_kind, credential, host_key, created_at)
    SELECT id, name, host, port, username, credential_kind, credential, host_key, created_at FROM targets;
DROP TABLE targets;
ALTER TABLE targets_new RENAME TO targets;

CREATE TABLE access_revision (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    revision        INTEGER NOT NULL
);
INSERT INTO access_revision (id, revision) VALUES (1, 0);

ALTER TABLE login_failures ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;

COMMIT;
PRAGMA foreign_keys = ON;
