//! Directory accounts in the web UI, in a real headless Chromium against a real OpenLDAP
//! `slapd`: a directory user logs in with the directory's password, is sent to enrollment
//! by a directory group that forces 2FA, enrolls TOTP, and is then asked for it over SSH by
//! the real OpenSSH client; their password page points to the directory. An administrator
//! sees the user's store and entry, and the health page's directory line with its test
//! bind; with the directory down, the login page says so and the health page shows the
//! error. Screenshots go to `tests/screenshots/directory-*.png`.

mod common;
mod web_support;

use common::ldap::Slapd;
use common::{Backend, Gw, Ssh, stderr};
use web_support::chrome::{
    body, browser_trusting, click, enroll_totp, fill, login, logout, shot, start_driver, wait_path, wait_text,
};

const PASSWORD: &str = "lena's directory password";
const ADMIN_PASSWORD: &str = "the local admin's password";

#[tokio::test]
async fn a_directory_user_enrolls_on_the_web_and_an_administrator_sees_the_store() {
    let mut slapd = Slapd::start();
    slapd.add_user("lena", PASSWORD, Some("lena@example.test"), &[]);
    slapd.add_group("ops", &["lena"]);
    let mut gw = Gw::with_config(
        Backend::Sqlite,
        &format!(
            "[ldap]\nurls = [\"{}\"]\nca_file = \"{}\"\nbind_dn = \"{}\"\nuser_base = \"{}\"\n\
             user_filter = \"(objectClass=inetOrgPerson)\"\ngroup_base = \"{}\"\nsync_interval_secs = 0\n\
             timeout_secs = 2\n\n[ldap.groups]\n\"cn=ops,{}\" = \"ops\"\n",
            slapd.url(),
            slapd.ca_cert_path().display(),
            slapd.service_dn(),
            slapd.people_dn(),
            slapd.groups_dn(),
            slapd.groups_dn(),
        ),
    );
    gw.set_env("GATEHOUSE_LDAP__BIND_PASSWORD", slapd.service_password());
    gw.start();
    gw.add_user("boss", ADMIN_PASSWORD);
    gw.cli_ok(&["user", "admin", "boss", "on"]);
    // Not what this test is about: the administrators' scope (on at first start) would send
    // boss to enrollment first.
    gw.cli_ok(&["policy", "force-2fa", "off", "--admins"]);
    gw.cli_ok(&["group", "add", "ops"]);
    gw.cli_ok(&["policy", "force-2fa", "on", "--group", "ops"]);

    let driver = start_driver();
    let c = browser_trusting(&driver, &gw).await;

    // Lena's first login anywhere is on the web: the directory checks the password, the
    // account is made, the directory's group forces 2FA: enrollment first.
    login(&c, &gw, "lena", PASSWORD).await;
    wait_path(&c, "/enroll").await;
    shot(&c, "directory-01-enroll").await;
    let mut device = enroll_totp(&c).await;

    // Her password is the directory's: the page says where to change it, and offers no form.
    c.goto(&format!("{}/account/password", gw.web_url())).await.expect("goto password");
    let page = body(&c).await;
    if !page.contains("kept by your organisation") {
        // A change of credentials may first ask for a fresh proof: the code.
        fill(&c, "#code", &device.code()).await;
        click(&c, "form button[type=submit]").await;
        wait_text(&c, "kept by your organisation").await;
    }
    assert!(!body(&c).await.contains("name=\"new\""), "no password form for a directory user");
    shot(&c, "directory-02-password-page").await;
    logout(&c).await;

    // Over SSH, the real client is asked for the code enrolled on the web.
    let ssh = Ssh::new(gw.ssh_port, "lena")
        .arg("-v")
        .stdin("")
        .preferred("keyboard-interactive")
        .on_prompt("Password", PASSWORD)
        .on_prompt("Authenticator code", &device.code());
    let out = ssh.run(&[]);
    assert!(stderr(&out).contains("Authenticated to"), "{:?}\n{}\n{}", ssh.prompts_seen(), stderr(&out), gw.log());

    // The administrator (local) sees where lena's password is checked and her entry.
    login(&c, &gw, "boss", ADMIN_PASSWORD).await;
    wait_path(&c, "/account").await;
    c.goto(&format!("{}/admin/users", gw.web_url())).await.expect("goto users");
    wait_text(&c, "<span class=\"tag\">directory</span>").await;
    c.goto(&format!("{}/admin/users/lena", gw.web_url())).await.expect("goto lena");
    let page = body(&c).await;
    assert!(page.contains("directory (LDAP / Active Directory)"), "{page}");
    assert!(page.contains(&slapd.user_dn("lena")), "{page}");
    assert!(!page.contains("Set a one-time password"), "no password to set for a directory user");
    // Why 2FA applies to her: the group the directory put her in, in the gate's own words.
    assert!(page.contains("<td id=\"why-2fa\">Required by group(s): ops.</td>"), "{page}");
    shot(&c, "directory-03-admin-user").await;

    // The health page: the directory's line and its test bind.
    c.goto(&format!("{}/admin/health", gw.web_url())).await.expect("goto health");
    wait_text(&c, "Directory (LDAP / Active Directory)").await;
    click(&c, "form[action='/admin/health/directory'] button[type=submit]").await;
    wait_text(&c, "OK: the search account bound and can read the user base").await;
    shot(&c, "directory-04-health-ok").await;

    // The directory goes down: lena's web login says so; the health page shows the error.
    slapd.stop();
    logout(&c).await;
    login(&c, &gw, "lena", PASSWORD).await;
    wait_text(&c, "cannot be reached right now").await;
    shot(&c, "directory-05-login-directory-down").await;
    login(&c, &gw, "boss", ADMIN_PASSWORD).await;
    wait_path(&c, "/account").await;
    c.goto(&format!("{}/admin/health", gw.web_url())).await.expect("goto health");
    click(&c, "form[action='/admin/health/directory'] button[type=submit]").await;
    wait_text(&c, "No answer: no directory server answered").await;
    let page = body(&c).await;
    assert!(page.contains("class=\"error-text\">no directory server answered"), "the last error is shown:\n{page}");
    shot(&c, "directory-06-health-down").await;
    assert!(gw.audit("health.directory_test").contains("boss"));
    slapd.restart();
}
