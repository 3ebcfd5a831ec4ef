//! The web UI end to end in a real headless Chromium (chromedriver + fantoccini), with the
//! real OpenSSH client checking what the SSH gate does after each web step:
//!
//! first login and forced password change → the administrator turns on force-2FA for a
//! group → that group's member is sent to enrollment, scans nothing but types the manual
//! key into `oathtool` → over SSH the member is now asked for the code → the method used on
//! the web becomes the SSH default → a trusted browser skips the web prompt but not SSH.
//!
//! A second test tours every HTML page of the router as the user it is for and saves a
//! full-page screenshot of each, `page-NN-<path>.png`, beside the story's own shots in
//! `tests/screenshots/` (ignored by git; each run writes them anew).

mod common;
mod web_support;

use common::{Backend, Gw, SmtpSink, Ssh, stderr};
use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use web_support::chrome::{
    body, browser, browser_trusting, click, enroll_totp, fill, full_page_shot, login, logout, path, screenshots, shot,
    start_driver, wait_path, wait_text,
};
use web_support::{ADMIN_PASSWORD, admin_browser, bootstrap_password};

const DAVE_PASSWORD: &str = "dave's own password";
const KEYWORD: &str = "purple elephant";

async fn change_password(c: &Client, current: &str, new: &str) {
    wait_path(c, "/account/password").await;
    fill(c, "#current", current).await;
    fill(c, "#new", new).await;
    fill(c, "#confirm", new).await;
    click(c, "form[action='/account/password'] button[type=submit]").await;
}

fn ssh_password(gw: &Gw, user: &str, password: &str) -> Ssh {
    Ssh::new(gw.ssh_port, user).arg("-v").stdin("").preferred("password,keyboard-interactive").password(password)
}

