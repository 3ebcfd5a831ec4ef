//! The rules every route inherits from its extractors ([`gatehouse_webui::session`]) and
//! from [`gatehouse_webui::form::CsrfForm`], checked in process through the real router:
//! who may see a page, which session cookies count as a login, and that a state-changing
//! POST without its session's CSRF token is refused before it changes anything.

mod support;

use axum::http::StatusCode;
use gatehouse_core::factors::{self, keyword};
use gatehouse_core::users;
use gatehouse_core::vault::token_hash as hash_token;
use gatehouse_core::web_sessions::{self, NewSession, Proofs, Stage};
use gatehouse_webui::session::{PRE_LOGIN_COOKIE, SESSION_COOKIE, new_token};
use support::Web;

const ROOT_PASSWORD: &str = "root password 1";
const CAROL_PASSWORD: &str = "carol password 1";

/// Pages that need a login, one of each extractor and every admin section.
const ACCOUNT_PAGES: &[&str] = &[
    "/account",
    "/account/keys",
    "/account/password",
    "/account/totp",
    "/account/yubikey",
    "/account/security-keys",
    "/account/email",
    "/account/devices",
    "/account/passcodes",
    "/account/confirm?next=/account/keys",
    "/enroll",
];

const ADMIN_PAGES: &[&str] = &[
    "/admin/users",
    "/admin/users/root",
    "/admin/groups",
    "/admin/policy",
    "/admin/targets",
    "/admin/audit",
    "/admin/recordings",
    "/admin/recordings/1",
    "/admin/recordings/1/cast",
    "/admin/live",
    "/admin/health",
];

/// A gateway with an administrator `root` and a user `carol`, neither with a factor.
async fn gateway() -> Web {
    let web = support::open().await;
    web.user("root", ROOT_PASSWORD, true).await;
    web.user("carol", CAROL_PASSWORD, false).await;
    web
}

/// Stores a full session for `user_id` living `ttl_secs` and returns its cookie value:
/// the session a login would have left, made without one.
async fn stored_session(web: &Web, user_id: i64, ttl_secs: i64) -> String {
    let token = new_token();
    let now = gatehouse_core::time::now();
    web_sessions::create(
        &web.gw.db,
        NewSession {
            id_hash: &hash_token(&token),
            user_id: Some(user_id),
            stage: Stage::Full,
            csrf_token: &new_token(),
            source: "127.0.0.1",
            ttl_secs,
            proofs: Proofs { password_at: Some(now), factor_at: None },
        },
    )
    .await
    .expect("storing a session");
    token
}

async fn user_exists(web: &Web, name: &str) -> bool {
    users::find(&web.gw.db, name).await.expect("reading users").is_some()
}

#[tokio::test]
async fn anonymous_get_of_an_account_or_admin_page_redirects_to_login() {
    let web = gateway().await;
    let anonymous = web.client();
    for path in ACCOUNT_PAGES.iter().chain(ADMIN_PAGES) {
        anonymous.get(path).await.assert_redirect("/login", &format!("anonymous GET {path}"));
    }
}

#[tokio::test]
async fn post_without_csrf_token_is_refused_and_changes_nothing() {
    let web = gateway().await;
    let root = web.login("root", ROOT_PASSWORD).await;
    let form = [("name", "mallory"), ("password", "mallory password 1")];
    root.post("/admin/users", &form).await.assert_status(StatusCode::FORBIDDEN, "create user without csrf");
    assert!(!user_exists(&web, "mallory").await, "a refused form must not create the user");

    let carol = web.login("carol", CAROL_PASSWORD).await;
    carol
        .post("/account/keyword", &[("keyword", "purple elephant"), ("confirm", "purple elephant")])
        .await
        .assert_status(StatusCode::FORBIDDEN, "set keyword without csrf");
    let carol_id = users::get(&web.gw.db, "carol").await.expect("carol").id;
    assert!(factors::enrolled(&web.gw.db, carol_id).await.expect("factors").is_empty(), "no keyword was set");

    // Logging out is a change too: the session survives a forged logout.
    carol.post("/logout", &[]).await.assert_status(StatusCode::FORBIDDEN, "logout without csrf");
    carol.get("/account").await.assert_status(StatusCode::OK, "still logged in after a refused logout");
}

