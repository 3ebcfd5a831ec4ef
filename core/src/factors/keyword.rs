//! Access keyword: a second secret phrase, stored as an argon2id hash.

use async_trait::async_trait;

use super::{Challenge, Method, SecondFactor, Verdict, upsert};
use crate::users::User;
use crate::{Error, Gateway, Result, time, vault};

/// The access-keyword method.
pub struct Keyword;

/// Sets (or replaces) the user's keyword: at least 6 characters.
pub async fn set(gw: &Gateway, user_id: i64, keyword: &str) -> Result<()> {
    let n = keyword.chars().count();
    if !(6..=256).contains(&n) {
        return Err(Error::invalid("keyword", "must be 6-256 characters"));
    }
    let hash = vault::hash_blocking(keyword.to_string()).await?;
    let mut tx = gw.db.begin().await?;
    upsert(&mut tx, user_id, Method::Keyword, &hash, "access keyword").await?;
    tx.commit().await?;
    Ok(())
}

#[async_trait]
impl SecondFactor for Keyword {
    fn method(&self) -> Method {
        Method::Keyword
    }

    async fn verify(&self, gw: &Gateway, user: &User, _c: &mut Challenge, answer: &str) -> Result<Verdict> {
        let hash: Option<Option<String>> =
            sqlx::query_scalar("SELECT secret FROM factors WHERE user_id = $1 AND method = 'keyword'")
                .bind(user.id)
                .fetch_optional(gw.db.pool())
                .await?;
        let stored = hash.flatten();
        let ok = vault::verify_blocking(
            answer.to_string(),
            stored.clone().unwrap_or_else(|| vault::dummy_hash().to_string()),
        )
        .await;
        if ok && stored.is_some() {
            sqlx::query("UPDATE factors SET last_used_at = $1 WHERE user_id = $2 AND method = 'keyword'")
                .bind(time::now())
                .bind(user.id)
                .execute(gw.db.pool())
                .await?;
            Ok(Verdict::Accepted)
        } else {
            Ok(Verdict::Rejected)
        }
    }
}
