//! Sudo mode: a change of credentials on the web needs a fresh proof of who is asking.
//!
//! A trusted-browser cookie stands in for the second factor at the web login, so a
//! full web session does not prove that the person at the keyboard holds a factor. Had
//! that session been enough to add a factor, a key, an application passcode or a new
//! password, a stolen password plus a stolen cookie would turn into SSH access without
//! any factor. So each such change asks for a proof given in *this* web session within
//! [`FRESH_PROOF_SECS`]:
//!
//! - a second factor, when the user has one enrolled that the policy lets them use;
//! - the password, when they have none (2FA not required of them, or a forced user doing
//!   the first enrollment); a factor passed recently counts as well.
//!
//! The login's steps count when they are recent (see
//! [`crate::web_sessions::Proofs`]); a login that skipped the factor because of a
//! trusted browser records only the password. Each change allowed is then mailed to the
//! user ([`Grant::done`]), each refused one audited as `account.sudo_required`, each
//! confirmation as `account.sudo_confirmed`.

use std::fmt;

use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::factors::{Method, MethodSet};
use crate::policy::{self, Requirement, Resolution};
use crate::users::User;
use crate::web_sessions::{self, ProofKind, Proofs, WebSession};
use crate::{Gateway, Result, notify, time};

/// How recent (in seconds) a proof must be for a change of credentials.
pub const FRESH_PROOF_SECS: i64 = 5 * 60;

/// The proof a change needs from this user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// One of these factors, the default (last-used) one first.
    Factor(Vec<Method>),
    /// The account password: the user has no factor to prove.
    Password,
}

impl Proof {
    /// What kind of proof this is.
    pub fn kind(&self) -> ProofKind {
        match self {
            Proof::Factor(_) => ProofKind::Factor,
            Proof::Password => ProofKind::Password,
        }
    }

    fn noun(&self) -> &'static str {
        match self {
            Proof::Factor(_) => "second factor",
            Proof::Password => "password",
        }
    }
}

/// The proof `user` must give: a factor when they have a usable one, the password when
/// not. The methods are the ones the login would offer were a factor required of them
/// (the same rule, [`policy::decide`], so the two cannot drift), whatever their exemption:
/// an exempt user who enrolled a factor proves it like anyone else.
pub async fn proof_for(gw: &Gateway, user: &User) -> Result<Proof> {
    let resolution = policy::resolve(&gw.db, user).await?;
    if resolution.enrolled.is_empty() {
        return Ok(Proof::Password);
    }
    let allowed = resolution.allowed.clone().unwrap_or_else(MethodSet::all);
    let mut asked = user.clone();
    asked.exempt_2fa = false;
    let required = Resolution { forced_globally: true, ..resolution };
    Ok(match policy::decide(&asked, &required, &allowed) {
        // Proven on the web: a method that signs only over SSH does not count here (with
        // no other method, no proof can be given on the web: it fails closed).
        Requirement::Required { mut methods } => {
            methods.retain(|m| m.on_web());
            Proof::Factor(methods)
        }
        _ => Proof::Password,
    })
}

/// Whether a session that saw `proofs` holds a `proof` younger than
/// [`FRESH_PROOF_SECS`] at `now`. A factor also stands for the password.
pub fn is_fresh(proofs: Proofs, proof: &Proof, now: i64) -> bool {
    let at = match proof {
        Proof::Factor(_) => proofs.factor_at,
        Proof::Password => proofs.password_at.max(proofs.factor_at),
    };
    at.is_some_and(|t| now.saturating_sub(t) < FRESH_PROOF_SECS)
}

/// The proof still missing before `session` may change `user`'s credentials; `None`
/// when the session is fresh. For pages that only show a form (nothing is audited).
pub async fn missing(gw: &Gateway, session: &WebSession, user: &User) -> Result<Option<Proof>> {
    let proof = proof_for(gw, user).await?;
    Ok((!is_fresh(session.proofs, &proof, time::now())).then_some(proof))
}

/// The answer to "may this session make this change now?".
#[derive(Debug)]
pub enum Access {
    Granted(Grant),
    /// No: this proof must be given first. The refusal is audited.
    Refused(Proof),
}