#[tokio::test]
async fn browser_story_from_first_login_to_trusted_browser() {
    // HTTPS with the self-signed certificate: the product's default, as an admin meets it.
    let mut gw = Gw::with_config(Backend::Sqlite, "[web]\n");
    gw.start();
    // This story is about a group's forcing; the first start's administrators' scope is
    // tests/web_force_scopes.rs's.
    gw.cli_ok(&["policy", "force-2fa", "off", "--admins"]);
    let driver = start_driver();
    let c = browser_trusting(&driver, &gw).await;

    // First login of the bootstrap administrator, forced password change.
    c.goto(&format!("{}/login", gw.web_url())).await.expect("goto");
    shot(&c, "01-login").await;
    login(&c, &gw, "admin", &bootstrap_password(&gw)).await;
    shot(&c, "02-forced-password-change").await;
    change_password(&c, &bootstrap_password(&gw), ADMIN_PASSWORD).await;
    wait_text(&c, "Your password was changed").await;

    // A user and a group whose members must pass a second factor.
    c.goto(&format!("{}/admin/users", gw.web_url())).await.expect("goto users");
    fill(&c, "#name", "dave").await;
    fill(&c, "#password", "dave one-time 1").await;
    click(&c, "form[action='/admin/users'] button[type=submit]").await;
    wait_path(&c, "/admin/users/dave").await;
    c.goto(&format!("{}/admin/groups", gw.web_url())).await.expect("goto groups");
    shot(&c, "03-admin-groups-empty").await;
    fill(&c, "#name", "ops").await;
    click(&c, "form[action='/admin/groups'] button[type=submit]").await;
    wait_path(&c, "/admin/groups/ops").await;
    click(&c, "#user option[value='dave']").await;
    click(&c, "form[action='/admin/groups/ops/members'] button[type=submit]").await;
    wait_text(&c, "value=\"dave\"><button class=\"danger small\"").await;
    click(&c, "#group-force-toggle").await;
    wait_text(&c, "Stop requiring 2FA").await;
    assert!(body(&c).await.contains(">dave</a>"), "dave is a member");
    shot(&c, "04-admin-group-forced").await;
    for (p, name) in [
        ("/admin/users", "05-admin-users"),
        ("/admin/policy", "06-admin-policy"),
        ("/admin/audit", "07-admin-audit"),
        ("/admin/targets", "08-admin-targets"),
        ("/admin/recordings", "09-admin-recordings"),
        ("/admin/live", "10-admin-live"),
    ] {
        c.goto(&format!("{}{p}", gw.web_url())).await.expect("goto admin page");
        shot(&c, name).await;
    }
    logout(&c).await;

    // Dave: new password, then enrollment before anything else.
    login(&c, &gw, "dave", "dave one-time 1").await;
    change_password(&c, "dave one-time 1", DAVE_PASSWORD).await;
    wait_path(&c, "/enroll").await;
    c.goto(&format!("{}/account/keys", gw.web_url())).await.expect("goto keys");
    wait_path(&c, "/enroll").await;
    let qr = c.find(Locator::Css(".qr svg")).await.expect("the QR code");
    assert!(qr.attr("viewBox").await.ok().flatten().is_some() || qr.attr("width").await.ok().flatten().is_some());
    shot(&c, "11-enroll").await;
    let mut device = enroll_totp(&c).await;

    // Over SSH, dave is now asked for the code by the real client, and gets in with it.
    let ssh = ssh_password(&gw, "dave", DAVE_PASSWORD).on_prompt("Authenticator code", &device.code());
    let out = ssh.run(&[]);
    assert!(stderr(&out).contains("Authenticated to"), "{:?}\n{}\n{}", ssh.prompts_seen(), stderr(&out), gw.log());
    assert!(ssh.prompts_seen().iter().any(|p| p.contains("Authenticator code")), "{:?}", ssh.prompts_seen());

    // An access keyword as a second method; then a web login with it, trusting the browser.
    fill(&c, "#keyword", KEYWORD).await;
    fill(&c, "#confirm", KEYWORD).await;
    click(&c, "form[action='/account/keyword'] button[type=submit]").await;
    wait_text(&c, "Your access keyword was saved").await;
    shot(&c, "12-account").await;
    logout(&c).await;
    login(&c, &gw, "dave", DAVE_PASSWORD).await;
    wait_path(&c, "/login/factor").await;
    let page = body(&c).await;
    assert!(page.contains("Enter your <strong>Authenticator code</strong>"), "the last-used method is offered first");
    shot(&c, "13-second-factor").await;
    click(&c, "a[href='/login/factor?method=keyword']").await;
    wait_text(&c, "Enter your <strong>Access keyword</strong>").await;
    fill(&c, "#code", KEYWORD).await;
    click(&c, "input[name=trust]").await;
    click(&c, "form[action='/login/factor'] button[type=submit]").await;
    wait_path(&c, "/account").await;

    // The method used on the web is what SSH asks first now.
    let ssh = ssh_password(&gw, "dave", DAVE_PASSWORD).on_prompt("keyword", KEYWORD);
    let out = ssh.run(&[]);
    assert!(stderr(&out).contains("Authenticated to"), "{:?}\n{}", ssh.prompts_seen(), stderr(&out));
    let first_factor =
        ssh.prompts_seen().into_iter().find(|p| !p.to_lowercase().contains("password")).unwrap_or_default();
    assert!(
        first_factor.contains("keyword"),
        "SSH must ask first for the method last used on the web: {:?}",
        ssh.prompts_seen()
    );

    // The trusted browser skips the web prompt...
    c.goto(&format!("{}/account/devices", gw.web_url())).await.expect("goto devices");
    assert!(body(&c).await.contains("this browser"));
    shot(&c, "14-trusted-browsers").await;
    logout(&c).await;
    login(&c, &gw, "dave", DAVE_PASSWORD).await;
    wait_path(&c, "/account").await;
    // ...but never SSH: without an answer to the factor, no way in.
    let ssh = ssh_password(&gw, "dave", DAVE_PASSWORD);
    let out = ssh.run(&[]);
    assert!(!stderr(&out).contains("Authenticated to"), "SSH must still ask: {:?}", ssh.prompts_seen());
    assert!(ssh.prompts_seen().iter().any(|p| p.contains("keyword")), "{:?}", ssh.prompts_seen());

    for (p, name) in [("/account/keys", "15-keys"), ("/account/passcodes", "16-passcodes")] {
        c.goto(&format!("{}{p}", gw.web_url())).await.expect("goto account page");
        shot(&c, name).await;
    }
    // The trusted browser stood in for the factor, so changing the password asks for it.
    c.goto(&format!("{}/account/password", gw.web_url())).await.expect("goto password");
    wait_path(&c, "/account/confirm").await;
    wait_text(&c, "Confirm it is you").await;
    shot(&c, "17-confirm").await;
    fill(&c, "#code", KEYWORD).await;
    click(&c, "form[action='/account/confirm'] button[type=submit]").await;
    wait_path(&c, "/account/password").await;
    shot(&c, "18-password").await;
    c.close().await.expect("closing the browser");
}

