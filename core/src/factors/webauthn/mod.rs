//! Security keys and passkeys (WebAuthn): the relying party of the gateway.
//!
//! The checks themselves are webauthn-rs's (Kanidm's, pure Rust): the signature over the
//! authenticator data and client data, the challenge, the origin and the relying-party id
//! hash, the user-presence flag, the signature counter. What this module adds:
//!
//! - **Where the relying party is.** Its id is the host of `public_url` and the only origin
//!   accepted is `public_url`'s own ([`availability`]): a key registered under another
//!   origin (another gateway, a phishing site) is refused.
//! - **Ceremony state in the database** (`ceremonies`): a registration or assertion begun
//!   on one node can be finished on any other. Each is bound to what it is for (its
//!   *binding*: a web login attempt, an SSH login waiting for an approval), used once, and
//!   expires after [`ceremonies::TTL_SECS`].
//! - **Keys per user** (`credentials`): several, named, each with its highest signature
//!   counter. An assertion whose counter does not go above it is refused and audited as
//!   `webauthn.clone_suspected`, even when two nodes check two assertions at once.
//!
//! Every refused assertion is audited as `webauthn.refused` with the reason. The web
//! login drives this through the [`SecondFactor`] implementation, [`Webauthn`]; another
//! front end (an approval page for a waiting SSH login) calls [`begin_assertion`] and
//! [`finish_assertion`] with a binding of its own.

pub mod approval;
mod ceremonies;
mod credentials;

use std::fmt;

use async_trait::async_trait;
use webauthn_rs::prelude::{
    PublicKeyCredential, RegisterPublicKeyCredential, SecurityKeyAuthentication, SecurityKeyRegistration, Url, Uuid,
    WebauthnError,
};

use super::{Challenge, Frontend, LoginContext, Method, SecondFactor, Verdict};
use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::config::Config;
use crate::users::User;
use crate::{Error, Gateway, Result};

pub use ceremonies::TTL_SECS;
pub(crate) use credentials::remove_all;
pub use credentials::{Key, keys, remove};

/// The most keys one user may register.
pub const MAX_KEYS: usize = 10;
/// The longest name of a key, in characters.
pub const MAX_NAME: usize = 64;
/// The largest browser answer read (a registration with attestation is a few KiB).
const MAX_RESPONSE: usize = 64 * 1024;
/// The binding of every registration: a registration is for the user who began it.
const REGISTRATION: &str = "registration";

/// A ceremony begun: the options to hand to the browser's `navigator.credentials`
/// (`create` for a registration, `get` for an assertion; JSON, binary fields base64url)
/// and the id of the ceremony, which the browser's answer must come back with.
#[derive(Debug, Clone)]
pub struct Ceremony {
    pub id: String,
    pub options: String,
}

/// Why a registration or an assertion was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `public_url` cannot be a relying party (see [`availability`]); the text says why.
    NotAvailable(String),
    /// No ceremony of this user and kind has that id.
    UnknownCeremony,
    /// The ceremony was begun for something else (another login, another approval).
    OtherBinding,
    /// The ceremony was already finished once.
    Used,
    /// The ceremony expired.
    Expired,
    /// The browser's answer is not a WebAuthn credential.
    Malformed,
    /// The credential is not one of this user's keys.
    UnknownCredential,
    /// The answer was made for another origin or relying party (another site).
    OtherOrigin,
    /// The signature counter did not go up: the key may have been cloned.
    CounterWentBack,
    /// The credential is already registered.
    AlreadyRegistered,
    /// The relying party's checks failed (signature, challenge, flags); webauthn-rs's
    /// reason.
    Invalid(String),
}

