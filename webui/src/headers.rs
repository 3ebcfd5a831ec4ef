//! The security headers every response carries. A handler that set one itself (the
//! Authorize page's `Referrer-Policy`) keeps its value.

use axum::http::HeaderValue;
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::response::Response;

/// No inline script or style, nothing from elsewhere, never framed, forms only to us.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One year, as browsers' preload lists ask.
const HSTS: &str = "max-age=31536000";

/// Adds the security headers to `response`; `Strict-Transport-Security` only on TLS.
pub async fn secure(mut response: Response, on_tls: bool) -> Response {
    let h = response.headers_mut();
    let mut set = |name, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(CONTENT_SECURITY_POLICY, CSP);
    set(X_FRAME_OPTIONS, "DENY");
    set(REFERRER_POLICY, "no-referrer");
    set(X_CONTENT_TYPE_OPTIONS, "nosniff");
    if on_tls {
        set(STRICT_TRANSPORT_SECURITY, HSTS);
    }
    response
}