/// Who the browser is for a page of the tour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    /// `mia`: password accepted, her email factor pending.
    FactorStep,
    /// `frank`: in a forced group with no factor yet.
    Enrolling,
    /// `erin`: exempt, so her login skipped the keyword she has; a change asks for it.
    Unconfirmed,
    /// `carol`: logged in with her password and her keyword.
    User,
    /// The bootstrap administrator.
    Admin,
}

/// Every HTML page of the router, in the order of the tour: the route as
/// `webui/src/routes/mod.rs` writes it, the path opened (`{token}` and `{recording}` come
/// from the set-up), and who opens it. Each `Who` is one contiguous run.
const TOUR: &[(&str, &str, Who)] = &[
    ("/login", "/login", Who::Anonymous),
    ("/login/factor", "/login/factor", Who::FactorStep),
    ("/authorize/{token}", "/authorize/{token}", Who::FactorStep),
    ("/enroll", "/enroll", Who::Enrolling),
    ("/account/confirm", "/account/confirm?next=/account/keys", Who::Unconfirmed),
    ("/account", "/account", Who::User),
    ("/account/totp", "/account/totp", Who::User),
    ("/account/yubikey", "/account/yubikey", Who::User),
    ("/account/security-keys", "/account/security-keys", Who::User),
    ("/account/email", "/account/email", Who::User),
    // A link of no waiting login: what a stale or mistyped approval link shows.
    ("/approve/{token}", "/approve/no-such-login", Who::User),
    ("/account/keys", "/account/keys", Who::User),
    ("/account/ssh-security-keys", "/account/ssh-security-keys", Who::User),
    ("/account/password", "/account/password", Who::User),
    ("/account/devices", "/account/devices", Who::User),
    ("/account/passcodes", "/account/passcodes", Who::User),
    ("/admin/users", "/admin/users", Who::Admin),
    ("/admin/users/{name}", "/admin/users/carol", Who::Admin),
    ("/admin/groups", "/admin/groups", Who::Admin),
    ("/admin/groups/{name}", "/admin/groups/ops", Who::Admin),
    ("/admin/policy", "/admin/policy", Who::Admin),
    ("/admin/targets", "/admin/targets", Who::Admin),
    ("/admin/targets/{name}", "/admin/targets/web1", Who::Admin),
    ("/admin/audit", "/admin/audit", Who::Admin),
    ("/admin/recordings", "/admin/recordings", Who::Admin),
    ("/admin/recordings/{id}", "/admin/recordings/{recording}", Who::Admin),
    ("/admin/live", "/admin/live", Who::Admin),
    ("/admin/health", "/admin/health", Who::Admin),
];

/// GET routes that serve no page to look at.
const NOT_PAGES: &[&str] = &[
    "/healthz",
    "/static/style.css",
    "/static/player.js",
    "/static/webauthn.js",
    "/",
    "/admin",
    "/admin/recordings/{id}/cast",
];

const CAROL_PASSWORD: &str = "carol's own password";
const TOUR_PASSWORD: &str = "a tour password 1";
const MIA: &str = "mia@example.com";

