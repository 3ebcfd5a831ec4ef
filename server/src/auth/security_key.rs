//! The gate's public-key round: a security key used as an SSH key signs as the second
//! factor. russh has verified the signature (over this session, the key's application,
//! and the flags and counter the key signed); core decides on the key, the flags and the
//! counter ([`login::security_key`]); this only carries the turn.
//!
//! Nothing but a public-key request can answer while the round lasts, and no text reaches
//! the user in it: a refusal is shown when the client comes back to keyboard-interactive
//! (the gate's method list, with the note).

use gatehouse_core::factors::ssh_sk;
use gatehouse_core::login::{self, KeySignature, slow_down};
use russh::keys::PublicKey;
use russh::keys::ssh_key::Signature;
use russh::server::Auth;
use tokio::time::Instant;

use super::replies::{refuse_for_good, reject};
use crate::connection::{AuthState, Connection};
use crate::gate::Step;

impl Connection {
    /// A key offered in the round: only the user's registered security keys go on to a
    /// signature (a login key, or another user's security key, does not).
    pub(super) async fn security_key_offered(&mut self, key: &PublicKey) -> Auth {
        let AuthState::Gate(g) = &self.state else {
            return reject();
        };
        match ssh_sk::registered(&self.gw.db, g.user.id, key).await {
            Ok(Some(_)) => Auth::Accept,
            Ok(None) => reject(),
            Err(e) => {
                tracing::error!(error = %e, "security key lookup failed; refusing");
                reject()
            }
        }
    }

    /// A verified signature in the round: core decides; a pass completes the login, a
    /// refusal counts as a failed second factor.
    pub(super) async fn security_key_signed(
        &mut self,
        key: &PublicKey,
        signature: &Signature,
        started: Instant,
    ) -> Auth {
        let ctx = self.login_context();
        let AuthState::Gate(g) = &mut self.state else {
            return reject();
        };
        let decided = login::security_key(&self.gw, &ctx, &g.user, key, signature).await;
        let step = match decided {
            Ok(KeySignature::Accepted) => g.gate.verdict(true, ""),
            Ok(KeySignature::Busy) => return reject(),
            Ok(KeySignature::Locked) => {
                slow_down(started).await;
                return self.locked_in_round(&ctx).await;
            }
            Ok(refused @ KeySignature::Refused(_)) => {
                g.gate.verdict(false, refused.text().unwrap_or("The signature was refused."))
            }
            Err(e) => {
                tracing::error!(error = %e, "security key check failed; refusing");
                self.state = AuthState::Refused;
                slow_down(started).await;
                return refuse_for_good();
            }
        };
        match step {
            Step::Passed(_) => self.after_verdict(step, &ctx, started).await,
            Step::Ask(_) => {
                slow_down(started).await;
                if matches!(login::lock_in_force(&self.gw, &ctx).await, Ok(Some(_))) {
                    return self.locked_in_round(&ctx).await;
                }
                // The client tries its other keys, then comes back to the gate's list.
                reject()
            }
            _ => {
                slow_down(started).await;
                self.state = AuthState::Refused;
                refuse_for_good()
            }
        }
    }

    /// A lock holds: its notice is shown at the next keyboard-interactive round, and the
    /// login ends there.
    async fn locked_in_round(&mut self, ctx: &gatehouse_core::factors::LoginContext) -> Auth {
        match login::lock_in_force(&self.gw, ctx).await {
            Ok(Some(lock)) => {
                self.state = AuthState::Notice(login::lock_text(lock));
                reject()
            }
            _ => {
                self.state = AuthState::Refused;
                refuse_for_good()
            }
        }
    }
}
