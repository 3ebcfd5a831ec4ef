//! The finer force-2FA scopes in a real headless Chromium: on a new installation every
//! administrator must use 2FA, so the bootstrap administrator's first web login ends on
//! forced enrollment and no admin page opens before a factor is enrolled; then the admin
//! user page says, for each user, why 2FA is or is not required of them (a forcing group,
//! their own override, the administrators' scope), and sets a user's override.
//!
//! Screenshots go to `tests/screenshots/scopes-*.png`.

mod common;
mod web_support;

use common::{Backend, Gw};
use fantoccini::{Client, Locator};
use web_support::chrome::{
    body, browser, click, enroll_totp, fill, full_page_shot, shot, start_driver, wait_path, wait_text,
};
use web_support::{ADMIN_PASSWORD, bootstrap_password};

const PASSWORD: &str = "a user's password 1";

async fn goto(c: &Client, gw: &Gw, path: &str) {
    c.goto(&format!("{}{path}", gw.web_url())).await.unwrap_or_else(|e| panic!("goto {path}: {e}"));
}

/// The "Why 2FA" sentence of the admin user page of `user`.
async fn why(c: &Client, gw: &Gw, user: &str) -> String {
    goto(c, gw, &format!("/admin/users/{user}")).await;
    wait_path(c, &format!("/admin/users/{user}")).await;
    let cell = c.find(Locator::Css("#why-2fa")).await.unwrap_or_else(|e| panic!("no #why-2fa for {user}: {e}"));
    cell.text().await.expect("the sentence").trim().to_string()
}

#[tokio::test]
async fn the_first_administrator_enrolls_before_any_admin_page_and_sees_why_2fa_applies() {
    let mut gw = Gw::new(Backend::Sqlite);
    gw.start();
    // The first start turned the administrators' scope on, and said so in the audit log.
    assert!(gw.cli_ok(&["policy", "show"]).contains("force 2FA (admins): on"), "{}", gw.cli_ok(&["policy", "show"]));
    let audit = gw.audit("policy.force_2fa");
    assert!(audit.contains("bootstrap") && audit.contains("administrators: on"), "{audit}");

    let driver = start_driver();
    let c = browser(&driver).await;

    // First login: the one-time password is replaced, then enrollment, before anything.
    goto(&c, &gw, "/login").await;
    fill(&c, "#username", "admin").await;
    fill(&c, "#password", &bootstrap_password(&gw)).await;
    click(&c, "form[action='/login'] button[type=submit]").await;
    wait_path(&c, "/account/password").await;
    fill(&c, "#current", &bootstrap_password(&gw)).await;
    fill(&c, "#new", ADMIN_PASSWORD).await;
    fill(&c, "#confirm", ADMIN_PASSWORD).await;
    click(&c, "form[action='/account/password'] button[type=submit]").await;
    wait_path(&c, "/enroll").await;
    shot(&c, "scopes-01-admin-forced-enrollment").await;
    for page in ["/admin/users", "/admin/policy", "/admin/groups", "/admin/audit", "/admin/users/admin", "/account"] {
        goto(&c, &gw, page).await;
        wait_path(&c, "/enroll").await;
    }
    assert!(!body(&c).await.contains("href=\"/admin/users\""), "no admin navigation before a factor");

    // An authenticator app: the admin pages open.
    enroll_totp(&c).await;
    goto(&c, &gw, "/admin/users").await;
    wait_path(&c, "/admin/users").await;

    // dave and erin are in the forced group ops; erin's own override sets it aside; frank
    // is in no group.
    gw.cli_ok(&["group", "add", "ops"]);
    for user in ["dave", "erin", "frank"] {
        gw.add_user(user, PASSWORD);
    }
    gw.cli_ok(&["group", "add-member", "ops", "dave"]);
    gw.cli_ok(&["group", "add-member", "ops", "erin"]);
    gw.cli_ok(&["policy", "force-2fa", "on", "--group", "ops"]);
    gw.cli_ok(&["user", "force-2fa", "erin", "off"]);

    assert_eq!(why(&c, &gw, "dave").await, "Required by group(s): ops.");
    full_page_shot(&c, "scopes-02-user-forced-by-group").await;
    assert_eq!(why(&c, &gw, "erin").await, "Not required: forcing is turned off for erin, overriding group(s) ops.");
    shot(&c, "scopes-03-user-override-off").await;
    assert_eq!(
        why(&c, &gw, "admin").await,
        "Required: admin is an administrator and every administrator must use 2FA."
    );
    assert!(body(&c).await.contains("this setting does not apply while that scope is on"));
    assert_eq!(
        why(&c, &gw, "frank").await,
        "Not required: no scope forces 2FA on this account and no factor is enrolled."
    );

    // The override, set on the page: frank is now forced, by his own setting.
    click(&c, "#force option[value='on']").await;
    click(&c, "#user-force-save").await;
    wait_text(&c, "Saved.").await;
    let sentence = c.find(Locator::Css("#why-2fa")).await.expect("the sentence").text().await.expect("text");
    assert_eq!(sentence.trim(), "Required: forcing is turned on for frank.");
    let selected = c.find(Locator::Css("#force option[selected]")).await.expect("the selected option");
    assert_eq!(selected.attr("value").await.expect("value").as_deref(), Some("on"));
    full_page_shot(&c, "scopes-04-user-override-on").await;
    let show = gw.cli_ok(&["user", "show", "frank"]);
    assert!(show.contains("force 2FA:    on") && show.contains("MustEnroll"), "{show}");
    assert!(show.contains("why 2FA:      Required: forcing is turned on for frank."), "{show}");
    let audit = gw.audit("policy.force_2fa");
    assert!(audit.contains("user frank: on") && audit.contains("admin"), "{audit}");

    // The policy page shows the administrators' scope and the users with their own setting.
    goto(&c, &gw, "/admin/policy").await;
    wait_text(&c, "Stop requiring 2FA of administrators").await;
    let page = body(&c).await;
    assert!(page.contains(">erin</a></td><td>force 2FA: off"), "{page}");
    assert!(page.contains(">frank</a></td><td>force 2FA: on"), "{page}");
    full_page_shot(&c, "scopes-05-admin-policy").await;
    c.close().await.expect("closing the browser");
}