/// The GET routes `webui/src/routes/mod.rs` declares.
fn router_get_routes() -> Vec<String> {
    include_str!("../webui/src/routes/mod.rs")
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(".route(\"") && l.contains("get("))
        .filter_map(|l| l.strip_prefix(".route(\"")?.split('"').next().map(str::to_string))
        .collect()
}

/// `page-07-account-totp`: the tour's number, then the path without its query.
fn shot_name(n: usize, path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let slug: String = path.trim_matches('/').replace(['/', '{', '}'], "-").replace("--", "-");
    format!("page-{n:02}-{}", slug.trim_matches('-'))
}

/// Users, a forced group, a target, a recording and a live session, so every page has
/// something to show. Returns the recording's id.
async fn furnish(gw: &Gw, smtp: &SmtpSink) -> String {
    let admin = admin_browser(gw).await;
    gw.add_user("carol", CAROL_PASSWORD);
    gw.assert_success(&gw.cli_stdin(&["factor", "keyword", "carol", "--stdin"], &format!("{KEYWORD}\n")), "keyword");
    gw.add_user("erin", TOUR_PASSWORD);
    gw.assert_success(&gw.cli_stdin(&["factor", "keyword", "erin", "--stdin"], "erin's keyword\n"), "keyword");
    admin
        .submit("/admin/users/erin", "/admin/users/erin/exempt", &[("on", "on")])
        .await
        .assert_redirect("/admin/users/erin", "exempt erin");
    gw.add_user("frank", TOUR_PASSWORD);
    admin
        .submit("/admin/groups", "/admin/groups", &[("name", "ops")])
        .await
        .assert_redirect("/admin/groups/ops", "ops");
    admin
        .submit("/admin/groups/ops", "/admin/groups/ops/members", &[("user", "frank")])
        .await
        .assert_redirect("/admin/groups/ops", "frank joins ops");
    admin
        .submit("/admin/groups/ops", "/admin/groups/ops/force", &[("on", "on")])
        .await
        .assert_redirect("/admin/groups/ops", "force 2FA for ops");
    gw.add_user("mia", TOUR_PASSWORD);
    gw.cli_ok(&["factor", "email", "enroll", "mia", MIA]);
    let code = smtp.wait_for(MIA, 1).code();
    gw.cli_ok(&["factor", "email", "confirm", "mia", &code]);
    let target = [
        ("name", "web1"),
        ("host", "192.0.2.10"),
        ("port", "22"),
        ("username", "deploy"),
        ("credential_kind", "password"),
        ("credential", "target password"),
        ("host_key", ""),
    ];
    admin.submit("/admin/targets", "/admin/targets", &target).await.assert_redirect("/admin/targets/web1", "web1");
    admin
        .submit("/admin/targets/web1", "/admin/targets/web1/grant", &[("kind", "user"), ("who", "carol")])
        .await
        .assert_status(StatusCode::SEE_OTHER, "grant web1 to carol");
    // Recordings and live sessions come from SSH sessions (tests/web_sessions.rs makes real
    // ones); for the pictures a row and a file do.
    let dir = gw.data_dir().join("recordings");
    std::fs::create_dir_all(&dir).expect("the recordings folder");
    std::fs::write(
        dir.join("web1-tour.cast"),
        "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.4, \"o\", \"deploy@web1:~$ \"]\n[1.2, \"o\", \"uptime\\r\\n\"]\n",
    )
    .expect("writing a recording");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    gw.sql(&format!(
        "INSERT INTO recordings (user_name, target_name, node, path, width, height, started_at, ended_at, size) \
         VALUES ('carol', 'web1', 'tour', 'web1-tour.cast', 80, 24, {}, {now}, 120)",
        now - 90
    ));
    let id = gw.sql("SELECT id FROM recordings WHERE path = 'web1-tour.cast'").trim().to_string();
    gw.sql(&format!(
        "INSERT INTO live_sessions (node, user_name, target_name, source, kind, recording_id, started_at, last_seen) \
         VALUES ('tour', 'carol', 'web1', '127.0.0.1', 'shell', {id}, {}, {now})",
        now - 30
    ));
    id
}

