//! The static files, compiled into the binary: no asset directory to deploy, and no
//! third-party code fetched at run time.

use axum::http::header;
use axum::response::IntoResponse;

const STYLE: &str = include_str!("../../static/style.css");
const PLAYER: &str = include_str!("../../static/player.js");
const WEBAUTHN: &str = include_str!("../../static/webauthn.js");

pub async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=300")], STYLE)
}

pub async fn player() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=300")], PLAYER)
}

/// The browser's side of security keys and passkeys (`navigator.credentials`).
pub async fn webauthn() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=300")], WEBAUTHN)
}
