//! The login form before any login, in process through the real router: showing it writes
//! nothing to the database (its CSRF token is a MAC of its own cookie), the token is good
//! only with that cookie, every response carries the security headers, and the client
//! address comes from `X-Forwarded-For` only through a trusted proxy.

mod support;

use axum::http::StatusCode;
use gatehouse_core::audit::{self, Filter};
use gatehouse_core::config::WebTls;
use gatehouse_webui::session::{PRE_LOGIN_COOKIE, SESSION_COOKIE, new_token};
use support::Web;

const PASSWORD: &str = "carol password 1";

async fn web_sessions(web: &Web) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM web_sessions").fetch_one(web.gw.db.pool()).await.unwrap()
}

#[tokio::test]
async fn showing_the_login_form_writes_no_row() {
    let web = support::open().await;
    web.user("carol", PASSWORD, false).await;
    for _ in 0..200 {
        let c = web.client();
        c.get("/login").await.assert_status(StatusCode::OK, "login form");
    }
    // The same browser coming back keeps its cookie and its token.
    let c = web.client();
    let first = c.get("/login").await.csrf();
    let second = c.get("/login").await;
    assert!(second.set_cookies.is_empty(), "a known cookie is not set again: {:?}", second.set_cookies);
    assert_eq!(second.csrf(), first, "same cookie, same token");
    assert_eq!(web_sessions(&web).await, 0, "200 anonymous form views stored nothing");
    // The login itself works, and makes the one session row.
    c.password_step("carol", PASSWORD).await.assert_redirect("/account", "login with the form's token");
    assert_eq!(web_sessions(&web).await, 1);
}

#[tokio::test]
async fn the_form_token_is_good_only_with_its_own_cookie() {
    let web = support::open().await;
    web.user("carol", PASSWORD, false).await;
    let victim = web.client();
    let token = victim.get("/login").await.csrf();

    // An attacker's page posts the victim's token with the attacker's own cookie...
    let attacker = web.client();
    attacker.get("/login").await;
    let r = attacker.post("/login", &[("username", "carol"), ("password", PASSWORD), ("csrf", &token)]).await;
    r.assert_status(StatusCode::FORBIDDEN, "a token with another browser's cookie");
    // ...or a cookie of its choosing with a made-up token, or no cookie at all.
    let forger = web.client();
    forger.set_cookie(PRE_LOGIN_COOKIE, &new_token());
    let r = forger.post("/login", &[("username", "carol"), ("password", PASSWORD), ("csrf", &new_token())]).await;
    r.assert_status(StatusCode::FORBIDDEN, "a chosen cookie with a made-up token");
    let bare = web.client();
    let r = bare.post("/login", &[("username", "carol"), ("password", PASSWORD), ("csrf", &token)]).await;
    r.assert_status(StatusCode::FORBIDDEN, "no cookie");
    // A malformed cookie is ignored: a new one is issued.
    let odd = web.client();
    odd.set_cookie(PRE_LOGIN_COOKIE, "<script>");
    let r = odd.get("/login").await;
    assert!(r.set_cookies.iter().any(|c| c.starts_with(PRE_LOGIN_COOKIE)), "{:?}", r.set_cookies);
    assert_ne!(odd.cookie(PRE_LOGIN_COOKIE).as_deref(), Some("<script>"));

    for who in [&attacker, &forger, &bare] {
        assert_eq!(who.cookie(SESSION_COOKIE), None, "no session for a refused form");
    }
    assert_eq!(web_sessions(&web).await, 0);
    // The victim's own form still works.
    let r = victim.post("/login", &[("username", "carol"), ("password", PASSWORD), ("csrf", &token)]).await;
    r.assert_redirect("/account", "the victim's own form");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    for tls in [WebTls::On, WebTls::Off] {
        let web = support::open_with(|c| c.web.tls = tls).await;
        web.user("carol", PASSWORD, false).await;
        let c = web.client();
        let pages = [c.get("/login").await, c.get("/static/style.css").await, c.get("/account").await];
        let logged_in = web.login("carol", PASSWORD).await;
        let pages = pages.into_iter().chain([logged_in.get("/account").await, logged_in.get("/nowhere").await]);
        for r in pages {
            let h = |name: &str| r.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let csp = h("content-security-policy");
            for part in ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"] {
                assert!(csp.contains(part), "{tls:?} {}: CSP {csp:?} lacks {part}", r.status);
            }
            assert!(!csp.contains("unsafe-inline"), "{csp}");
            assert_eq!(h("x-frame-options"), "DENY");
            assert_eq!(h("referrer-policy"), "no-referrer");
            assert_eq!(h("x-content-type-options"), "nosniff");
            let hsts = h("strict-transport-security");
            assert_eq!(hsts.is_empty(), tls == WebTls::Off, "{tls:?}: HSTS {hsts:?}");
        }
        // Cookies are Secure when the browser is on HTTPS.
        let fresh = web.client();
        let r = fresh.get("/login").await;
        let cookie = r.set_cookies.iter().find(|c| c.starts_with(PRE_LOGIN_COOKIE)).expect("the form's cookie");
        assert_eq!(cookie.contains("; Secure"), tls == WebTls::On, "{tls:?}: {cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    }
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let web = support::open_with(|c| {
        c.web.tls = WebTls::Off;
        c.web.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    web.user("carol", PASSWORD, false).await;
    // Through the proxy (the peer, 127.0.0.1): the client's address is the last one the
    // proxy appended; what the client itself claimed before it is ignored.
    let mut c = web.client();
    c.headers.push(("x-forwarded-for".into(), "10.9.9.9, 203.0.113.7".into()));
    c.submit("/login", "/login", &[("username", "carol"), ("password", "wrong")]).await;
    // Straight from elsewhere: the header is the client's own claim, never believed.
    let mut d = web.client();
    d.peer = "192.0.2.50:4000".parse().unwrap();
    d.headers.push(("x-forwarded-for".into(), "198.51.100.1".into()));
    d.submit("/login", "/login", &[("username", "carol"), ("password", "wrong")]).await;

    let events = audit::list(&web.gw.db, &Filter { user: Some("carol".into()), limit: 100, ..Default::default() })
        .await
        .unwrap();
    let sources: Vec<&str> = events.iter().filter_map(|e| e.source.as_deref()).collect();
    assert!(sources.contains(&"203.0.113.7"), "{sources:?}");
    assert!(sources.contains(&"192.0.2.50"), "{sources:?}");
    assert!(!sources.iter().any(|s| *s == "10.9.9.9" || *s == "198.51.100.1" || *s == "127.0.0.1"), "{sources:?}");
}
