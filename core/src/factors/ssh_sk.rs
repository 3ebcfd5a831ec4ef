//! A FIDO security key used as an SSH key for the second factor (`ssh-keygen -t
//! ed25519-sk` or `-t ecdsa-sk`, OpenSSH 8.2 or later).
//!
//! The user registers the key's public line here, apart from their login keys
//! (`crate::ssh_keys`): a registered security key never opens a login on its own. After the
//! first credential, the SSH gate lets the client authenticate with one of these keys in a
//! second public-key round. The SSH transport verifies the signature (over the session, the
//! key's application hash, and the flags and counter the key signed, as OpenSSH's
//! PROTOCOL.u2f lays out); [`check`] then decides on what only a security key signature
//! carries:
//!
//! - the user-presence flag must be set: the key was touched for this login;
//! - the user-verification flag must be set when the key was registered with
//!   `verify-required` (a PIN or a fingerprint on the key);
//! - the signature counter must grow (when the key keeps one): a counter that stays or
//!   goes back means a copy of the key signed, and is refused. The highest accepted
//!   counter is stored per key, compared and moved in one statement, so two logins racing
//!   each other with the same counter cannot both pass.
//!
//! Over the web a signature of this kind cannot be given: the method is for SSH only
//! ([`super::Method::on_web`]).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;
use ssh_key::public::KeyData;
use ssh_key::{PublicKey, Signature};

use super::{Challenge, Method, SecondFactor, Verdict};
use crate::db::sql;
use crate::users::User;
use crate::{Db, Error, Gateway, Result, ssh_keys, time};

/// The signature flag that says the key was touched (user presence).
pub const FLAG_USER_PRESENCE: u8 = 0x01;
/// The signature flag that says the key checked its PIN or a fingerprint (user
/// verification).
pub const FLAG_USER_VERIFICATION: u8 = 0x04;

/// The OpenSSH key types this method takes.
pub const KEY_TYPES: [&str; 2] = ["sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com"];

/// A registered security key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SkKey {
    pub id: i64,
    pub user_id: i64,
    pub algorithm: String,
    /// OpenSSH one-line form without the comment.
    pub public_key: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// A name the user or administrator gave it (the key's comment when none was given).
    pub name: String,
    /// Whether signatures must carry the user-verification flag.
    pub verify_required: bool,
    /// The highest signature counter accepted so far.
    pub last_counter: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

