//! The second factor given as a signature by a security key in an SSH public-key round
//! ([`crate::factors::ssh_sk`]): counted, checked, recorded and audited like a typed
//! answer, so a refused signature counts towards the lock as a wrong code does.

use ssh_key::{PublicKey, Signature};

use super::{AuditKind, Outcome, event, failed};
use crate::factors::ssh_sk::{self, Refusal};
use crate::factors::{LoginContext, Method};
use crate::lockout::{self, Admission};
use crate::metrics::{Step, StepOutcome};
use crate::users::{self, User};
use crate::{Gateway, Result, ssh_keys};

/// The decision on a security-key signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySignature {
    Accepted,
    Refused(Refusal),
    /// Too many failures: refused before the signature was looked at.
    Locked,
    /// Too many guesses in flight: not checked, not counted; the user may try again.
    Busy,
}

impl KeySignature {
    /// What the user reads when it did not pass (`None` when it did).
    pub fn text(self) -> Option<&'static str> {
        match self {
            KeySignature::Accepted => None,
            KeySignature::Refused(r) => Some(r.text()),
            KeySignature::Locked => Some("Too many failed attempts."),
            KeySignature::Busy => Some("The signature could not be checked now. Try again."),
        }
    }
}

/// Decides on a signature by `key`, verified by the SSH transport, offered as `user`'s
/// second factor: admitted against the lock first, then [`ssh_sk::check`]. Passing makes
/// the method the user's default; every outcome is audited, and a refusal counts as a
/// failed second factor.
pub async fn security_key(
    gw: &Gateway,
    login: &LoginContext,
    user: &User,
    key: &PublicKey,
    signature: &Signature,
) -> Result<KeySignature> {
    let method = Method::SshSk;
    let fp = ssh_keys::fingerprint(key);
    let attempt = match lockout::admit(&gw.db, &gw.config.lockout, &login.user_name, &login.source).await? {
        Admission::Admitted(a) => a,
        Admission::Locked(_) => {
            gw.audit(
                event(login, AuditKind::LoginFactor, Outcome::Failure)
                    .detail(format!("{method} refused while locked, key {fp}")),
            )
            .await?;
            return Ok(KeySignature::Locked);
        }
        Admission::Busy => {
            gw.audit(
                event(login, AuditKind::LoginFactor, Outcome::Failure)
                    .detail(format!("{method} refused unchecked: too many guesses in flight")),
            )
            .await?;
            return Ok(KeySignature::Busy);
        }
    };
    let started = std::time::Instant::now();
    let checked = match ssh_sk::check(&gw.db, user.id, key, signature).await {
        Ok(c) => c,
        Err(e) => {
            // Not the user's fault: the attempt is not counted, and the login fails closed.
            attempt.passed(&gw.db).await?;
            gw.metrics.factor(login.frontend, Step::Factor, method, StepOutcome::Error, started.elapsed());
            return Err(e);
        }
    };
    match checked {
        Ok(k) => {
            gw.metrics.factor(login.frontend, Step::Factor, method, StepOutcome::Success, started.elapsed());
            attempt.passed(&gw.db).await?;
            users::set_last_method(&gw.db, user.id, method).await?;
            gw.audit(
                event(login, AuditKind::LoginFactor, Outcome::Success)
                    .detail(format!("{method} key {} ({fp}) via {}", k.name, login.frontend)),
            )
            .await?;
            Ok(KeySignature::Accepted)
        }
        Err(refusal) => {
            let outcome =
                if refusal == Refusal::CounterNotIncreased { StepOutcome::Replayed } else { StepOutcome::Failure };
            gw.metrics.factor(login.frontend, Step::Factor, method, outcome, started.elapsed());
            tracing::warn!(user = %user.name, key = %fp, why = refusal.detail(), "security key signature refused");
            failed(gw, login, attempt, AuditKind::LoginFactor, format!("{method}: {}, key {fp}", refusal.detail()))
                .await?;
            Ok(KeySignature::Refused(refusal))
        }
    }
}
