-- Sudo mode, PostgreSQL flavour (same as the SQLite file).
--
-- A change of credentials on the web (a factor, a key, a passcode, the password) needs a
-- proof given in the same web session a few minutes before. Each session row records
-- when it last saw one:
-- `password_at`: the password was checked (the login's password step, or re-entered);
-- `factor_at`: a second factor was passed (the login's factor step, a confirmation, or
-- the enrollment of a factor the user proved to hold). A login that skipped the factor
-- because of a trusted browser sets only `password_at`.
ALTER TABLE web_sessions ADD COLUMN password_at BIGINT;
ALTER TABLE web_sessions ADD COLUMN factor_at BIGINT;
