-- Hardening of the gate, PostgreSQL flavour (same as the SQLite file).
--
-- 1. Ids are never reused: identity columns already guarantee that here (the SQLite file
--    rebuilds its tables with AUTOINCREMENT).
-- 2. `users.enroll_from`: the start of the first-login enrollment window (account
--    created, or factors reset by an administrator); NULL once it was used or closed.
-- 3. `access_revision`: one counter every change that can withdraw access bumps (lock,
--    delete, policy, grants, factors, keys, passcodes), so every node re-checks its live
--    connections when it moves.
ALTER TABLE users ADD COLUMN enroll_from BIGINT;
UPDATE users SET enroll_from = created_at WHERE NOT EXISTS (SELECT 1 FROM factors f WHERE f.user_id = users.id);

CREATE TABLE access_revision (
    id              BIGINT PRIMARY KEY CHECK (id = 1),
    revision        BIGINT NOT NULL
);
INSERT INTO access_revision (id, revision) VALUES (1, 0);
