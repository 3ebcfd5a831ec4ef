-- Host key rotation, sqlite flavour (same as the other file).
--
-- A host key is replaced in two steps, so that clients can learn the new key before the
-- old one goes: `gatehouse hostkey rotate` adds a `next` key per algorithm, which every
-- node presents beside the `active` one and announces to clients (OpenSSH's
-- hostkeys-00@openssh.com); `gatehouse hostkey retire` makes the `next` key `active` and
-- deletes the old one. So a row gets an id and a state, and an algorithm has two rows
-- during a rotation: one `active` (the key exchange signs with it) and one `next`. The
-- existing rows are the active keys. SQLite cannot drop a primary key in place: the table is
-- rebuilt (nothing refers to it).
CREATE TABLE host_keys_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    algorithm TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'next')),
    sealed TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
INSERT INTO host_keys_new (algorithm, state, sealed, created_at)
    SELECT algorithm, 'active', sealed, created_at FROM host_keys ORDER BY created_at, algorithm;
DROP TABLE host_keys;
ALTER TABLE host_keys_new RENAME TO host_keys;
-- One active key per algorithm, and at most one next: a second rotation waits for the
-- first to be retired, whichever node or command line started it.
CREATE UNIQUE INDEX host_keys_one_active ON host_keys (algorithm) WHERE state = 'active';
CREATE UNIQUE INDEX host_keys_one_next ON host_keys (algorithm) WHERE state = 'next';
