-- The SSH host keys of the installation, sqlite flavour (same as the other file).
--
-- Every node of a cluster presents the same host keys, so clients' known_hosts entries
-- hold whichever node they reach. The first node to start creates them; the private key
-- is sealed with the secrets key (XChaCha20-Poly1305, bound to the algorithm's name),
-- which every node shares. Key files named in the config (ssh.host_key_files) win over
-- these rows.
CREATE TABLE host_keys (
    algorithm TEXT PRIMARY KEY,
    sealed TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