fn from_row(row: &AnyRow) -> Result<SkKey> {
    let verify_required: i64 = row.try_get("verify_required")?;
    Ok(SkKey {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        algorithm: row.try_get("algorithm")?,
        public_key: row.try_get("public_key")?,
        fingerprint: row.try_get("fingerprint")?,
        name: row.try_get("name")?,
        verify_required: verify_required != 0,
        last_counter: row.try_get("last_counter")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

const COLUMNS: &str =
    "id, user_id, algorithm, public_key, fingerprint, name, verify_required, last_counter, created_at, last_used_at";

/// Parses one public-key line and makes sure it is a security key for SSH: an
/// `sk-ssh-ed25519@openssh.com` or `sk-ecdsa-sha2-nistp256@openssh.com` key whose
/// application starts with `ssh:` (what OpenSSH makes; a key made for a web site is not
/// for this).
pub fn parse(line: &str) -> Result<PublicKey> {
    let key = ssh_keys::parse(line)?;
    let application = match key.key_data() {
        KeyData::SkEd25519(k) => k.application(),
        KeyData::SkEcdsaSha2NistP256(k) => k.application(),
        _ => {
            return Err(Error::invalid(
                "key",
                format!(
                    "a {} key is not a security key; a second-factor key must be of type {} (made with `ssh-keygen -t ed25519-sk` or `-t ecdsa-sk`)",
                    key.algorithm().as_str(),
                    KEY_TYPES.join(" or ")
                ),
            ));
        }
    };
    if !application.starts_with("ssh:") {
        return Err(Error::invalid(
            "key",
            format!(
                "the key was made for the application '{}', not for SSH (it must start with 'ssh:')",
                crate::audit::printable(application)
            ),
        ));
    }
    Ok(key)
}

/// Registers `line` as a second-factor key of `user_id`, named `name` (the key's comment
/// when empty). A key that is already one of the user's login keys is refused: one touch
/// must not stand for both credentials. Closes the user's first-login enrollment window.
pub async fn add(db: &Db, user_id: i64, line: &str, name: &str, verify_required: bool) -> Result<SkKey> {
    let key = parse(line)?;
    let fp = ssh_keys::fingerprint(&key);
    if ssh_keys::matching(db, user_id, &key).await?.is_some() {
        return Err(Error::invalid(
            "key",
            "this key is already a login key of the account; a second-factor key must be another key",
        ));
    }
    let name = match name.trim() {
        "" => key.comment().as_str_lossy().trim().to_string(),
        n => n.to_string(),
    };
    let name: String = crate::audit::printable(&name).chars().take(100).collect();
    let mut bare = key.clone();
    bare.set_comment("");
    let openssh = bare.to_openssh().map_err(|e| Error::invalid("key", format!("cannot encode: {e}")))?;
    let mut tx = db.begin().await?;
    let row = sqlx::query(sql!(
        "INSERT INTO ssh_sk_keys (user_id, algorithm, public_key, fingerprint, name, verify_required, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(user_id)
    .bind(key.algorithm().as_str())
    .bind(openssh.trim())
    .bind(&fp)
    .bind(&name)
    .bind(i64::from(verify_required))
    .bind(time::now())
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| Error::from_insert(e, "security key", &fp))?;
    super::close_enrollment_window(&mut tx, user_id).await?;
    tx.commit().await?;
    from_row(&row)
}

/// The security keys of `user_id`, oldest first.
pub async fn of_user(db: &Db, user_id: i64) -> Result<Vec<SkKey>> {
    let rows = sqlx::query(sql!("SELECT {COLUMNS} FROM ssh_sk_keys WHERE user_id = $1 ORDER BY id"))
        .bind(user_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// How many security keys `user_id` has registered.
pub async fn count(db: &Db, user_id: i64) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM ssh_sk_keys WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(db.pool())
        .await?)
}

/// Removes the key `id` of `user_id`; false when the user has no such key. Live logins
/// are re-checked (their proof may be gone).
pub async fn remove(db: &Db, user_id: i64, id: i64) -> Result<Option<SkKey>> {
    let row = sqlx::query(sql!("DELETE FROM ssh_sk_keys WHERE user_id = $1 AND id = $2 RETURNING {COLUMNS}"))
        .bind(user_id)
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    let Some(removed) = row.as_ref().map(from_row).transpose()? else {
        return Ok(None);
    };
    crate::access::changed(db).await?;
    Ok(Some(removed))
}

/// The registered security key of `user_id` equal to `key`, if any (matched on the key
/// material and application, not only the fingerprint).
pub async fn registered(db: &Db, user_id: i64, key: &PublicKey) -> Result<Option<SkKey>> {
    if !matches!(key.key_data(), KeyData::SkEd25519(_) | KeyData::SkEcdsaSha2NistP256(_)) {
        return Ok(None);
    }
    let row = sqlx::query(sql!("SELECT {COLUMNS} FROM ssh_sk_keys WHERE user_id = $1 AND fingerprint = $2"))
        .bind(user_id)
        .bind(ssh_keys::fingerprint(key))
        .fetch_optional(db.pool())
        .await?;
    let Some(found) = row.as_ref().map(from_row).transpose()? else {
        return Ok(None);
    };
    let stored = PublicKey::from_openssh(&found.public_key).ok();
    Ok(stored.filter(|s| s.key_data() == key.key_data()).map(|_| found))
}

/// Why a security-key signature did not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The key is not one of the user's registered security keys.
    NotRegistered,
    /// The signature is not a security-key signature (no flags and counter).
    NotSecurityKey,
    /// The user-presence flag is missing: the key was not touched.
    NoPresence,
    /// The key was registered with `verify-required`, and the flag is missing.
    NoVerification,
    /// The counter did not grow: a copy of the key, or a replayed signature.
    CounterNotIncreased,
}

impl Refusal {
    /// For the audit log.
    pub fn detail(self) -> &'static str {
        match self {
            Refusal::NotRegistered => "key not registered as a security key of the user",
            Refusal::NotSecurityKey => "not a security-key signature",
            Refusal::NoPresence => "user-presence flag missing (key not touched)",
            Refusal::NoVerification => "user-verification flag missing (key registered with verify-required)",
            Refusal::CounterNotIncreased => "signature counter did not increase (cloned key or replayed signature)",
        }
    }

    /// What the user reads.
    pub fn text(self) -> &'static str {
        match self {
            Refusal::NoPresence => "The security key was not touched.",
            Refusal::NoVerification => "The security key must check your PIN (it was registered with verify-required).",
            Refusal::CounterNotIncreased => {
                "The security key's signature counter did not increase, so the signature was refused."
            }
            Refusal::NotRegistered | Refusal::NotSecurityKey => "That key is not one of your security keys.",
        }
    }
}

/// The flags and counter a security-key signature carries (the last five bytes of its
/// data, as `ssh_key` decodes them from the wire: flags, then the counter big-endian).
pub fn flags_and_counter(signature: &Signature) -> Option<(u8, u32)> {
    if !matches!(signature.algorithm(), ssh_key::Algorithm::SkEd25519 | ssh_key::Algorithm::SkEcdsaSha2NistP256) {
        return None;
    }
    let data = signature.as_bytes();
    let tail = data.len().checked_sub(5).and_then(|at| data.get(at..))?;
    let (flags, counter) = tail.split_first()?;
    Some((*flags, u32::from_be_bytes(counter.try_into().ok()?)))
}

/// Whether `flags` pass for a key registered with `verify_required`.
pub fn flags_pass(flags: u8, verify_required: bool) -> std::result::Result<(), Refusal> {
    if flags & FLAG_USER_PRESENCE == 0 {
        return Err(Refusal::NoPresence);
    }
    if verify_required && flags & FLAG_USER_VERIFICATION == 0 {
        return Err(Refusal::NoVerification);
    }
    Ok(())
}

/// Decides on a signature by `key` that the SSH transport has verified (over this
/// session, the key's application and the signed flags and counter): the key must be one
/// of `user_id`'s security keys, the flags must pass, and the counter must grow. On
/// success the counter and the last use are stored. Returns the key's fingerprint with the
/// decision, for the audit.
pub async fn check(
    db: &Db,
    user_id: i64,
    key: &PublicKey,
    signature: &Signature,
) -> Result<std::result::Result<SkKey, Refusal>> {
    let Some(found) = registered(db, user_id, key).await? else {
        return Ok(Err(Refusal::NotRegistered));
    };
    let Some((flags, counter)) = flags_and_counter(signature) else {
        return Ok(Err(Refusal::NotSecurityKey));
    };
    if let Err(r) = flags_pass(flags, found.verify_required) {
        return Ok(Err(r));
    }
    // One statement compares and moves the counter: of two logins with the same counter,
    // only one passes. A key without a counter (always 0) is accepted while it never
    // showed one.
    let counter = i64::from(counter);
    let done = sqlx::query(
        "UPDATE ssh_sk_keys SET last_counter = $1, last_used_at = $2
         WHERE id = $3 AND (last_counter < $1 OR ($1 = 0 AND last_counter = 0))",
    )
    .bind(counter)
    .bind(time::now())
    .bind(found.id)
    .execute(db.pool())
    .await?;
    if done.rows_affected() == 0 {
        return Ok(Err(Refusal::CounterNotIncreased));
    }
    Ok(Ok(found))
}

/// The security-key method. Its answer is a signature in a public-key round, which the
/// SSH front end carries to [`crate::login::security_key`]; a typed answer never passes.
pub struct SshSk;

#[async_trait]
impl SecondFactor for SshSk {
    fn method(&self) -> Method {
        Method::SshSk
    }

    async fn challenge(&self, _gw: &Gateway, _user: &User, _login: &super::LoginContext) -> Result<Challenge> {
        Ok(Challenge {
            method: Method::SshSk,
            prompt: format!("{}: ", Method::SshSk.label()),
            echo: false,
            instructions: "Your SSH client now signs with your security key: touch it when it blinks.".into(),
            pending: None,
            can_wait: false,
            state: None,
            webauthn: None,
        })
    }

    async fn verify(&self, _gw: &Gateway, _user: &User, _c: &mut Challenge, _answer: &str) -> Result<Verdict> {
        Ok(Verdict::Rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519_SK: &str = "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAICd9Wy2Sml8Y30qNePI4LTSnHrzPDpP3NaU5ZEh+XBIMAAAABHNzaDo= test";
    const ECDSA_SK: &str = "sk-ecdsa-sha2-nistp256@openssh.com AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAAIbmlzdHAyNTYAAABBBKIEu8G7gZ8pvT7vDfgD0caYXMoLkNNGZbPucztwrVMupJQMGCSKARLaqFHHFDBZN7HpmABu90a1HmSmA3NBa2cAAAAEc3NoOg== root@vm";

    #[test]
    fn takes_security_keys_and_refuses_other_types() {
        assert!(parse(ED25519_SK).is_ok());
        assert!(parse(ECDSA_SK).is_ok());
        let plain = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x";
        let e = parse(plain).unwrap_err().to_string();
        assert!(e.contains("not a security key") && e.contains("ed25519-sk"), "{e}");
    }

    /// Made by OpenSSH 9.2 (`ssh-keygen -t ed25519-sk` / `-t ecdsa-sk`, then `ssh-keygen -Y
    /// sign -n file` over [`VECTOR_MESSAGE`]) through its sk-dummy middleware, which signs
    /// with the key's flags (user presence) and the counter 0x12345678.
    const VECTORS: [(&str, &str); 2] = [
        (
            "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIPqp2/Es1Cse9q9YXcukrfQlDrj0lSXhgCLRRMuIVKJxAAAABHNzaDo= vector",
            "-----BEGIN SSH SIGNATURE-----\n\
U1NIU0lHAAAAAQAAAEoAAAAac2stc3NoLWVkMjU1MTlAb3BlbnNzaC5jb20AAAAg+qnb8S\n\
zUKx72r1hdy6St9CUOuPSVJeGAItFEy4hUonEAAAAEc3NoOgAAAARmaWxlAAAAAAAAAAZz\n\
aGE1MTIAAABnAAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAQOC5bRhM0xDhoz\n\
HcxOy7EF9Id2DXW4wvFtnDIagpCYHjK+KM+1Ey2R27d5ajNeaY7QPQ6fw4Qevkg7VTIvx9\n\
OwIBEjRWeA==\n\
-----END SSH SIGNATURE-----",
        ),
        (
            "sk-ecdsa-sha2-nistp256@openssh.com AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAAIbmlzdHAyNTYAAABBBDuQ4BQVu30waf6BJnMpmT6DMsuA4GJMUmixeiT5dxe+nw/dDKJg9ujXIBcs4BS3QFPYIrC5FWx+KBnQvn0lT+kAAAAEc3NoOg== vector",
            "-----BEGIN SSH SIGNATURE-----\n\
U1NIU0lHAAAAAQAAAH8AAAAic2stZWNkc2Etc2hhMi1uaXN0cDI1NkBvcGVuc3NoLmNvbQ\n\
AAAAhuaXN0cDI1NgAAAEEEO5DgFBW7fTBp/oEmcymZPoMyy4DgYkxSaLF6JPl3F76fD90M\n\
omD26NcgFyzgFLdAU9gisLkVbH4oGdC+fSVP6QAAAARzc2g6AAAABGZpbGUAAAAAAAAABn\n\
NoYTUxMgAAAHkAAAAic2stZWNkc2Etc2hhMi1uaXN0cDI1NkBvcGVuc3NoLmNvbQAAAEoA\n\
AAAhAIzweGqUDeejRBfAVfJtgN+RHZZACagpnn1ao8TGt3mqAAAAIQDJ+s3uWqJ5Rpi2Ct\n\
LuSQEufOdQ/aYwdRd4UakYSYG7YAESNFZ4\n\
-----END SSH SIGNATURE-----",
        ),
    ];
    const VECTOR_MESSAGE: &[u8] = b"gatehouse vector\n";

    #[test]
    fn openssh_signatures_verify_and_carry_their_flags_and_counter() {
        for (line, pem) in VECTORS {
            let key = parse(line).expect("an OpenSSH security key");
            let sig = ssh_key::SshSig::from_pem(pem).expect("an OpenSSH signature");
            key.verify("file", VECTOR_MESSAGE, &sig).expect("OpenSSH's signature verifies");
            assert_eq!(flags_and_counter(sig.signature()), Some((FLAG_USER_PRESENCE, 0x1234_5678)), "{line}");
            // The flags are signed: the verification flag added afterwards breaks it.
            let mut forged = sig.signature().as_bytes().to_vec();
            let at = forged.len() - 5;
            forged[at] |= FLAG_USER_VERIFICATION;
            let forged = Signature::new(sig.signature().algorithm(), forged).expect("same layout");
            assert_eq!(flags_and_counter(&forged), Some((FLAG_USER_PRESENCE | FLAG_USER_VERIFICATION, 0x1234_5678)));
            let forged = ssh_key::SshSig::new(key.key_data().clone(), "file", sig.hash_alg(), forged).expect("sshsig");
            assert!(key.verify("file", VECTOR_MESSAGE, &forged).is_err(), "{line}: a changed flag still verifies");
        }
    }

    #[test]
    fn flags_need_presence_and_verification_when_required() {
        assert_eq!(flags_pass(0x01, false), Ok(()));
        assert_eq!(flags_pass(0x00, false), Err(Refusal::NoPresence));
        assert_eq!(flags_pass(0x04, false), Err(Refusal::NoPresence));
        assert_eq!(flags_pass(0x01, true), Err(Refusal::NoVerification));
        assert_eq!(flags_pass(0x05, true), Ok(()));
    }
}