/// Leave to change the credentials of one user, for one request. Only [`check`] makes
/// one; [`Grant::done`] reports the change once it is made.
#[derive(Debug)]
#[must_use = "report the change with Grant::done"]
pub struct Grant {
    user_name: String,
    session: String,
    source: String,
    /// Who hears of the change: the addresses as they were before it, so that a change
    /// of the email factor is reported to the address it replaces.
    recipients: Vec<String>,
}

/// Decides whether `session` may now make the change `what` (a page or action, for the
/// audit log) to `user`'s credentials from `source`. A refusal is audited as
/// `account.sudo_required`.
pub async fn check(gw: &Gateway, session: &WebSession, user: &User, source: &str, what: &str) -> Result<Access> {
    if let Some(proof) = missing(gw, session, user).await? {
        let minutes = FRESH_PROOF_SECS / 60;
        gw.audit(
            AuditEvent::new(AuditKind::AccountSudoRequired, Outcome::Failure)
                .actor(user.name.clone())
                .user(user.name.clone())
                .source(source.to_string())
                .detail(format!(
                    "{what} refused: no {} given in this session in the last {minutes} minutes, via web",
                    proof.noun()
                )),
        )
        .await?;
        return Ok(Access::Refused(proof));
    }
    Ok(Access::Granted(Grant {
        user_name: user.name.clone(),
        session: session.id_hash.clone(),
        source: source.to_string(),
        recipients: notify::recipients(gw, user).await?,
    }))
}

impl Grant {
    /// Reports a change made under this grant: the user is mailed, and the enrollment of a
    /// factor the user just proved to hold counts as a fresh factor for this session.
    pub async fn done(self, gw: &Gateway, change: &Change) -> Result<()> {
        if change.proves_factor() {
            web_sessions::stamp(&gw.db, &self.session, ProofKind::Factor, time::now()).await?;
        }
        notify::account_changed(gw, &self.user_name, &self.recipients, &change.to_string(), &self.source).await
    }
}

/// Records a proof given for a change (the confirmation page): the session, stored and
/// in hand, is fresh from now on, and the confirmation is audited as
/// `account.sudo_confirmed`. The caller has checked the proof through [`crate::login`],
/// which counted and audited the attempt.
pub async fn confirmed(
    gw: &Gateway,
    session: &mut WebSession,
    user: &User,
    source: &str,
    kind: ProofKind,
    how: &str,
) -> Result<()> {
    let now = time::now();
    web_sessions::stamp(&gw.db, &session.id_hash, kind, now).await?;
    match kind {
        ProofKind::Password => session.proofs.password_at = Some(now),
        ProofKind::Factor => session.proofs.factor_at = Some(now),
    }
    gw.audit(
        AuditEvent::new(AuditKind::AccountSudoConfirmed, Outcome::Success)
            .actor(user.name.clone())
            .user(user.name.clone())
            .source(source.to_string())
            .detail(format!("{how} via web")),
    )
    .await
}

/// A change of credentials, as the user is told of it. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Totp,
    BackupCodes,
    Keyword,
    /// The public id of the YubiKey bound.
    Yubikey(String),
    /// The address that became the email factor.
    Email(String),
    FactorRemoved(Method),
    /// The name of the security key or passkey registered.
    SecurityKeyAdded(String),
    SecurityKeyRemoved(String),
    /// The fingerprint of the key.
    KeyAdded(String),
    KeyRemoved(String),
    /// The fingerprint of the security key registered as an SSH second factor.
    SshSecurityKeyAdded(String),
    SshSecurityKeyRemoved(String),
    /// The label of the passcode.
    PasscodeCreated(String),
    Password,
}

