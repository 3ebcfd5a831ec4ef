//! What an administrator must know before forcing a method: which second factors this
//! gateway can check, which forced scopes have no method it can check (their users could
//! never pass), and a test request to the external services.

use crate::config::Config;
use crate::factors::{self, Method, MethodSet, duo, radius};
use crate::{Gateway, Result, groups, policy};

/// Whether the gateway can check a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Checked by the gateway itself, or its service is configured.
    Ready,
    /// The method needs a service that is not configured.
    NotConfigured,
    /// This build has no implementation of the method.
    NotBuilt,
}

/// One row of the health page.
#[derive(Debug, Clone)]
pub struct MethodHealth {
    pub method: Method,
    pub state: State,
    /// Where it is checked, or what is missing.
    pub detail: String,
}

/// What the gateway last saw of a method's service, on any node.
#[derive(Debug, Clone, Default)]
pub struct LastSeen {
    pub last_ok_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub last_error_node: Option<String>,
}

/// Longest error text kept, in characters.
const MAX_ERROR: usize = 300;

/// Records that a method's service answered (SMTP relay took the mail, Duo or a
/// validation server gave a signed answer, a RADIUS server replied). Never fails the
/// caller: a failure to record is logged.
pub async fn record_ok(gw: &Gateway, method: Method) {
    record_service_ok(gw, method.as_str()).await
}

/// Like [`record_ok`] for a service that is not a second factor (`directory::HEALTH_KEY`).
pub async fn record_service_ok(gw: &Gateway, key: &str) {
    let now = crate::time::now();
    let done = sqlx::query(
        "INSERT INTO factor_health (method, last_ok_at) VALUES ($1, $2)
         ON CONFLICT (method) DO UPDATE SET last_ok_at = excluded.last_ok_at",
    )
    .bind(key)
    .bind(now)
    .execute(gw.db.pool())
    .await;
    if let Err(e) = done {
        tracing::warn!(service = key, error = %e, "could not record the service's health");
    }
}

/// Records an error talking to a method's service, for the health page. `error` must hold
/// no secret (it is shown to administrators).
pub async fn record_error(gw: &Gateway, method: Method, error: &str) {
    record_service_error(gw, method.as_str(), error).await
}

/// Like [`record_error`] for a service that is not a second factor.
pub async fn record_service_error(gw: &Gateway, key: &str, error: &str) {
    let text: String = error.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_ERROR).collect();
    let done = sqlx::query(
        "INSERT INTO factor_health (method, last_error, last_error_at, last_error_node) VALUES ($1, $2, $3, $4)
         ON CONFLICT (method) DO UPDATE SET last_error = excluded.last_error, last_error_at = excluded.last_error_at,
             last_error_node = excluded.last_error_node",
    )
    .bind(key)
    .bind(&text)
    .bind(crate::time::now())
    .bind(gw.config.node_name())
    .execute(gw.db.pool())
    .await;
    if let Err(e) = done {
        tracing::warn!(service = key, error = %e, "could not record the service's health");
    }
}

/// What was last seen of `method`'s service.
pub async fn last_seen(gw: &Gateway, method: Method) -> Result<LastSeen> {
    last_seen_of(gw, method.as_str()).await
}

/// What was last seen of a service by its key (a method's name, or `directory::HEALTH_KEY`).
pub async fn last_seen_of(gw: &Gateway, key: &str) -> Result<LastSeen> {
    type Row = (Option<i64>, Option<String>, Option<i64>, Option<String>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT last_ok_at, last_error, last_error_at, last_error_node FROM factor_health WHERE method = $1",
    )
    .bind(key)
    .fetch_optional(gw.db.pool())
    .await?;
    Ok(row
        .map(|(last_ok_at, last_error, last_error_at, last_error_node)| LastSeen {
            last_ok_at,
            last_error,
            last_error_at,
            last_error_node,
        })
        .unwrap_or_default())
}

