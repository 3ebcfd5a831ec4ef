-- Directory accounts, postgres flavour (same as the other file).
-- users.store says where a user's password is checked: 'local' (the hash in this row) or
-- 'ldap' (a bind to [ldap] as the user; the row holds no password). directory_dn is the
-- entry the user was last found at; directory_disabled is set when the directory no longer
-- admits the user (deleted, disabled, filtered out: found by a login or the sync) and
-- cleared when it admits them again; directory_synced_at is when it last answered for them.
ALTER TABLE users ADD COLUMN store TEXT NOT NULL DEFAULT 'local';
ALTER TABLE users ADD COLUMN directory_dn TEXT;
ALTER TABLE users ADD COLUMN directory_disabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN directory_synced_at BIGINT;
CREATE INDEX users_store ON users(store);
-- Keys read from the directory's key attribute: replaced whenever the directory answers for
-- the user, so a key removed there stops working here.
ALTER TABLE ssh_keys ADD COLUMN from_directory BIGINT NOT NULL DEFAULT 0;
