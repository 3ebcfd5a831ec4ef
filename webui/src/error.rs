//! The one error type of the handlers. It turns into a page with a plain message and the
//! right status; details of internal failures go to the log, never to the browser.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::render::{Chrome, page};

/// Why a request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No session, or it expired: the browser is sent to the login page.
    #[error("login required")]
    LoginRequired,
    /// The user must finish something first (new password, enrollment).
    #[error("redirect to {0}")]
    Redirect(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found: {0}")]
    NotFound(String),
    /// The form's CSRF token is missing or wrong (or the form is older than the session).
    #[error("bad CSRF token")]
    Csrf,
    /// Input that cannot be used; the message says why, for the person who typed it.
    #[error("{0}")]
    BadRequest(String),
    /// A service the page needs (the recordings bucket, ...) does not answer now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(gatehouse_core::Error),
}

impl From<gatehouse_core::Error> for WebError {
    /// Validation errors of the domain are the user's to fix (400); the rest is ours.
    fn from(e: gatehouse_core::Error) -> Self {
        use gatehouse_core::Error as E;
        match e {
            E::Invalid { .. } | E::Duplicate { .. } | E::NotFound { .. } => WebError::BadRequest(e.to_string()),
            other => WebError::Internal(other),
        }
    }
}

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage {
    c: Chrome,
    title: &'static str,
    message: String,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            WebError::LoginRequired => return Redirect::to("/login").into_response(),
            WebError::Redirect(to) => return Redirect::to(to).into_response(),
            WebError::Forbidden(what) => (StatusCode::FORBIDDEN, "Not allowed", what.to_string()),
            WebError::NotFound(what) => (StatusCode::NOT_FOUND, "Not found", what),
            WebError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form is no longer valid (it was opened in another session or is too old). Go back, reload the page and try again.".to_string(),
            ),
            WebError::BadRequest(message) => (StatusCode::BAD_REQUEST, "Cannot do that", message),
            WebError::Unavailable(message) => (StatusCode::SERVICE_UNAVAILABLE, "Not available now", message),
            WebError::Internal(e) => {
                tracing::error!(error = %e, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "The server could not complete the request. The details are in the server log.".to_string())
            }
        };
        page(status, &ErrorPage { c: Chrome::anonymous(), title, message })
    }
}

/// Handler result.
pub type WebResult<T = Response> = Result<T, WebError>;