/// Every method and whether this gateway can check it.
pub fn methods(gw: &Gateway) -> Vec<MethodHealth> {
    MethodSet::all()
        .methods()
        .iter()
        .map(|&method| {
            let (state, detail) = match factors::factor(method) {
                None => (State::NotBuilt, "not available in this build".to_string()),
                Some(f) if !f.available(gw) => (State::NotConfigured, missing(&gw.config, method)),
                Some(_) => (State::Ready, where_checked(&gw.config, method)),
            };
            MethodHealth { method, state, detail }
        })
        .collect()
}

fn missing(config: &Config, method: Method) -> String {
    match method {
        Method::Webauthn => match factors::webauthn::availability(config) {
            Err(why) => why,
            Ok(_) => "available".into(),
        },
        Method::Radius => "no servers or no secret in the [radius] configuration".into(),
        Method::Duo => "no integration_key, secret_key or api_host in the [duo] configuration".into(),
        Method::Email => "no SMTP relay in the [email] configuration (smtp_host, from)".into(),
        Method::Yubikey => "no client_id or secret_key in the [yubikey] configuration".into(),
        m => format!("{} is not configured", m.label()),
    }
}

fn where_checked(config: &Config, method: Method) -> String {
    match method {
        Method::Radius => format!("servers, in order: {}", config.radius.servers.join(", ")),
        Method::Yubikey => format!("validation servers, in order: {}", config.yubikey.api_urls.join(", ")),
        Method::Duo => {
            let host = config.duo.endpoint().map(|e| e.url("")).unwrap_or_default();
            let mut text = format!("Duo Auth API at {host}; a push waits up to {} s", config.duo.push_timeout_secs);
            if config.duo.fail_open {
                text.push_str("; FAIL-OPEN: while Duo cannot be reached, Duo logins pass without a second factor");
            }
            text
        }
        Method::Email => {
            let tls = match config.email.tls {
                crate::config::SmtpTls::Starttls => "STARTTLS",
                crate::config::SmtpTls::Tls => "TLS",
                crate::config::SmtpTls::None => "no encryption",
            };
            format!(
                "SMTP relay {}:{} ({tls}), from {}; links point to {}",
                config.email.smtp_host.trim(),
                config.email.port(),
                config.email.from,
                config.public_url()
            )
        }
        Method::Webauthn => match factors::webauthn::availability(config) {
            Ok((rp_id, origin)) => format!(
                "relying party {rp_id}, origin {}; used at the web login",
                origin.origin().ascii_serialization()
            ),
            Err(why) => why,
        },
        Method::SshSk => "checked by the gateway itself: signatures of registered security keys, over SSH only".into(),
        _ => "checked by the gateway itself".into(),
    }
}

/// Forced scopes (the global switch, the administrators' scope, forced groups) whose allowed methods include none
/// that this gateway can check: their users would be asked for something that cannot work.
pub async fn warnings(gw: &Gateway) -> Result<Vec<String>> {
    let ready: Vec<Method> = methods(gw).into_iter().filter(|m| m.state == State::Ready).map(|m| m.method).collect();
    let usable = |set: &MethodSet| set.methods().iter().any(|m| ready.contains(m));
    let global = policy::load(&gw.db).await?;
    let mut out = Vec::new();
    if global.force_2fa && !usable(&global.allowed_methods) {
        out.push(format!(
            "2FA is forced for everyone, but none of the allowed methods ({}) can be checked here.",
            global.allowed_methods
        ));
    }
    if global.force_2fa_admins && !global.force_2fa && !usable(&global.allowed_methods) {
        out.push(format!(
            "2FA is required of every administrator, but none of the allowed methods ({}) can be checked here.",
            global.allowed_methods
        ));
    }
    for g in groups::list(&gw.db).await? {
        let allowed = match &g.allowed_methods {
            Some(set) => global.allowed_methods.intersect(set),
            None => global.allowed_methods.clone(),
        };
        if (g.force_2fa || global.force_2fa) && !usable(&allowed) {
            out.push(format!(
                "Group {}: 2FA is forced, but none of its allowed methods ({allowed}) can be checked here.",
                g.name
            ));
        }
    }
    Ok(out)
}

