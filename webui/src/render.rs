//! Rendering: the data every page's layout needs ([`Chrome`]), the message shown next to
//! a form field or at the top of a page ([`Notice`]), and [`page`], which turns an askama
//! template into a response with a status.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What the layout shows around every page: who is logged in, the CSRF token for the
/// logout form, and which navigation entry is current.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// Empty when nobody is logged in.
    pub user: String,
    pub is_admin: bool,
    pub csrf: String,
    /// The user is exempt from the second factor: shown as a warning on every page.
    pub exempt: bool,
    /// Navigation is hidden while the user must finish a step (new password, enrollment).
    pub nav: bool,
    pub section: &'static str,
    /// For administrators: forced scopes whose users could never pass (see the health
    /// page), shown as a warning on every admin page.
    pub health_warnings: usize,
}

impl Chrome {
    pub fn anonymous() -> Chrome {
        Chrome::default()
    }

    pub fn with_section(mut self, section: &'static str) -> Chrome {
        self.section = section;
        self
    }
}

/// A success message for the page, or an error tied to one form field.
#[derive(Debug, Clone, Default)]
pub struct Notice {
    pub ok: String,
    /// The form field the error belongs to (its `name`), or `form` for the whole form.
    pub field: String,
    pub error: String,
}

impl Notice {
    pub fn none() -> Notice {
        Notice::default()
    }

    pub fn error(field: &str, message: impl Into<String>) -> Notice {
        Notice { ok: String::new(), field: field.to_string(), error: message.into() }
    }

    /// The message for a `?ok=` code after a redirect. Only fixed texts: the query string
    /// never puts words on the page.
    pub fn from_code(code: Option<&str>) -> Notice {
        let text = match code.unwrap_or("") {
            "password" => "Your password was changed. Application passcodes were revoked.",
            "totp" => "Your authenticator app is set up.",
            "keyword" => "Your access keyword was saved.",
            "yubikey" => "Your YubiKey is bound.",
            "email" => "Your mail address is confirmed: login codes and links go there now.",
            "removed" => "The factor was removed.",
            "security-key" => "Your security key is registered.",
            "security-key-removed" => "The security key was removed.",
            "key-added" => "The key was added.",
            "key-removed" => "The key was removed.",
            "ssh-security-key-added" => "The security key was registered.",
            "ssh-security-key-removed" => "The security key was removed.",
            "revoked" => "Revoked.",
            "saved" => "Saved.",
            "created" => "Created.",
            "deleted" => "Deleted.",
            "terminate" => "The session was asked to end.",
            _ => "",
        };
        Notice { ok: text.to_string(), ..Notice::default() }
    }
}

/// Renders `template` with `status`. A template that fails to render is a bug: logged,
/// and answered with a plain 500.
pub fn page<T: Template>(status: StatusCode, template: &T) -> Response {
    match template.render() {
        Ok(html) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

/// Renders with 200.
pub fn ok<T: Template>(template: &T) -> Response {
    page(StatusCode::OK, template)
}

/// `YYYY-MM-DD HH:MM UTC` for a table cell; "never" for none.
pub fn when(at: Option<i64>) -> String {
    match at {
        Some(t) => {
            let full = gatehouse_core::time::format_utc(t);
            // Drop the seconds: "2026-01-02 03:04:05 UTC" -> "2026-01-02 03:04 UTC".
            match (full.get(..16), full.get(19..)) {
                (Some(a), Some(b)) => format!("{a}{b}"),
                _ => full,
            }
        }
        None => "never".to_string(),
    }
}
