//! Enrollment mode: what a user gets when policy forces a second factor and they have none.
//! They may enroll a TOTP authenticator here (QR code plus manual key, confirmed by a
//! code) or read the web UI address; nothing else, and no target. After enrolling, the
//! session ends: the next login passes the gate with the new factor and shows the menu.

use gatehouse_core::audit::{AuditEvent, AuditKind, Outcome};
use gatehouse_core::factors::Method;
use gatehouse_core::factors::totp::{self, NewSeed};
use gatehouse_core::{Gateway, policy};

use crate::prompt::{Answer, read_line};
use crate::qr;
use crate::sanitize::for_terminal;
use crate::visit::audit;
use crate::{Terminal, Visitor};

/// Wrong codes allowed for one enrollment before starting over.
const CODE_ATTEMPTS: u32 = 5;

/// Runs enrollment mode until the user enrolls or leaves; returns the exit status.
pub async fn run(gw: &Gateway, visitor: &Visitor, term: &mut Terminal) -> u32 {
    let url = gw.config.public_url();
    let totp_allowed = match policy::resolve(&gw.db, &visitor.user).await {
        Ok(r) => r.allowed.is_none_or(|set| set.contains(Method::Totp)),
        Err(e) => {
            tracing::error!(user = %visitor.user.name, error = %e, "could not read the policy");
            term.print("The gateway cannot read its policy right now; try again later.\n").await;
            return 1;
        }
    };
    term.print(&format!(
        "\nHello {}. Your account must use two-factor authentication, and no second factor is\n\
         enrolled yet, so no target can be reached until you enroll one.\n",
        for_terminal(&visitor.user.name)
    ))
    .await;
    loop {
        let mut menu = String::from("\n");
        if totp_allowed {
            menu.push_str("  1  Enroll an authenticator app (TOTP) now\n");
        }
        menu.push_str("  2  Show the web address (other methods can be enrolled there)\n  q  Leave\n");
        term.print(&menu).await;
        match read_line(term, "> ").await {
            Answer::End => return 0,
            Answer::Cancel => continue,
            Answer::Line(line) => match line.trim() {
                "1" if totp_allowed => {
                    if enroll_totp(gw, visitor, term).await {
                        term.print(
                            "\nAuthenticator enrolled. Log in again: you will be asked for a code, and then\n\
                             you will see your targets.\n",
                        )
                        .await;
                        return 0;
                    }
                }
                "2" => {
                    term.print(&format!(
                        "\nWeb UI: {}\nSign in there to enroll a second factor.\n",
                        for_terminal(&url)
                    ))
                    .await;
                }
                "q" | "quit" | "exit" | "logout" => return 0,
                "" => {}
                other => {
                    term.print(&format!("Unknown choice '{}'.\n", for_terminal(other))).await;
                }
            },
        }
    }
}

/// Shows a new seed and asks for a code from it; true once the factor is stored.
async fn enroll_totp(gw: &Gateway, visitor: &Visitor, term: &mut Terminal) -> bool {
    let seed = NewSeed::generate();
    let uri = seed.uri(&visitor.user.name);
    let mut text = String::from("\nScan this code with your authenticator app:\n\n");
    match qr::draw(&uri) {
        Some(d) if term.term.is_some() && (term.cols == 0 || d.width <= term.cols as usize) => {
            for line in &d.lines {
                text.push_str("  ");
                text.push_str(line);
                text.push('\n');
            }
        }
        Some(d) if term.term.is_some() => {
            text.push_str(&format!(
                "(The QR code needs a terminal at least {} columns wide; this one has {}. Widen it and\n\
                 choose 1 again, or type the key below into the app.)\n",
                d.width + 2,
                term.cols
            ));
        }
        _ => text.push_str("(No QR code without a terminal; type the key below into the app.)\n"),
    }
    let key = seed.base32();
    let grouped: Vec<String> = key.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    text.push_str(&format!(
        "\nOr enter this key by hand (time-based, SHA-1, 6 digits, 30 seconds):\n\n    {}\n\n",
        grouped.join(" ")
    ));
    term.print(&text).await;

    for attempt in 1..=CODE_ATTEMPTS {
        let code = match read_line(term, "Code from the app (empty to cancel): ").await {
            Answer::Line(l) if !l.trim().is_empty() => l,
            _ => return false,
        };
        let Some(step) = seed.check(&code) else {
            let left = CODE_ATTEMPTS - attempt;
            term.print(&format!(
                "That code does not match. Check that the phone's clock is right. {left} attempt(s) left.\n"
            ))
            .await;
            continue;
        };
        return match totp::enroll(gw, visitor.user.id, &seed, Some(step)).await {
            Ok(()) => {
                let ev = AuditEvent::new(AuditKind::FactorEnroll, Outcome::Success)
                    .actor(visitor.user.name.clone())
                    .user(visitor.user.name.clone())
                    .source(visitor.source.clone())
                    .detail("totp via the SSH enrollment shell");
                audit(gw, ev).await;
                tracing::info!(user = %visitor.user.name, method = "totp", "factor enrolled from the SSH shell");
                true
            }
            Err(e) => {
                tracing::error!(user = %visitor.user.name, error = %e, "could not store the TOTP factor");
                term.print("The factor could not be stored; try again later.\n").await;
                false
            }
        };
    }
    let ev = AuditEvent::new(AuditKind::FactorEnroll, Outcome::Failure)
        .actor(visitor.user.name.clone())
        .user(visitor.user.name.clone())
        .source(visitor.source.clone())
        .detail("totp via the SSH enrollment shell: no matching code");
    audit(gw, ev).await;
    false
}