#[tokio::test]
async fn post_with_a_wrong_csrf_token_is_refused_and_changes_nothing() {
    let web = gateway().await;
    let root = web.login("root", ROOT_PASSWORD).await;
    let right = root.get("/admin/users").await.csrf();
    let wrong = new_token();
    let truncated = &right[..right.len() - 1];
    for (token, what) in [("", "an empty token"), (wrong.as_str(), "a random token"), (truncated, "a truncated token")]
    {
        root.post("/admin/users", &[("name", "mallory"), ("password", "mallory password 1"), ("csrf", token)])
            .await
            .assert_status(StatusCode::FORBIDDEN, &format!("create user with {what}"));
        root.post("/admin/users/carol/admin", &[("on", "on"), ("csrf", token)])
            .await
            .assert_status(StatusCode::FORBIDDEN, &format!("make carol admin with {what}"));
    }
    assert!(!user_exists(&web, "mallory").await, "a refused form must not create the user");
    assert!(!users::get(&web.gw.db, "carol").await.expect("carol").is_admin, "carol must not have become admin");
    // The right token on the same form works, so the refusals above were the token's doing.
    root.post("/admin/users", &[("name", "mallory"), ("password", "mallory password 1"), ("csrf", &right)])
        .await
        .assert_redirect("/admin/users/mallory", "create user with the session's token");
}

#[tokio::test]
async fn csrf_token_of_another_users_session_is_refused() {
    let web = gateway().await;
    let root = web.login("root", ROOT_PASSWORD).await;
    let carol = web.login("carol", CAROL_PASSWORD).await;
    let carols_token = carol.get("/account").await.csrf();
    root.post("/admin/users", &[("name", "mallory"), ("password", "mallory password 1"), ("csrf", &carols_token)])
        .await
        .assert_status(StatusCode::FORBIDDEN, "root's session with carol's token");
    assert!(!user_exists(&web, "mallory").await);
    // Nor does a token of the same user's other session count.
    let root_elsewhere = web.login("root", ROOT_PASSWORD).await;
    let other_token = root_elsewhere.get("/account").await.csrf();
    root.post("/admin/users", &[("name", "mallory"), ("password", "mallory password 1"), ("csrf", &other_token)])
        .await
        .assert_status(StatusCode::FORBIDDEN, "root's session with the token of root's other session");
    assert!(!user_exists(&web, "mallory").await);
}

#[tokio::test]
async fn non_admin_gets_403_on_every_admin_page() {
    let web = gateway().await;
    let carol = web.login("carol", CAROL_PASSWORD).await;
    for path in ADMIN_PAGES {
        carol.get(path).await.assert_status(StatusCode::FORBIDDEN, &format!("carol GET {path}"));
    }
}

#[tokio::test]
async fn non_admin_is_refused_admin_actions_even_with_her_own_csrf_token() {
    let web = gateway().await;
    let carol = web.login("carol", CAROL_PASSWORD).await;
    let token = carol.get("/account").await.csrf();
    carol
        .post("/admin/users/carol/admin", &[("on", "on"), ("csrf", &token)])
        .await
        .assert_status(StatusCode::FORBIDDEN, "carol makes herself admin");
    carol
        .post("/admin/users", &[("name", "mallory"), ("password", "mallory password 1"), ("csrf", &token)])
        .await
        .assert_status(StatusCode::FORBIDDEN, "carol creates a user");
    carol
        .post("/admin/users/root/lock", &[("on", "on"), ("csrf", &token)])
        .await
        .assert_status(StatusCode::FORBIDDEN, "carol locks root");
    assert!(!users::get(&web.gw.db, "carol").await.expect("carol").is_admin);
    assert!(!user_exists(&web, "mallory").await);
    assert!(!users::get(&web.gw.db, "root").await.expect("root").locked);
}

#[tokio::test]
async fn admin_page_refuses_a_user_whose_admin_flag_was_withdrawn() {
    let web = gateway().await;
    let root = web.login("root", ROOT_PASSWORD).await;
    root.get("/admin/users").await.assert_status(StatusCode::OK, "root as admin");
    users::set_admin(&web.gw.db, "root", false).await.expect("withdrawing the flag");
    root.get("/admin/users").await.assert_status(StatusCode::FORBIDDEN, "the same session after the flag went");
}

#[tokio::test]
async fn expired_session_cookie_is_refused() {
    let web = gateway().await;
    let root_id = users::get(&web.gw.db, "root").await.expect("root").id;
    let live = web.client();
    live.set_cookie(SESSION_COOKIE, &stored_session(&web, root_id, 3600).await);
    live.get("/admin/users").await.assert_status(StatusCode::OK, "an unexpired stored session is a login");

    let expired = web.client();
    expired.set_cookie(SESSION_COOKIE, &stored_session(&web, root_id, 0).await);
    expired.get("/account").await.assert_redirect("/login", "an expired session");
    expired.get("/admin/users").await.assert_redirect("/login", "an expired session on an admin page");
}