/// Settings that let a method start but will bite its users (links nobody can open, mail
/// sent in clear over the network), for the health page.
pub fn advisories(gw: &Gateway) -> Vec<String> {
    let mut out = Vec::new();
    let c = &gw.config;
    if c.email.enabled() {
        let url = c.public_url();
        let host = url.split("://").nth(1).unwrap_or("").split(['/', ':']).next().unwrap_or("");
        if host == "localhost" || host.starts_with("127.") || host == "[::1]" {
            out.push(format!(
                "Authorize links in login mails point to {url}, which only this machine can open. Set public_url to the address users reach the web UI at."
            ));
        }
        let relay = c.email.smtp_host.trim();
        let local_relay = relay == "localhost" || relay.starts_with("127.") || relay == "::1";
        if c.email.tls == crate::config::SmtpTls::None && !local_relay {
            out.push(format!("Mail to the relay {relay} is not encrypted (email.tls = \"none\"): codes and links cross the network in clear."));
        }
    }
    out
}

/// Sends a test mail to `to` through the configured relay and says what happened.
pub async fn test_email(gw: &Gateway, to: &str) -> String {
    let to = match crate::mail::parse_address(to) {
        Ok(a) => a,
        Err(why) => return why,
    };
    let body = format!(
        "This is a test mail from the Gatehouse gateway {}.\n\nIf you can read it, login codes and Authorize links reach this mailbox.\n",
        gw.config.node_name()
    );
    match crate::mail::send(&gw.config.email, &to, "Gatehouse test mail", body).await {
        Ok(()) => {
            record_ok(gw, Method::Email).await;
            format!("The relay took the mail for {to}. Check that it arrived (and not in spam).")
        }
        Err(e) => {
            record_error(gw, Method::Email, &e.to_string()).await;
            format!("No mail went out: {e}.")
        }
    }
}

/// Sends one Access-Request for `user_name` with `password` to the configured RADIUS
/// servers and says what came back, for the administrator's "send test" action.
pub async fn test_radius(gw: &Gateway, user_name: &str, password: &str) -> String {
    match radius::client::authenticate(&gw.config.radius, user_name, password.as_bytes(), None).await {
        Ok(radius::client::Answer::Accept) => "Access-Accept: the server answered and accepted the credentials.".into(),
        Ok(radius::client::Answer::Reject) => {
            "Access-Reject: the server answered (it is reachable) and refused the credentials.".into()
        }
        Ok(radius::client::Answer::Challenge { message, .. }) => {
            let shown: String = message.chars().filter(|c| !c.is_control()).take(200).collect();
            format!("Access-Challenge: the server answered and asks another question: \"{shown}\".")
        }
        Err(e) => format!("No usable answer: {e}."),
    }
}

/// Calls Duo's `/auth/v2/check` (signed: it proves the keys and the host) and says what
/// came back, for the administrator's test action. The outcome is recorded for the
/// health page.
pub async fn test_duo(gw: &Gateway) -> String {
    if !gw.config.duo.enabled() {
        return format!("Not asked: {}.", missing(&gw.config, Method::Duo));
    }
    let answer = match duo::client::Client::new(&gw.config.duo) {
        Ok(client) => client.check().await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(time) => {
            record_ok(gw, Method::Duo).await;
            let skew = time - crate::time::now();
            format!(
                "OK: Duo answered /check and accepted the integration and secret keys (Duo's clock: {}, {skew:+} s from this node's).",
                crate::time::format_utc(time)
            )
        }
        Err(e) => {
            record_error(gw, Method::Duo, &e.to_string()).await;
            format!("No usable answer: {e}.")
        }
    }
}
