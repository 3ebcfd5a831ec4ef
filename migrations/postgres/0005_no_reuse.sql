-- Hardening of the gate, PostgreSQL flavour (same as the SQLite file).
--
-- 1. Ids are never reused: identity columns already guarantee that here (the SQLite file
--    rebuilds its tables with AUTOINCREMENT).
-- 2. `users.enroll_from`: the start of the first-login enrollment window (account
--    created, or factors reset by an administrator); NULL once a factor was enrolled.
--    Users who have no factor yet get a window that starts now, not at their creation.
-- 3. `access_revision`: one counter every change that can withdraw access bumps (lock,
--    delete, policy, grants, factors, keys, passcodes), so every node re-checks its live
--    connections when it moves.
-- 4. `login_failures.pending`: a guess is counted (pending) before it is checked, and
--    settled as a failure or removed after, so parallel guesses never exceed the threshold.
ALTER TABLE users ADD COLUMN enroll_from BIGINT;
UPDATE users SET enroll_from = EXTRACT(EPOCH FROM now())::BIGINT WHERE NOT EXISTS (SELECT 1 FROM factors f WHERE f.user_id = users.id);

CREATE TABLE access_revision (
    id              BIGINT PRIMARY KEY CHECK (id = 1),
    revision        BIGINT NOT NULL
);
INSERT INTO access_revision (id, revision) VALUES (1, 0);

ALTER TABLE login_failures ADD COLUMN pending BIGINT NOT NULL DEFAULT 0;