impl Change {
    /// Whether making the change proved the user holds the factor (a code from the new
    /// authenticator, a touch of the key, the code mailed to the address).
    fn proves_factor(&self) -> bool {
        matches!(self, Change::Totp | Change::Yubikey(_) | Change::Email(_) | Change::SecurityKeyAdded(_))
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Totp => f.write_str("an authenticator app was set up as a second factor"),
            Change::BackupCodes => f.write_str("a new set of backup codes was made"),
            Change::Keyword => f.write_str("the access keyword was set"),
            Change::Yubikey(id) => write!(f, "YubiKey {id} was bound as a second factor"),
            Change::Email(address) => write!(f, "{} became the email second factor", crate::mail::mask(address)),
            Change::FactorRemoved(method) => {
                write!(f, "the second factor \"{}\" was removed", method.label())
            }
            Change::SecurityKeyAdded(name) => {
                write!(f, "security key \"{name}\" was registered as a second factor")
            }
            Change::SecurityKeyRemoved(name) => write!(f, "security key \"{name}\" was removed"),
            Change::KeyAdded(fp) => write!(f, "SSH key {fp} was added"),
            Change::KeyRemoved(fp) => write!(f, "SSH key {fp} was removed"),
            Change::SshSecurityKeyAdded(fp) => write!(f, "security key {fp} became a second factor for SSH"),
            Change::SshSecurityKeyRemoved(fp) => write!(f, "security key {fp} was removed from the second factors"),
            Change::PasscodeCreated(label) => {
                write!(f, "application passcode \"{label}\" was created")
            }
            Change::Password => f.write_str("the password was changed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::{self, NewUser};

    const NOW: i64 = 1_000_000;

    #[test]
    fn a_factor_must_be_younger_than_the_window() {
        let factor = Proof::Factor(vec![Method::Totp]);
        let at = |password_at: Option<i64>, factor_at: Option<i64>| Proofs { password_at, factor_at };
        assert!(is_fresh(at(None, Some(NOW - FRESH_PROOF_SECS + 1)), &factor, NOW));
        assert!(!is_fresh(at(None, Some(NOW - FRESH_PROOF_SECS)), &factor, NOW), "expired");
        assert!(!is_fresh(at(Some(NOW), None), &factor, NOW), "a password (trusted browser) is no factor");
        assert!(!is_fresh(Proofs::default(), &factor, NOW));
    }

    #[test]
    fn without_a_factor_the_password_or_a_factor_will_do() {
        let at = |password_at: Option<i64>, factor_at: Option<i64>| Proofs { password_at, factor_at };
        assert!(is_fresh(at(Some(NOW - 10), None), &Proof::Password, NOW));
        assert!(is_fresh(at(None, Some(NOW - 10)), &Proof::Password, NOW));
        assert!(!is_fresh(at(Some(NOW - FRESH_PROOF_SECS), None), &Proof::Password, NOW), "expired");
        assert!(!is_fresh(Proofs::default(), &Proof::Password, NOW));
    }

    #[tokio::test]
    async fn the_proof_is_a_usable_factor_when_there_is_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let gw = Gateway::open(crate::Config { data_dir: dir.path().to_path_buf(), ..Default::default() })
            .await
            .expect("gateway");
        let alice = users::create(&gw.db, NewUser { name: "alice", ..Default::default() }).await.unwrap();
        assert_eq!(proof_for(&gw, &alice).await.unwrap(), Proof::Password);
        crate::factors::keyword::set(&gw, alice.id, "purple elephant").await.unwrap();
        assert_eq!(proof_for(&gw, &alice).await.unwrap(), Proof::Factor(vec![Method::Keyword]));
        // An exempt user still proves the factor they have.
        users::set_exempt(&gw.db, "alice", true).await.unwrap();
        let alice = users::get(&gw.db, "alice").await.unwrap();
        assert_eq!(proof_for(&gw, &alice).await.unwrap(), Proof::Factor(vec![Method::Keyword]));
        // A factor the policy no longer allows cannot be asked: the password it is.
        policy::set_allowed_methods(&gw.db, &MethodSet::parse_list("totp").unwrap()).await.unwrap();
        assert_eq!(proof_for(&gw, &alice).await.unwrap(), Proof::Password);
    }

    #[test]
    fn changes_read_as_sentences_without_secrets() {
        assert_eq!(Change::KeyAdded("SHA256:x".into()).to_string(), "SSH key SHA256:x was added");
        assert_eq!(
            Change::Email("alice@example.com".into()).to_string(),
            "a***@example.com became the email second factor"
        );
        assert!(Change::Totp.proves_factor() && !Change::Keyword.proves_factor());
    }
}
