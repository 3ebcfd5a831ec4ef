//! YubiKey OTP: the key types a one-time password when touched; YubiCloud (or a
//! self-hosted validation server) checks it with Yubico's validation protocol 2.0
//! ([`client`]).
//!
//! A key is bound to a user by its public id, the OTP's first 12 characters, which the
//! enrolled factor row holds in its `secret` column (not a secret: every OTP shows it,
//! but it is the factor's data). An OTP from another key is refused before any server is
//! asked. An accepted OTP is spent at the service; the row keeps a digest of the last one
//! in `last_step`, so the same OTP is refused here even by a server that forgot it (a
//! restored backup, a fresh self-hosted install). No server answering is
//! [`Verdict::Unavailable`]: the login fails closed.

pub mod client;
pub mod otp;

use async_trait::async_trait;
use subtle::ConstantTimeEq;

use super::{Challenge, Method, SecondFactor, Verdict, upsert};
use crate::users::User;
use crate::{Gateway, time};
use client::{ClientError, Outcome};
pub use otp::{Otp, OtpError};

/// The YubiKey OTP method.
pub struct Yubikey;

/// Why an enrollment did not bind the key. Nothing was stored in any case.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("YubiKey OTPs cannot be checked: the [yubikey] client_id and secret_key are not configured")]
    NotConfigured,
    #[error("not a YubiKey OTP: {0}")]
    Format(#[from] OtpError),
    #[error("the OTP has no 12-character public id; only keys with one (as Yubico programs them) can be bound")]
    NoPublicId,
    #[error("the validation server says this OTP is not valid")]
    Rejected,
    #[error("this OTP was already used; touch the key again for a fresh one")]
    Replayed,
    #[error("the OTP could not be checked: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Core(#[from] crate::Error),
}

/// The key bound to a user: factor row id, public id, digest of the last accepted OTP.
struct Bound {
    id: i64,
    public_id: String,
    last_otp: Option<i64>,
}

async fn bound(gw: &Gateway, user_id: i64) -> crate::Result<Option<Bound>> {
    let row: Option<(i64, Option<String>, Option<i64>)> =
        sqlx::query_as("SELECT id, secret, last_step FROM factors WHERE user_id = $1 AND method = 'yubikey'")
            .bind(user_id)
            .fetch_optional(gw.db.pool())
            .await?;
    Ok(row.and_then(|(id, public_id, last_otp)| {
        Some(Bound { id, public_id: public_id.filter(|p| otp::is_public_id(p))?, last_otp })
    }))
}

/// Asks the validation servers about `otp`, recording what was seen for the health page.
async fn check(gw: &Gateway, user: &User, otp: &Otp) -> Result<Outcome, ClientError> {
    let outcome = client::verify(&gw.config.yubikey, otp).await;
    match &outcome {
        Ok(_) => crate::health::record_ok(gw, Method::Yubikey).await,
        Err(e) => {
            tracing::error!(user = %user.name, method = "yubikey", error = %e, "YubiKey OTP could not be checked; refusing");
            crate::health::record_error(gw, Method::Yubikey, &e.to_string()).await;
        }
    }
    outcome
}

/// Binds the key that typed `otp_text` to `user`, replacing any key bound before, once a
/// validation server has accepted the OTP (which spends it: it cannot log in afterwards).
/// Returns the key's public id.
pub async fn enroll(gw: &Gateway, user: &User, otp_text: &str) -> Result<String, EnrollError> {
    if !gw.config.yubikey.enabled() {
        return Err(EnrollError::NotConfigured);
    }
    let otp = Otp::parse(otp_text)?;
    if !otp::is_public_id(otp.public_id()) {
        return Err(EnrollError::NoPublicId);
    }
    match check(gw, user, &otp).await {
        Ok(Outcome::Valid) => {}
        Ok(Outcome::Replayed) => return Err(EnrollError::Replayed),
        Ok(Outcome::Invalid) => return Err(EnrollError::Rejected),
        Err(e) => return Err(EnrollError::Unavailable(e.to_string())),
    }
    let public_id = otp.public_id().to_string();
    let mut tx = gw.db.begin().await?;
    upsert(&mut tx, user.id, Method::Yubikey, &public_id, &format!("YubiKey {public_id}")).await?;
    sqlx::query("UPDATE factors SET last_step = $1 WHERE user_id = $2 AND method = 'yubikey'")
        .bind(otp.fingerprint())
        .bind(user.id)
        .execute(&mut *tx)
        .await
        .map_err(crate::Error::from)?;
    tx.commit().await.map_err(crate::Error::from)?;
    Ok(public_id)
}

/// The public id of the key bound to `user_id`, if any.
pub async fn public_id(gw: &Gateway, user_id: i64) -> crate::Result<Option<String>> {
    Ok(bound(gw, user_id).await?.map(|b| b.public_id))
}

#[async_trait]
impl SecondFactor for Yubikey {
    fn method(&self) -> Method {
        Method::Yubikey
    }

    fn available(&self, gw: &Gateway) -> bool {
        gw.config.yubikey.enabled()
    }

    async fn challenge(&self, _gw: &Gateway, _user: &User, _login: &super::LoginContext) -> crate::Result<Challenge> {
        Ok(Challenge {
            method: Method::Yubikey,
            prompt: format!("{}: ", Method::Yubikey.label()),
            echo: false,
            instructions: "Touch your YubiKey.".into(),
            pending: None,
            can_wait: false,
            state: None,
            webauthn: None,
        })
    }

    async fn verify(&self, gw: &Gateway, user: &User, _c: &mut Challenge, answer: &str) -> crate::Result<Verdict> {
        let Ok(otp) = Otp::parse(answer) else { return Ok(Verdict::Rejected) };
        let Some(key) = bound(gw, user.id).await? else { return Ok(Verdict::Rejected) };
        // Another key's OTP (or a typed guess) never reaches the service.
        let same_key: bool = otp.public_id().as_bytes().ct_eq(key.public_id.as_bytes()).into();
        if !same_key {
            tracing::info!(user = %user.name, method = "yubikey", "OTP from a key that is not bound to the user");
            return Ok(Verdict::Rejected);
        }
        let fingerprint = otp.fingerprint();
        if key.last_otp == Some(fingerprint) {
            return Ok(Verdict::Replayed);
        }
        match check(gw, user, &otp).await {
            Ok(Outcome::Valid) => {}
            Ok(Outcome::Replayed) => return Ok(Verdict::Replayed),
            Ok(Outcome::Invalid) => return Ok(Verdict::Rejected),
            Err(_) => return Ok(Verdict::Unavailable),
        }
        // One winner even if two logins raced with the same OTP past the check above.
        let done = sqlx::query(
            "UPDATE factors SET last_step = $1, last_used_at = $2
             WHERE id = $3 AND (last_step IS NULL OR last_step <> $1)",
        )
        .bind(fingerprint)
        .bind(time::now())
        .bind(key.id)
        .execute(gw.db.pool())
        .await?;
        Ok(if done.rows_affected() == 1 { Verdict::Accepted } else { Verdict::Replayed })
    }
}
