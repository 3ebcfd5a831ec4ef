//! "My account" → SSH security keys over HTTP against a real `gatehouse serve`: a user
//! registers a security key for SSH by pasting its `.pub` line (other key types refused
//! with a clear message), sees it listed with its last use, and removes it; another user
//! cannot remove it; the policy's allowed methods decide whether the page takes one; and
//! the web login never asks for the method, which only signs over SSH.

mod common;
mod web_support;

use common::sk::SoftSk;
use common::{Gw, TotpDevice, backends};
use reqwest::StatusCode;
use web_support::{Browser, admin_browser, audit};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn security_keys_are_registered_listed_and_removed_on_the_account_page() {
    for backend in backends() {
        let mut gw = Gw::new(backend);
        gw.start();
        gw.add_user("alice", PASSWORD);
        gw.add_user("bob", PASSWORD);
        let mut device = TotpDevice::new(&gw.enroll_totp("alice"));
        let b = Browser::new(&gw);
        b.login_with_factor("alice", PASSWORD, "totp", &device.code()).await.assert_redirect("/account", "login");
        b.get("/account/ssh-security-keys").await.assert_contains("No security keys yet", "empty state");

        let plain = gw.new_key("plain");
        b.submit("/account/ssh-security-keys", "/account/ssh-security-keys", &[("key", &plain.line), ("name", "")])
            .await
            .assert_status(StatusCode::BAD_REQUEST, "a plain key")
            .assert_contains("not a security key", "message");

        let key = SoftSk::ed25519("ssh:");
        let line = key.line("alice@laptop");
        b.submit(
            "/account/ssh-security-keys",
            "/account/ssh-security-keys",
            &[("key", &line), ("name", "desk key"), ("verify_required", "on")],
        )
        .await
        .assert_redirect("/account/ssh-security-keys?ok=ssh-security-key-added", "add");
        let page = b.get("/account/ssh-security-keys?ok=ssh-security-key-added").await;
        page.assert_contains("desk key", "name")
            .assert_contains("sk-ssh-ed25519@openssh.com", "type")
            .assert_contains("required", "PIN column")
            .assert_contains("The security key was registered", "notice");
        let listed = gw.cli_ok(&["factor", "ssh-sk", "list", "alice"]);
        assert!(listed.contains("desk key") && listed.contains("verify-required"), "{listed}");
        b.get("/account").await.assert_contains("Security key (SSH)", "the factor overview");
        b.submit("/account/ssh-security-keys", "/account/ssh-security-keys", &[("key", &line)])
            .await
            .assert_status(StatusCode::BAD_REQUEST, "twice")
            .assert_contains("already registered", "message");

        // The web login does not ask for it, even when picked by name.
        let other = Browser::new(&gw);
        other.login_to_factor("alice", PASSWORD).await;
        let step = other.get("/login/factor?method=ssh-sk").await;
        step.assert_status(StatusCode::OK, "factor page");
        assert!(!step.body.contains("Security key (SSH)"), "the web offers the SSH-only method:\n{}", step.body);

        // A user whose only factor is a security key is told the web cannot ask for it.
        gw.add_user("carol", PASSWORD);
        gw.cli_ok(&["factor", "ssh-sk", "add", "carol", &SoftSk::ed25519("ssh:").line("carol")]);
        let carol = Browser::new(&gw);
        carol.login_to_factor("carol", PASSWORD).await;
        carol
            .get("/login/factor")
            .await
            .assert_status(StatusCode::FORBIDDEN, "an SSH-only factor on the web")
            .assert_contains("works over SSH only", "message");

        // Bob cannot remove alice's key by its id.
        let json = gw.cli_json(&["factor", "ssh-sk", "list", "alice", "--json"]);
        let id = json[0]["id"].as_i64().expect("an id").to_string();
        let bob = Browser::new(&gw);
        bob.login("bob", PASSWORD).await;
        let bobs = bob.get("/account/ssh-security-keys").await;
        bob.post("/account/ssh-security-keys/remove", &[("csrf", &bobs.csrf()), ("id", &id)])
            .await
            .assert_status(StatusCode::BAD_REQUEST, "another user's key")
            .assert_contains("no such security key", "message");
        assert!(gw.cli_ok(&["factor", "ssh-sk", "list", "alice"]).contains("desk key"));

        // Alice removes it.
        let page = b.get("/account/ssh-security-keys").await;
        b.post("/account/ssh-security-keys/remove", &[("csrf", &page.csrf()), ("id", &id)])
            .await
            .assert_redirect("/account/ssh-security-keys?ok=ssh-security-key-removed", "remove");
        b.get("/account/ssh-security-keys").await.assert_contains("No security keys yet", "gone");
        let removed = audit(&gw, "factor.remove");
        assert!(removed.contains("ssh-sk key") && removed.contains("via web"), "{removed}");
        let enrolled = audit(&gw, "factor.enroll");
        assert!(enrolled.contains("ssh-sk key") && enrolled.contains("desk key"), "{enrolled}");

        // Where the policy does not allow the method, the page takes none.
        gw.cli_ok(&["policy", "methods", "totp,backup-code"]);
        let page = b.get("/account/ssh-security-keys").await;
        page.assert_contains("not among the methods allowed", "not allowed");
        b.post("/account/ssh-security-keys", &[("csrf", &page.csrf()), ("key", &line)])
            .await
            .assert_status(StatusCode::FORBIDDEN, "not allowed");
        assert!(gw.cli_ok(&["factor", "ssh-sk", "list", "alice"]).contains("no security key"));

        // The health page lists the method like every other.
        let admin = admin_browser(&gw).await;
        let health = admin.get("/admin/health").await;
        let start = health.body.find("<td>Security key (SSH)</td>").expect("a health row for the method");
        let row = health.body[start..].split("</tr>").next().unwrap_or_default();
        assert!(row.contains("ready") && row.contains("over SSH only"), "{row}");
    }
}
