//! The web UI end to end in a real headless Chromium (chromedriver + fantoccini), with the
//! real OpenSSH client checking what the SSH gate does after each web step:
//!
//! first login and forced password change → the administrator turns on force-2FA for a
//! group → that group's member is sent to enrollment, scans nothing but types the manual
//! key into `oathtool` → over SSH the member is now asked for the code → the method used on
//! the web becomes the SSH default → a trusted browser skips the web prompt but not SSH.
//!
//! Screenshots of the main pages land in `tests/screenshots/` (ignored by git).

mod common;
mod web_support;

use common::{Backend, Gw, Ssh, TotpDevice, stderr};
use fantoccini::{Client, Locator};
use web_support::chrome::{body, browser, click, fill, shot, start_driver, wait_path, wait_text};
use web_support::{ADMIN_PASSWORD, bootstrap_password};

const DAVE_PASSWORD: &str = "dave's own password";
const KEYWORD: &str = "purple elephant";

async fn login(c: &Client, gw: &Gw, user: &str, password: &str) {
    c.goto(&format!("{}/login", gw.web_url())).await.expect("goto login");
    fill(c, "#username", user).await;
    fill(c, "#password", password).await;
    click(c, "form[action='/login'] button[type=submit]").await;
}

async fn logout(c: &Client) {
    click(c, "form[action='/logout'] button").await;
    wait_path(c, "/login").await;
}

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
    let mut gw = Gw::new(Backend::Sqlite);
    gw.start();
    let driver = start_driver();
    let c = browser(&driver).await;

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
    let key = c.find(Locator::Css("#manual-key")).await.expect("manual key").text().await.expect("key text");
    let mut device = TotpDevice::new(key.trim());
    fill(&c, "#code", &device.code()).await;
    click(&c, "form[action='/account/totp'] button[type=submit]").await;
    wait_path(&c, "/account").await;
    wait_text(&c, "Your authenticator app is set up").await;

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
