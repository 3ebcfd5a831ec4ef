-- The backend shell's tables, SQLite flavour: recordings of proxied terminal sessions and
-- the sessions live right now on any node. User and target are kept by name (not by id) so
-- that deleting a user or a target leaves its history readable.

CREATE TABLE recordings (
    id              INTEGER PRIMARY KEY,
    user_name       TEXT    NOT NULL,
    target_name     TEXT    NOT NULL,
    node            TEXT    NOT NULL,
    path            TEXT    NOT NULL UNIQUE,
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    started_at      INTEGER NOT NULL,
    ended_at        INTEGER,
    size            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX recordings_started ON recordings(started_at);
CREATE INDEX recordings_user ON recordings(user_name, started_at);

CREATE TABLE live_sessions (
    id              INTEGER PRIMARY KEY,
    node            TEXT    NOT NULL,
    user_name       TEXT    NOT NULL,
    target_name     TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    recording_id    INTEGER,
    started_at      INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL,
    terminate_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX live_sessions_started ON live_sessions(started_at);