#[tokio::test]
async fn forged_or_logged_out_session_cookie_is_refused() {
    let web = gateway().await;
    let forged = web.client();
    forged.set_cookie(SESSION_COOKIE, &new_token());
    forged.get("/account").await.assert_redirect("/login", "a made-up session token");

    // The cookie of a session that logged out is worth nothing afterwards.
    let carol = web.login("carol", CAROL_PASSWORD).await;
    let old = carol.cookie(SESSION_COOKIE).expect("carol's session cookie");
    let token = carol.get("/account").await.csrf();
    carol.post("/logout", &[("csrf", &token)]).await.assert_redirect("/login", "logout");
    let replay = web.client();
    replay.set_cookie(SESSION_COOKIE, &old);
    replay.get("/account").await.assert_redirect("/login", "the logged-out session's cookie");
}

#[tokio::test]
async fn cookies_from_before_the_login_are_not_a_login() {
    let web = gateway().await;
    let c = web.client();
    c.get("/login").await.assert_status(StatusCode::OK, "login form");
    assert_eq!(c.cookie(SESSION_COOKIE), None, "the login form starts no session");
    let pre = c.cookie(PRE_LOGIN_COOKIE).expect("the login form's cookie");
    // A session id planted before the login (fixation) is not the one the login makes.
    let planted = new_token();
    c.set_cookie(SESSION_COOKIE, &planted);
    c.password_step("carol", CAROL_PASSWORD).await.assert_redirect("/account", "login");
    assert_ne!(c.cookie(SESSION_COOKIE).as_deref(), Some(planted.as_str()), "the id is the gateway's own");
    let fixation = web.client();
    fixation.set_cookie(PRE_LOGIN_COOKIE, &pre);
    fixation.set_cookie(SESSION_COOKIE, &planted);
    fixation.get("/account").await.assert_redirect("/login", "the cookies from before the login");
}

#[tokio::test]
async fn session_at_the_factor_step_is_not_a_login() {
    let web = gateway().await;
    let carol_id = users::get(&web.gw.db, "carol").await.expect("carol").id;
    keyword::set(&web.gw, carol_id, "purple elephant").await.expect("setting a keyword");
    let c = web.client();
    c.password_step("carol", CAROL_PASSWORD).await.assert_redirect("/login/factor", "password step");
    for path in ["/account", "/account/keys", "/enroll"] {
        c.get(path).await.assert_redirect("/login", &format!("GET {path} with the password alone"));
    }
}

#[tokio::test]
async fn session_of_a_locked_user_is_refused() {
    let web = gateway().await;
    let carol = web.login("carol", CAROL_PASSWORD).await;
    users::set_locked(&web.gw.db, "carol", true).await.expect("locking carol");
    carol.get("/account").await.assert_redirect("/login", "a locked user's session");
}

#[tokio::test]
async fn login_post_with_a_bad_csrf_token_is_refused() {
    let web = gateway().await;
    let c = web.client();
    let right = c.get("/login").await.csrf();
    let cookie_before = c.cookie(SESSION_COOKIE);
    for (token, what) in [("", "no token"), ("0000", "a wrong token")] {
        let mut form = vec![("username", "root"), ("password", ROOT_PASSWORD)];
        if !token.is_empty() {
            form.push(("csrf", token));
        }
        let reply = c.post("/login", &form).await;
        reply.assert_status(StatusCode::FORBIDDEN, &format!("login with {what}"));
        assert!(reply.set_cookies.is_empty(), "a refused login sets no cookie: {:?}", reply.set_cookies);
    }
    assert_eq!(c.cookie(SESSION_COOKIE), cookie_before, "the session id did not move");
    c.get("/account").await.assert_redirect("/login", "still not logged in");

    // A browser without the login form's session cannot post it either, whatever it sends.
    let stranger = web.client();
    stranger
        .post("/login", &[("username", "root"), ("password", ROOT_PASSWORD), ("csrf", &right)])
        .await
        .assert_status(StatusCode::FORBIDDEN, "login with a token but no session");
    stranger.get("/account").await.assert_redirect("/login", "the stranger is not logged in");

    // The same form with its token logs in: the refusals were the token's doing.
    c.post("/login", &[("username", "root"), ("password", ROOT_PASSWORD), ("csrf", &right)])
        .await
        .assert_redirect("/account", "login with the form's token");
}
