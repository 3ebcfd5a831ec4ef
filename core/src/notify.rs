//! Mails that tell a user their account changed. Someone who stole a password and a
//! trusted browser could otherwise add a key or a factor unseen; the owner reading "your
//! account changed" is the last line of defence, so every change of credentials sends
//! one (see [`crate::sudo::Grant::done`]).
//!
//! A mail names what changed, from where and when, and never carries a secret (no code,
//! no passcode, no key material: fingerprints and labels only). A mail that cannot be sent
//! is logged and audited; the change it reports stands.

use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::factors::email;
use crate::users::User;
use crate::{Gateway, Result, mail, time};

/// The subject of every account-change mail.
pub const SUBJECT: &str = "Gatehouse: your account changed";

/// The addresses that hear of changes to `user`'s account: the address an administrator
/// recorded (`users.email`) and the address of their email factor, once each.
pub async fn recipients(gw: &Gateway, user: &User) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let factor = email::address(gw, user.id).await?;
    for address in user.email.iter().chain(factor.iter()) {
        let address = address.trim();
        if !address.is_empty() && !out.iter().any(|a| a.eq_ignore_ascii_case(address)) {
            out.push(address.to_string());
        }
    }
    Ok(out)
}

/// Mails each of `recipients` that `user_name`'s account changed (`what`, from `source`,
/// now). Nothing is sent when no relay is configured. A failure is logged and audited as
/// `account.notify`, and is not an error: the change is made and stays made.
pub async fn account_changed(
    gw: &Gateway,
    user_name: &str,
    recipients: &[String],
    what: &str,
    source: &str,
) -> Result<()> {
    if !gw.config.email.enabled() {
        return Ok(());
    }
    let body = body(user_name, what, source, time::now(), &gw.config.node_name());
    for to in recipients {
        if let Err(e) = mail::send(&gw.config.email, to, SUBJECT, body.clone()).await {
            tracing::warn!(user = %user_name, to = %mail::mask(to), error = %e, "account-change mail not sent");
            gw.audit(
                AuditEvent::new(AuditKind::AccountNotify, Outcome::Failure)
                    .user(user_name.to_string())
                    .source(source.to_string())
                    .detail(format!("mail to {} about \"{what}\" not sent: {e}", mail::mask(to))),
            )
            .await?;
        }
    }
    Ok(())
}

/// The text of the mail.
fn body(user_name: &str, what: &str, source: &str, at: i64, node: &str) -> String {
    format!(
        "Your Gatehouse account {user} changed: {what}.\n\
         \n\
         From: {source}\n\
         At: {at} (node {node})\n\
         \n\
         If this was not you, someone has your password and a browser you trusted: change \
         your password, revoke your trusted browsers and application passcodes on the \
         account page, and tell your administrator at once.\n",
        user = crate::audit::printable(user_name),
        what = crate::audit::printable(what),
        source = crate::audit::printable(source),
        at = time::format_utc(at),
        node = crate::audit::printable(node),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mail_says_what_where_and_when() {
        let text = body("alice", "SSH key SHA256:abc was added", "192.0.2.7", 0, "gw1");
        assert!(text.contains("alice changed: SSH key SHA256:abc was added."), "{text}");
        assert!(
            text.contains("From: 192.0.2.7") && text.contains("1970-01-01 00:00:00 UTC") && text.contains("gw1"),
            "{text}"
        );
        assert!(text.contains("If this was not you"), "{text}");
        assert!(!body("alice", "x\u{1b}[2J", "s", 0, "n").contains('\u{1b}'), "no control characters");
    }
}