/// Makes the browser `who`, from no cookies at all.
async fn act_as(c: &Client, gw: &Gw, who: Who) {
    c.delete_all_cookies().await.expect("deleting cookies");
    match who {
        Who::Anonymous => {}
        Who::FactorStep => {
            login(c, gw, "mia", TOUR_PASSWORD).await;
            wait_path(c, "/login/factor").await;
        }
        Who::Enrolling => {
            login(c, gw, "frank", TOUR_PASSWORD).await;
            wait_path(c, "/enroll").await;
        }
        Who::Unconfirmed => {
            login(c, gw, "erin", TOUR_PASSWORD).await;
            wait_path(c, "/account").await;
        }
        Who::User => {
            login(c, gw, "carol", CAROL_PASSWORD).await;
            wait_path(c, "/login/factor").await;
            fill(c, "#code", KEYWORD).await;
            click(c, "form[action='/login/factor'] button[type=submit]").await;
            wait_path(c, "/account").await;
        }
        Who::Admin => {
            login(c, gw, "admin", ADMIN_PASSWORD).await;
            wait_path(c, "/account").await;
        }
    }
}

#[tokio::test]
async fn browser_shows_every_page_of_the_router() {
    let listed: Vec<&str> = TOUR.iter().map(|(route, _, _)| *route).chain(NOT_PAGES.iter().copied()).collect();
    let unlisted: Vec<String> = router_get_routes().into_iter().filter(|r| !listed.contains(&r.as_str())).collect();
    assert!(unlisted.is_empty(), "GET routes missing from TOUR (or NOT_PAGES): {unlisted:?}");

    let smtp = SmtpSink::start();
    let mut gw = Gw::with_config(Backend::Sqlite, &smtp.config());
    gw.start();
    let recording = furnish(&gw, &smtp).await;
    let driver = start_driver();
    let c = browser(&driver).await;
    for old in std::fs::read_dir(screenshots()).expect("reading tests/screenshots").flatten() {
        if old.file_name().to_string_lossy().starts_with("page-") {
            let _ = std::fs::remove_file(old.path());
        }
    }

    let mut token = String::new();
    let mut current: Option<Who> = None;
    for (n, (route, template, who)) in TOUR.iter().enumerate() {
        if current != Some(*who) {
            act_as(&c, &gw, *who).await;
            current = Some(*who);
        }
        if route.starts_with("/authorize/") && token.is_empty() {
            // Mia's factor page mailed her the link (the first mail was her enrollment code).
            let link = smtp.wait_for(MIA, 2).authorize_link();
            token = link.rsplit('/').next().unwrap_or_default().to_string();
        }
        let target = template.replace("{token}", &token).replace("{recording}", &recording);
        c.goto(&format!("{}{target}", gw.web_url())).await.unwrap_or_else(|e| panic!("goto {target}: {e}"));
        let want = target.split('?').next().unwrap_or(&target);
        assert_eq!(path(&c).await, want, "{who:?} opening {target} was sent elsewhere:\n{}", body(&c).await);
        let title = c.title().await.expect("the page title");
        assert!(
            !title.contains(['<', '>']) && title.chars().count() <= 80,
            "{target}: the tab title is not a short plain text: {title:?}"
        );
        if *route == "/admin/recordings/{id}" {
            // The player (a script, under the page's Content-Security-Policy) loads the
            // cast and plays it to the end.
            wait_text(&c, "data-finished=\"true\"").await;
            wait_text(&c, "uptime").await;
        }
        full_page_shot(&c, &shot_name(n + 1, &template.replace("{recording}", &recording))).await;
    }

    // What the health page once lost: the Duo /check button, on screen.
    c.goto(&format!("{}/admin/health", gw.web_url())).await.expect("goto health");
    let duo = c.find(Locator::Css("form[action='/admin/health/duo'] button")).await.expect("the Duo /check button");
    assert!(duo.is_displayed().await.expect("visibility"), "the Duo /check button is not shown");
    assert_eq!(c.title().await.expect("title"), "Health · Gatehouse");
    c.close().await.expect("closing the browser");
}
