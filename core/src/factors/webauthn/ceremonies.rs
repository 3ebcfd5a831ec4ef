//! The rows of `webauthn_ceremonies`: a registration or assertion in progress, kept in the
//! database so that any node can finish what another began. Each is bound to one user, one
//! kind and one binding (what it is for), used once, and valid for [`TTL_SECS`].

use super::Refusal;
use crate::{Gateway, Result, time, vault};

/// How long a ceremony may be finished after it began: the browser's own timeout.
pub const TTL_SECS: i64 = 300;

/// A registration ceremony.
pub(super) const REGISTER: &str = "register";
/// An assertion ceremony.
pub(super) const ASSERT: &str = "assert";

/// What a claimed ceremony carried.
pub(super) struct Claimed {
    /// The relying party's state (JSON).
    pub state: String,
    /// For a registration: the name the key gets.
    pub name: String,
}

/// Stores a new ceremony; returns the id the browser carries back (only its hash is kept).
pub(super) async fn create(
    gw: &Gateway,
    user_id: i64,
    kind: &str,
    binding: &str,
    name: &str,
    state: &str,
) -> Result<String> {
    let now = time::now();
    // Finished and expired ceremonies are of no use once they expired; forget them.
    sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at < $1")
        .bind(now - TTL_SECS)
        .execute(gw.db.pool())
        .await?;
    let id = hex::encode(vault::random_bytes(32));
    sqlx::query(
        "INSERT INTO webauthn_ceremonies (id_hash, user_id, kind, binding, name, state, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(vault::token_hash(&id))
    .bind(user_id)
    .bind(kind)
    .bind(binding)
    .bind(name)
    .bind(state)
    .bind(now)
    .bind(now + TTL_SECS)
    .execute(gw.db.pool())
    .await?;
    Ok(id)
}

/// Takes the ceremony `id` of `user_id` for a finish, once: it is marked used before
/// anything else is checked, so of two finishes racing (on any nodes) one at most goes on.
/// A ceremony of another user or kind is unknown; one already used, of another binding or
/// expired is refused.
pub(super) async fn claim(
    gw: &Gateway,
    user_id: i64,
    id: &str,
    kind: &str,
    binding: &str,
) -> Result<std::result::Result<Claimed, Refusal>> {
    let id_hash = vault::token_hash(id.trim());
    type Row = (i64, String, String, String, String, i64);
    let row: Option<Row> = sqlx::query_as(
        "SELECT user_id, kind, binding, name, state, expires_at FROM webauthn_ceremonies WHERE id_hash = $1",
    )
    .bind(&id_hash)
    .fetch_optional(gw.db.pool())
    .await?;
    let Some((owner, row_kind, row_binding, name, state, expires_at)) = row else {
        return Ok(Err(Refusal::UnknownCeremony));
    };
    if owner != user_id || row_kind != kind {
        return Ok(Err(Refusal::UnknownCeremony));
    }
    let now = time::now();
    let taken = sqlx::query("UPDATE webauthn_ceremonies SET used_at = $1 WHERE id_hash = $2 AND used_at IS NULL")
        .bind(now)
        .bind(&id_hash)
        .execute(gw.db.pool())
        .await?;
    if taken.rows_affected() != 1 {
        return Ok(Err(Refusal::Used));
    }
    if !vault::constant_time_eq(row_binding.as_bytes(), binding.as_bytes()) {
        return Ok(Err(Refusal::OtherBinding));
    }
    if now >= expires_at {
        return Ok(Err(Refusal::Expired));
    }
    Ok(Ok(Claimed { state, name }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::{self, NewUser};

    async fn gateway(dir: &tempfile::TempDir) -> Gateway {
        let config = crate::Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
        Gateway::open(config).await.expect("gateway")
    }

    #[tokio::test]
    async fn a_ceremony_is_its_users_for_its_binding_once_and_not_after_it_expired() {
        let dir = tempfile::tempdir().expect("temp dir");
        let gw = gateway(&dir).await;
        let alice = users::create(&gw.db, NewUser { name: "alice", ..Default::default() }).await.unwrap();
        let bob = users::create(&gw.db, NewUser { name: "bob", ..Default::default() }).await.unwrap();
        let claim = |user: i64, id: String, kind: &'static str, binding: &'static str| {
            let gw = gw.clone();
            async move { claim(&gw, user, &id, kind, binding).await.unwrap().map(|c| c.state) }
        };

        let id = create(&gw, alice.id, ASSERT, "login:web:one", "", "{}").await.unwrap();
        assert_eq!(claim(bob.id, id.clone(), ASSERT, "login:web:one").await.err(), Some(Refusal::UnknownCeremony));
        assert_eq!(claim(alice.id, id.clone(), REGISTER, "login:web:one").await.err(), Some(Refusal::UnknownCeremony));
        assert_eq!(
            claim(alice.id, "not an id".into(), ASSERT, "login:web:one").await.err(),
            Some(Refusal::UnknownCeremony)
        );
        assert_eq!(claim(alice.id, id.clone(), ASSERT, "login:web:one").await.ok(), Some("{}".to_string()));
        assert_eq!(claim(alice.id, id, ASSERT, "login:web:one").await.err(), Some(Refusal::Used), "used once");

        let other = create(&gw, alice.id, ASSERT, "login:web:one", "", "{}").await.unwrap();
        assert_eq!(claim(alice.id, other.clone(), ASSERT, "login:web:two").await.err(), Some(Refusal::OtherBinding));
        assert_eq!(
            claim(alice.id, other, ASSERT, "login:web:one").await.err(),
            Some(Refusal::Used),
            "spent by the try"
        );

        let old = create(&gw, alice.id, ASSERT, "approval:7", "", "{}").await.unwrap();
        sqlx::query("UPDATE webauthn_ceremonies SET expires_at = $1 WHERE id_hash = $2")
            .bind(time::now() - 1)
            .bind(vault::token_hash(&old))
            .execute(gw.db.pool())
            .await
            .unwrap();
        assert_eq!(claim(alice.id, old, ASSERT, "approval:7").await.err(), Some(Refusal::Expired));
    }
}
