//! Form bodies with their CSRF check. Every state-changing request is a POST whose body
//! carries `csrf`, compared in constant time with the token the earlier extractors found
//! (the session's, or before the login the one derived from the pre-login cookie). The check comes before the form is parsed, so a forged request
//! learns nothing from validation messages.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use gatehouse_core::Gateway;
use gatehouse_core::vault::constant_time_eq;
use serde::de::DeserializeOwned;

use crate::error::WebError;
use crate::session::FormToken;

/// A form that passed the CSRF check.
pub struct CsrfForm<T>(pub T);

#[derive(serde::Deserialize)]
struct Token {
    #[serde(default)]
    csrf: String,
}

/// Largest form body accepted (a private key for a target is the biggest field).
const MAX_BODY: usize = 64 * 1024;

impl<T: DeserializeOwned> FromRequest<Gateway> for CsrfForm<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, gw: &Gateway) -> Result<Self, Self::Rejection> {
        let expected = req.extensions().get::<FormToken>().cloned();
        let bytes = Bytes::from_request(req, gw)
            .await
            .map_err(|_| WebError::BadRequest("The form could not be read.".into()))?;
        if bytes.len() > MAX_BODY {
            return Err(WebError::BadRequest("The form is too large.".into()));
        }
        let token: Token = serde_urlencoded::from_bytes(&bytes).unwrap_or(Token { csrf: String::new() });
        let Some(expected) = expected else { return Err(WebError::Csrf) };
        if token.csrf.is_empty() || !constant_time_eq(token.csrf.as_bytes(), expected.expected.as_bytes()) {
            tracing::warn!(source = %expected.source, "form refused: bad CSRF token");
            return Err(WebError::Csrf);
        }
        serde_urlencoded::from_bytes(&bytes)
            .map(CsrfForm)
            .map_err(|e| WebError::BadRequest(format!("The form is incomplete or malformed ({e}).")))
    }
}

/// A form with no fields but the token (buttons).
#[derive(serde::Deserialize)]
pub struct Empty {}