impl Refusal {
    /// The login verdict this refusal amounts to.
    pub fn verdict(&self) -> Verdict {
        match self {
            Refusal::Used => Verdict::Replayed,
            Refusal::Expired => Verdict::Expired,
            Refusal::NotAvailable(_) => Verdict::Unavailable,
            _ => Verdict::Rejected,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotAvailable(why) => write!(f, "security keys are not available here: {why}"),
            Refusal::UnknownCeremony => f.write_str("unknown ceremony"),
            Refusal::OtherBinding => f.write_str("the ceremony was begun for something else"),
            Refusal::Used => f.write_str("the ceremony was already used"),
            Refusal::Expired => f.write_str("the ceremony expired"),
            Refusal::Malformed => f.write_str("the answer is not a WebAuthn credential"),
            Refusal::UnknownCredential => f.write_str("not one of the user's keys"),
            Refusal::OtherOrigin => f.write_str("made for another origin or relying party"),
            Refusal::CounterWentBack => f.write_str("the signature counter did not go up (cloned key?)"),
            Refusal::AlreadyRegistered => f.write_str("the key is already registered, or has a name in use"),
            Refusal::Invalid(why) => write!(f, "refused by the relying party checks: {why}"),
        }
    }
}

/// The end of a registration.
#[derive(Debug, Clone)]
pub enum Registration {
    Registered(Key),
    Refused(Refusal),
}

/// The end of an assertion.
#[derive(Debug, Clone)]
pub enum Assertion {
    /// The user holds this key, and touched it for this binding.
    Accepted(Key),
    Refused(Refusal),
}

impl Assertion {
    /// The login verdict of this assertion.
    pub fn verdict(&self) -> Verdict {
        match self {
            Assertion::Accepted(_) => Verdict::Accepted,
            Assertion::Refused(r) => r.verdict(),
        }
    }
}

/// The relying party `public_url` makes: its id (the host) and its origin. WebAuthn
/// needs a secure context and a DNS name: `https://` with a host name, or
/// `http://localhost`. An IP address is never a relying-party id. The error says why
/// `public_url` does not do.
pub fn availability(config: &Config) -> std::result::Result<(String, Url), String> {
    let public = config.public_url();
    let url = Url::parse(&public).map_err(|e| format!("public_url ({public}) is not a URL: {e}"))?;
    let Some(host) = url.domain().map(str::to_ascii_lowercase) else {
        return Err(format!(
            "public_url ({public}) names no DNS host; browsers refuse an IP address as the relying party"
        ));
    };
    let local = host == "localhost" || host.ends_with(".localhost");
    match url.scheme() {
        "https" => {}
        "http" if local => {}
        _ => {
            return Err(format!(
                "public_url ({public}) is not https://; browsers offer security keys only to https:// sites (or http://localhost)"
            ));
        }
    }
    let origin = Url::parse(&url.origin().ascii_serialization()).map_err(|e| e.to_string())?;
    Ok((host, origin))
}

/// The relying party of this gateway: its id and its checks.
struct RelyingParty {
    id: String,
    checks: webauthn_rs::Webauthn,
}

/// The relying party of this gateway, or why there is none.
fn relying_party(gw: &Gateway) -> std::result::Result<RelyingParty, Refusal> {
    let (rp_id, origin) = availability(&gw.config).map_err(Refusal::NotAvailable)?;
    let checks = webauthn_rs::WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|b| b.rp_name("Gatehouse").build())
        .map_err(|e| Refusal::NotAvailable(format!("the relying party cannot be made: {e}")))?;
    Ok(RelyingParty { id: rp_id, checks })
}

/// The keys of `user` registered with the relying party `rp_id`: the only ones asked for
/// and accepted here.
async fn keys_here(gw: &Gateway, user: &User, rp_id: &str) -> Result<Vec<credentials::Stored>> {
    Ok(credentials::of_user(gw, user.id).await?.into_iter().filter(|s| s.rp_id == rp_id).collect())
}

/// The WebAuthn user handle of `user`: stable, opaque, and the same on every node (a MAC
/// of the user's id under the installation's key), so it names no one outside.
fn user_handle(gw: &Gateway, user: &User) -> Uuid {
    let mac = gw.vault.mac("webauthn-user-handle", &user.id.to_be_bytes());
    let mut bytes = [0u8; 16];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(mac.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0);
    }
    Uuid::from_bytes(bytes)
}

/// The credential id as stored: base64url without padding, as browsers write it.
fn credential_id(raw: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// A key's name as typed: trimmed, 1 to [`MAX_NAME`] printable characters.
fn key_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid("name", "give the key a name"));
    }
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::invalid("name", format!("at most {MAX_NAME} printable characters")));
    }
    Ok(name.to_string())
}

fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Secrets(format!("WebAuthn state cannot be written: {e}")))
}

/// Begins the registration of a new key named `name` for `user`: the options for the
/// browser's `navigator.credentials.create` (user verification preferred, the user's
/// keys excluded) and the ceremony id. Refused (`Error::Invalid`, `Error::Refused`) for a
/// bad or duplicate name, too many keys, or a gateway that cannot be a relying party.
pub async fn begin_registration(gw: &Gateway, user: &User, name: &str) -> Result<Ceremony> {
    let name = key_name(name)?;
    let rp = relying_party(gw).map_err(|r| Error::Refused(r.to_string()))?;
    let existing = credentials::of_user(gw, user.id).await?;
    if existing.len() >= MAX_KEYS {
        return Err(Error::Refused(format!("at most {MAX_KEYS} keys; remove one first")));
    }
    if existing.iter().any(|s| s.key.name == name) {
        return Err(Error::invalid("name", "you already have a key of that name"));
    }
    let exclude = existing.iter().map(|s| s.credential.cred_id().clone()).collect();
    let (mut options, state) = rp
        .checks
        .start_securitykey_registration(user_handle(gw, user), &user.name, &user.name, Some(exclude), None, None)
        .map_err(|e| Error::Refused(format!("the registration cannot begin: {e}")))?;
    // Chromium refuses to make a credential (NotSupportedError) when credProtect asks for
    // "user verification required" while user verification is only preferred. The
    // extension is a wish webauthn-rs does not enforce; the key keeps its own default.
    if let Some(extensions) = options.public_key.extensions.as_mut() {
        extensions.cred_protect = None;
    }
    let id = ceremonies::create(gw, user.id, ceremonies::REGISTER, REGISTRATION, &name, &json(&state)?).await?;
    Ok(Ceremony { id, options: json(&options)? })
}

