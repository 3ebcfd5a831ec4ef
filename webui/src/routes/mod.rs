//! The routes, one module per page or small group of pages.

pub mod account;
pub mod admin;
pub mod approve;
pub mod confirm;
pub mod credentials;
pub mod devices;
pub mod email;
pub mod factor_step;
pub mod login;
pub mod security_keys;
pub mod ssh_security_keys;
pub mod statics;
pub mod totp;
pub mod yubikey;

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
        .route("/static/webauthn.js", get(statics::webauthn))
        .route("/", get(|| async { Redirect::to("/account") }))
        .route("/login", get(login::form).post(login::submit))
        .route("/login/factor", get(login::factor_form).post(login::factor_submit))
        .route("/login/question", post(login::question_submit))
        .route("/logout", post(login::logout))
        .route("/enroll", get(totp::enroll))
        .route("/account", get(account::overview))
        .route("/account/confirm", get(confirm::form).post(confirm::submit))
        .route("/account/totp", get(totp::totp_form).post(totp::totp_confirm))
        .route("/account/backup-codes", post(account::backup_codes))
        .route("/account/keyword", post(account::set_keyword))
        .route("/account/yubikey", get(yubikey::form).post(yubikey::bind))
        .route("/approve/{token}", get(approve::show).post(approve::decide))
        .route("/account/security-keys", get(security_keys::list))
        .route("/account/security-keys/begin", post(security_keys::begin))
        .route("/account/security-keys/finish", post(security_keys::finish))
        .route("/account/security-keys/remove", post(security_keys::remove))
        .route("/account/email", get(email::form).post(email::send_code))
        .route("/account/email/confirm", post(email::confirm))
        .route("/authorize/{token}", get(email::show).post(email::decide))
        .route("/account/factors/remove", post(account::remove_factor))
        .route("/account/keys", get(credentials::keys).post(credentials::add_key))
        .route("/account/keys/remove", post(credentials::remove_key))
        .route("/account/ssh-security-keys", get(ssh_security_keys::list).post(ssh_security_keys::add))
        .route("/account/ssh-security-keys/remove", post(ssh_security_keys::remove))
        .route("/account/password", get(credentials::password).post(credentials::change_password))
        .route("/account/devices", get(devices::devices))
        .route("/account/devices/revoke", post(devices::revoke_device))
        .route("/account/devices/revoke-others", post(devices::revoke_other_devices))
        .route("/account/passcodes", get(devices::passcodes).post(devices::create_passcode))
        .route("/account/passcodes/revoke", post(devices::revoke_passcode))
        .route("/admin", get(|| async { Redirect::to("/admin/users") }))
        .route("/admin/users", get(admin::users::list).post(admin::users::create))
        .route("/admin/users/{name}", get(admin::users::show))
        .route("/admin/users/{name}/lock", post(admin::users::lock))
        .route("/admin/users/{name}/admin", post(admin::users::admin_flag))
        .route("/admin/users/{name}/exempt", post(admin::users::exempt))
        .route("/admin/users/{name}/force", post(admin::users::force))
        .route("/admin/users/{name}/reset-factors", post(admin::users::reset_factors))
        .route("/admin/users/{name}/password", post(admin::users::set_password))
        .route("/admin/users/{name}/delete", post(admin::users::delete))
        .route("/admin/groups", get(admin::groups::list).post(admin::groups::create))
        .route("/admin/groups/{name}", get(admin::groups::show))
        .route("/admin/groups/{name}/force", post(admin::groups::force))
        .route("/admin/groups/{name}/methods", post(admin::groups::methods))
        .route("/admin/groups/{name}/members", post(admin::groups::add_member))
        .route("/admin/groups/{name}/members/remove", post(admin::groups::remove_member))
        .route("/admin/groups/{name}/delete", post(admin::groups::delete))
        .route("/admin/policy", get(admin::policy::show))
        .route("/admin/policy/force", post(admin::policy::force))
        .route("/admin/policy/force-admins", post(admin::policy::force_admins))
        .route("/admin/policy/methods", post(admin::policy::methods))
        .route("/admin/policy/backup-codes", post(admin::policy::backup_codes))
        .route("/admin/targets", get(admin::targets::list).post(admin::targets::create))
        .route("/admin/targets/{name}", get(admin::targets::show))
        .route("/admin/targets/{name}/edit", post(admin::targets::edit))
        .route("/admin/targets/{name}/host-key", post(admin::targets::pin))
        .route("/admin/targets/{name}/forget-host-key", post(admin::targets::forget))
        .route("/admin/targets/{name}/grant", post(admin::targets::grant))
        .route("/admin/targets/{name}/revoke", post(admin::targets::revoke))
        .route("/admin/targets/{name}/delete", post(admin::targets::delete))
        .route("/admin/audit", get(admin::audit::list))
        .route("/admin/recordings", get(admin::sessions::recordings))
        .route("/admin/recordings/{id}", get(admin::sessions::player))
        .route("/admin/recordings/{id}/cast", get(admin::sessions::cast))
        .route("/admin/live", get(admin::sessions::live))
        .route("/admin/health", get(admin::health::show))
        .route("/admin/health/radius", post(admin::health::radius_test))
        .route("/admin/health/duo", post(admin::health::duo_check))
        .route("/admin/health/directory", post(admin::health::directory_test))
        .route("/admin/health/email", post(admin::health::email_test))
        .route("/admin/live/{id}/terminate", post(admin::sessions::terminate))
}
