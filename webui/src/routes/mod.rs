//! The routes, one module per page or small group of pages.

pub mod account;
pub mod credentials;
pub mod devices;
pub mod login;
pub mod statics;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{get, post};
use gatehouse_core::Gateway;

/// Every route of the web UI. State-changing routes are POSTs with a CSRF-checked form.
pub fn router() -> Router<Gateway> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/static/style.css", get(statics::style))
        .route("/static/player.js", get(statics::player))
        .route("/", get(|| async { Redirect::to("/account") }))
        .route("/login", get(login::form).post(login::submit))
        .route("/login/factor", get(login::factor_form).post(login::factor_submit))
        .route("/logout", post(login::logout))
        .route("/enroll", get(account::enroll))
        .route("/account", get(account::overview))
        .route("/account/totp", get(account::totp_form).post(account::totp_confirm))
        .route("/account/backup-codes", post(account::backup_codes))
        .route("/account/keyword", post(account::set_keyword))
        .route("/account/factors/remove", post(account::remove_factor))
        .route("/account/keys", get(credentials::keys).post(credentials::add_key))
        .route("/account/keys/remove", post(credentials::remove_key))
        .route("/account/password", get(credentials::password).post(credentials::change_password))
        .route("/account/devices", get(devices::devices))
        .route("/account/devices/revoke", post(devices::revoke_device))
        .route("/account/devices/revoke-others", post(devices::revoke_other_devices))
        .route("/account/passcodes", get(devices::passcodes).post(devices::create_passcode))
        .route("/account/passcodes/revoke", post(devices::revoke_passcode))
}