/// Finishes the registration `ceremony_id` of `user` with the browser's answer
/// (`PublicKeyCredential` as JSON, binary fields base64url): the new key is stored, and
/// the user has the `webauthn` factor. The caller audits the enrollment.
pub async fn finish_registration(
    gw: &Gateway,
    user: &User,
    ceremony_id: &str,
    response_json: &str,
) -> Result<Registration> {
    let rp = match relying_party(gw) {
        Ok(rp) => rp,
        Err(r) => return Ok(Registration::Refused(r)),
    };
    let claimed = match ceremonies::claim(gw, user.id, ceremony_id, ceremonies::REGISTER, REGISTRATION).await? {
        Ok(c) => c,
        Err(r) => return Ok(Registration::Refused(r)),
    };
    let Ok(state) = serde_json::from_str::<SecurityKeyRegistration>(&claimed.state) else {
        return Err(Error::Secrets("a stored registration cannot be read".into()));
    };
    let Some(response) = parse::<RegisterPublicKeyCredential>(response_json) else {
        return Ok(Registration::Refused(Refusal::Malformed));
    };
    let key = match rp.checks.finish_securitykey_registration(&response, &state) {
        Ok(k) => k,
        Err(e) => return Ok(Registration::Refused(refusal(e))),
    };
    let id = credential_id(key.cred_id().as_ref());
    match credentials::insert(gw, user.id, &claimed.name, &rp.id, &id, &key).await? {
        Some(k) => Ok(Registration::Registered(k)),
        None => Ok(Registration::Refused(Refusal::AlreadyRegistered)),
    }
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    if text.len() > MAX_RESPONSE {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// What webauthn-rs's error means for the user.
fn refusal(e: WebauthnError) -> Refusal {
    match e {
        WebauthnError::InvalidRPOrigin | WebauthnError::InvalidRPIDHash | WebauthnError::CredentialCrossOrigin => {
            Refusal::OtherOrigin
        }
        WebauthnError::CredentialPossibleCompromise => Refusal::CounterWentBack,
        WebauthnError::CredentialNotFound => Refusal::UnknownCredential,
        other => Refusal::Invalid(other.to_string()),
    }
}

/// Begins an assertion by `user` for `binding` (what it is for: a web login attempt, an
/// SSH login waiting for an approval; [`finish_assertion`] must be given the same): the
/// options for the browser's `navigator.credentials.get` (the user's keys allowed, user
/// verification preferred) and the ceremony id. `Error::Refused` when the user has no key
/// or the gateway cannot be a relying party.
pub async fn begin_assertion(gw: &Gateway, user: &User, binding: &str) -> Result<Ceremony> {
    let rp = relying_party(gw).map_err(|r| Error::Refused(r.to_string()))?;
    let keys: Vec<_> = keys_here(gw, user, &rp.id).await?.into_iter().map(|s| s.credential).collect();
    if keys.is_empty() {
        return Err(Error::Refused(format!("no security key is registered for {}", rp.id)));
    }
    let (options, state) = rp
        .checks
        .start_securitykey_authentication(&keys)
        .map_err(|e| Error::Refused(format!("the assertion cannot begin: {e}")))?;
    let id = ceremonies::create(gw, user.id, ceremonies::ASSERT, binding, "", &json(&state)?).await?;
    Ok(Ceremony { id, options: json(&options)? })
}

/// Finishes the assertion `ceremony_id` of `user` for `binding` with the browser's answer
/// (`PublicKeyCredential` as JSON). Refused: a ceremony of another user or binding, used or
/// expired; a credential not the user's; an answer for another origin; a bad signature; a
/// counter that does not go up (audited as `webauthn.clone_suspected`). Every refusal is
/// audited (`webauthn.refused`); an acceptance is left to the caller's flow to audit.
pub async fn finish_assertion(
    gw: &Gateway,
    user: &User,
    ceremony_id: &str,
    binding: &str,
    response_json: &str,
) -> Result<Assertion> {
    let (assertion, key_name) = check_assertion(gw, user, ceremony_id, binding, response_json).await?;
    if let Assertion::Refused(refusal) = &assertion {
        let (kind, outcome) = match refusal {
            Refusal::CounterWentBack => (AuditKind::WebauthnCloneSuspected, Outcome::Failure),
            _ => (AuditKind::WebauthnRefused, Outcome::Failure),
        };
        let key = key_name.map(|n| format!("key \"{n}\": ")).unwrap_or_default();
        gw.audit(AuditEvent::new(kind, outcome).user(user.name.clone()).detail(format!("{key}{refusal}"))).await?;
        tracing::warn!(user = %user.name, method = "webauthn", reason = %refusal, "security key refused");
    }
    Ok(assertion)
}

/// [`finish_assertion`] without the audit; also returns the name of the key used, once
/// known.
async fn check_assertion(
    gw: &Gateway,
    user: &User,
    ceremony_id: &str,
    binding: &str,
    response_json: &str,
) -> Result<(Assertion, Option<String>)> {
    let refused = |r| Ok((Assertion::Refused(r), None));
    let rp = match relying_party(gw) {
        Ok(rp) => rp,
        Err(r) => return refused(r),
    };
    let claimed = match ceremonies::claim(gw, user.id, ceremony_id, ceremonies::ASSERT, binding).await? {
        Ok(c) => c,
        Err(r) => return refused(r),
    };
    let Ok(state) = serde_json::from_str::<SecurityKeyAuthentication>(&claimed.state) else {
        return Err(Error::Secrets("a stored assertion cannot be read".into()));
    };
    let Some(response) = parse::<PublicKeyCredential>(response_json) else {
        return refused(Refusal::Malformed);
    };
    let Some(mut stored) = credentials::by_credential_id(gw, &credential_id(response.get_credential_id())).await?
    else {
        return refused(Refusal::UnknownCredential);
    };
    if stored.user_id != user.id {
        return refused(Refusal::UnknownCredential);
    }
    let name = Some(stored.key.name.clone());
    if stored.rp_id != rp.id {
        return Ok((Assertion::Refused(Refusal::OtherOrigin), name));
    }
    let result = match rp.checks.finish_securitykey_authentication(&response, &state) {
        Ok(r) => r,
        Err(e) => return Ok((Assertion::Refused(refusal(e)), name)),
    };
    if result.cred_id() != stored.credential.cred_id() {
        return Ok((Assertion::Refused(Refusal::UnknownCredential), name));
    }
    stored.credential.update_credential(&result);
    if !credentials::record_use(gw, &stored, result.counter()).await? {
        return Ok((Assertion::Refused(Refusal::CounterWentBack), name));
    }
    let mut key = stored.key;
    key.sign_count = i64::from(result.counter());
    key.last_used_at = Some(crate::time::now());
    Ok((Assertion::Accepted(key), name))
}

/// What the browser must be asked for a security-key answer at a login, and the ceremony
/// the answer belongs to. Made by core only: the binding is the login's own.
#[derive(Debug, Clone)]
pub struct AssertionRequest {
    /// The ceremony id, carried by the page and sent back with the answer.
    pub ceremony: String,
    /// The options for `navigator.credentials.get` (empty on a challenge rebuilt for an
    /// answer, see [`answering`]).
    pub options: String,
    binding: String,
}

/// The binding of a login's assertion: that login attempt and no other.
fn login_binding(login: &LoginContext) -> String {
    format!("login:{}:{}", login.frontend, login.attempt)
}

/// The challenge an answer to the assertion `ceremony` of this login is checked against
/// (the web form carries the ceremony id back; the binding is this login's, whatever the
/// form says).
pub fn answering(login: &LoginContext, ceremony: &str) -> Challenge {
    let mut challenge = base_challenge(String::new());
    challenge.webauthn = Some(AssertionRequest {
        ceremony: ceremony.to_string(),
        options: String::new(),
        binding: login_binding(login),
    });
    challenge
}

fn base_challenge(instructions: String) -> Challenge {
    Challenge {
        method: Method::Webauthn,
        prompt: format!("{}: ", Method::Webauthn.label()),
        echo: false,
        instructions,
        pending: None,
        can_wait: false,
        state: None,
        webauthn: None,
    }
}

/// The `webauthn` second factor at a login: the browser signs a challenge bound to this
/// login attempt with one of the user's keys.
pub struct Webauthn;

#[async_trait]
impl SecondFactor for Webauthn {
    fn method(&self) -> Method {
        Method::Webauthn
    }

    fn available(&self, gw: &Gateway) -> bool {
        availability(&gw.config).is_ok()
    }

    async fn challenge(&self, gw: &Gateway, user: &User, login: &LoginContext) -> Result<Challenge> {
        let rp_id = availability(&gw.config).map(|(id, _)| id).unwrap_or_default();
        if keys_here(gw, user, &rp_id).await?.is_empty() {
            return Ok(base_challenge(format!(
                "None of your security keys was registered at this address ({rp_id}); a key works only where it was registered. Choose another method."
            )));
        }
        if login.frontend == Frontend::Ssh {
            // Approve in the browser: the key is touched on a web page, bound to this login.
            let opened = approval::open(gw, user, login).await?;
            let mut challenge = base_challenge(format!(
                "Approve this login with your security key in a browser where you are signed in:\n  {}\n\
                 Check that the page shows the code {} and your address {}, then touch your key there.",
                opened.link, opened.code, login.source
            ));
            challenge.prompt = "Press Enter once approved (this login waits): ".into();
            challenge.pending = Some(opened.id.to_string());
            challenge.can_wait = true;
            return Ok(challenge);
        }
        let ceremony = begin_assertion(gw, user, &login_binding(login)).await?;
        let mut challenge =
            base_challenge("Touch your security key, or use your passkey, when the browser asks.".into());
        challenge.webauthn =
            Some(AssertionRequest { ceremony: ceremony.id, options: ceremony.options, binding: login_binding(login) });
        Ok(challenge)
    }

    async fn verify(&self, gw: &Gateway, user: &User, challenge: &mut Challenge, answer: &str) -> Result<Verdict> {
        if challenge.pending.is_some() {
            // An approval given in the browser: nothing typed here counts.
            return Ok(Verdict::Rejected);
        }
        let Some(request) = challenge.webauthn.as_ref() else {
            return Ok(Verdict::Rejected);
        };
        let assertion = finish_assertion(gw, user, &request.ceremony, &request.binding, answer).await?;
        Ok(assertion.verdict())
    }

    /// Whether the approval an SSH login waits for was given in the browser.
    async fn poll(&self, gw: &Gateway, user: &User, challenge: &mut Challenge) -> Result<Verdict> {
        match challenge.pending.as_deref().and_then(|p| p.parse().ok()) {
            Some(id) => approval::poll(gw, user, id).await,
            None => Ok(Verdict::Pending),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(public_url: &str) -> Config {
        Config { public_url: public_url.into(), ..Default::default() }
    }

    #[test]
    fn the_relying_party_needs_a_dns_name_in_a_secure_context() {
        let ok = |u: &str| availability(&config(u)).map(|(id, origin)| (id, origin.to_string()));
        assert_eq!(ok("https://gw.example.com/"), Ok(("gw.example.com".into(), "https://gw.example.com/".into())));
        assert_eq!(ok("https://localhost:8443"), Ok(("localhost".into(), "https://localhost:8443/".into())));
        assert_eq!(ok("http://localhost:8080"), Ok(("localhost".into(), "http://localhost:8080/".into())));
        assert!(ok("https://127.0.0.1:8443").unwrap_err().contains("IP address"));
        assert!(ok("https://[::1]:8443").unwrap_err().contains("IP address"));
        assert!(ok("http://gw.example.com").unwrap_err().contains("https://"));
    }

    #[test]
    fn key_names_are_short_and_printable() {
        assert_eq!(key_name("  Blue key ").ok(), Some("Blue key".into()));
        assert!(key_name(" ").is_err());
        assert!(key_name("a\nb").is_err());
        assert!(key_name(&"k".repeat(MAX_NAME + 1)).is_err());
    }

    #[tokio::test]
    async fn registration_ceremonies_take_a_credential_once_and_only_here() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().to_path_buf();
        let gw = Gateway::open(Config { data_dir, public_url: "https://localhost:8443".into(), ..Default::default() })
            .await
            .expect("gateway");
        let alice =
            crate::users::create(&gw.db, crate::users::NewUser { name: "alice", ..Default::default() }).await.unwrap();
        let ceremony = begin_registration(&gw, &alice, " Blue key ").await.unwrap();
        let options: serde_json::Value = serde_json::from_str(&ceremony.options).unwrap();
        assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
        assert_eq!(options["publicKey"]["authenticatorSelection"]["userVerification"], "preferred");
        let refused = |r: Registration| match r {
            Registration::Refused(r) => r,
            Registration::Registered(k) => panic!("registered {k:?}"),
        };
        let r = finish_registration(&gw, &alice, &ceremony.id, "{\"id\": 1}").await.unwrap();
        assert_eq!(refused(r), Refusal::Malformed);
        let r = finish_registration(&gw, &alice, &ceremony.id, "{}").await.unwrap();
        assert_eq!(refused(r), Refusal::Used);
        assert!(matches!(begin_registration(&gw, &alice, "").await, Err(Error::Invalid { .. })));
        // No key yet: nothing to assert with.
        assert!(matches!(begin_assertion(&gw, &alice, "login:web:x").await, Err(Error::Refused(_))));

        let ip = Config { public_url: "https://127.0.0.1:8443".into(), ..(*gw.config).clone() };
        let gw_ip = Gateway { config: std::sync::Arc::new(ip), ..gw.clone() };
        assert!(!Webauthn.available(&gw_ip));
        assert!(matches!(begin_registration(&gw_ip, &alice, "k").await, Err(Error::Refused(_))));
    }

    #[test]
    fn refusals_map_to_verdicts() {
        assert_eq!(Refusal::Used.verdict(), Verdict::Replayed);
        assert_eq!(Refusal::Expired.verdict(), Verdict::Expired);
        assert_eq!(Refusal::CounterWentBack.verdict(), Verdict::Rejected);
        assert_eq!(Refusal::OtherBinding.verdict(), Verdict::Rejected);
    }
}
