//! Directory accounts against a real OpenLDAP `slapd` (StartTLS with a throwaway CA) and
//! the real OpenSSH client: a directory user logs in with the directory's password or a
//! key the directory holds, gets an account at the first login, is forced to a second
//! factor by a directory group, and is refused, with their live connection ended, once the
//! directory disables them. Attacks: filter metacharacters in the login name, an empty
//! password, a server certificate the gateway does not trust, a directory that is down.

mod common;

use std::time::Duration;

use common::ldap::{Slapd, SlapdOptions};
use common::raw::{RawClient, Step};
use common::{Backend, ClientKey, Gw, Master, Ssh, TotpDevice, backends, describe, stderr};

const PASSWORD: &str = "directory password 1";
const LOCAL_PASSWORD: &str = "correct horse battery";

/// How long the gateway may take to notice a change (it polls the database every second).
const NOTICE: Duration = Duration::from_secs(15);

/// The `[ldap]` table for `slapd`: StartTLS, its CA, the search account (its password from
/// the environment), keys from `sshPublicKey`, `ou=groups` mapped (`ops` → `ops`), and a
/// user filter that leaves out accounts locked with ppolicy (disabled).
fn ldap_toml(slapd: &Slapd, url: &str) -> String {
    format!(
        r#"[ldap]
urls = ["{url}"]
ca_file = "{ca}"
bind_dn = "{svc}"
user_base = "{people}"
user_filter = "(&(objectClass=inetOrgPerson)(!(pwdAccountLockedTime=*)))"
ssh_key_attribute = "sshPublicKey"
group_base = "{groups}"
sync_interval_secs = 0
timeout_secs = 2

[ldap.groups]
"cn=ops,{groups}" = "ops"
"cn=dev,{groups}" = "dev"
"#,
        ca = slapd.ca_cert_path().display(),
        svc = slapd.service_dn(),
        people = slapd.people_dn(),
        groups = slapd.groups_dn(),
    )
}

fn gateway(backend: Backend, slapd: &Slapd) -> Gw {
    gateway_at(backend, slapd, &slapd.url())
}

fn gateway_at(backend: Backend, slapd: &Slapd, url: &str) -> Gw {
    let mut gw = Gw::with_config(backend, &ldap_toml(slapd, url));
    gw.set_env("GATEHOUSE_LDAP__BIND_PASSWORD", slapd.service_password());
    gw.start();
    gw
}

/// `ssh` by password typed at keyboard-interactive (what OpenSSH tries first).
fn by_password(gw: &Gw, user: &str, password: &str) -> Ssh {
    Ssh::new(gw.ssh_port, user).arg("-v").stdin("").preferred("keyboard-interactive").on_prompt("Password", password)
}

fn by_key(gw: &Gw, user: &str, key: &ClientKey) -> Ssh {
    Ssh::new(gw.ssh_port, user).arg("-v").stdin("").preferred("publickey").identity(key)
}

#[test]
fn a_directory_user_logs_in_with_the_directory_password_and_gets_an_account() {
    let slapd = Slapd::start();
    slapd.add_user("dana", PASSWORD, Some("dana@example.test"), &[]);
    for backend in backends() {
        let gw = gateway(backend, &slapd);
        // Unknown to Gatehouse so far.
        assert!(gw.cli_err(&["user", "show", "dana"]).contains("not found"));

        let client = by_password(&gw, "dana", PASSWORD);
        gw.assert_logged_in(&client.run(&[]), &format!("{backend:?}: directory password"));
        let show = gw.cli_ok(&["user", "show", "dana"]);
        assert!(show.contains("store:        directory"), "{show}");
        assert!(show.contains(&slapd.user_dn("dana")), "{show}");
        assert!(show.contains("dana@example.test"), "the mail comes from the directory: {show}");
        assert!(gw.audit("directory.provision").contains("account made at first login"), "{}", gw.audit("directory"));
        assert!(gw.audit("login.password").contains("directory password via ssh"));

        // The second login uses the same account; a wrong password is a failure like any.
        gw.assert_logged_in(&by_password(&gw, "dana", PASSWORD).run(&[]), "second login");
        assert_eq!(gw.audit("directory.provision").lines().filter(|l| l.contains("dana")).count(), 1);
        gw.assert_refused(&by_password(&gw, "dana", "not the password").run(&[]), "wrong directory password");
        // (Over SSH a wrong password may be an application passcode: that is checked next.)
        let audit = gw.audit("login.password");
        assert!(audit.contains("wrong password or application passcode"), "{audit}");

        // The gateway stores no password for her and cannot set one.
        let row = gw.sql("SELECT COALESCE(password_hash, 'none') FROM users WHERE name = 'dana'");
        assert_eq!(row.trim(), "none");
        let e = gw.cli_refused(&["user", "passwd", "dana", "--password-stdin"], Some("a new password 1\n"));
        assert!(e.contains("kept by the directory"), "{e}");

        // Local users keep working beside directory users.
        gw.add_user("localadmin", LOCAL_PASSWORD);
        gw.assert_logged_in(&by_password(&gw, "localadmin", LOCAL_PASSWORD).run(&[]), "local user");
        assert!(gw.cli_ok(&["user", "show", "localadmin"]).contains("store:        local"));

        // Neither the user's nor the search account's password reaches the gateway's log.
        let log = gw.log();
        assert!(!log.contains(PASSWORD) && !log.contains(slapd.service_password()), "{log}");
    }
    // The bind went to slapd as the user's own DN.
    assert!(slapd.log().contains(&format!("BIND dn=\"{}\"", slapd.user_dn("dana"))), "{}", slapd.log());
}

#[test]
fn a_key_held_in_the_directory_logs_in_until_the_directory_drops_it() {
    let slapd = Slapd::start();
    let gw = gateway(Backend::Sqlite, &slapd);
    let key = gw.new_key("erin");
    let other = gw.new_key("stranger");
    slapd.add_user("erin", PASSWORD, None, &[&key.line]);

    // First login by key: the account is made from the directory, the key listed as its.
    gw.assert_logged_in(&by_key(&gw, "erin", &key).run(&[]), "key from the directory");
    let show = gw.cli_ok(&["user", "show", "erin"]);
    assert!(show.contains(&key.fingerprint()) && show.contains("from the directory"), "{show}");
    gw.assert_refused(&by_key(&gw, "erin", &other).run(&[]), "a key the directory does not hold");

    // The directory drops the key: refused at the next login, no restart.
    slapd.set_ssh_keys("erin", &[&other.line]);
    gw.assert_refused(&by_key(&gw, "erin", &key).run(&[]), "a key removed from the directory");
    gw.assert_logged_in(&by_key(&gw, "erin", &other).run(&[]), "the key the directory holds now");
    let show = gw.cli_ok(&["user", "show", "erin"]);
    assert!(!show.contains(&key.fingerprint()), "the removed key is gone here too: {show}");
}

#[test]
fn a_directory_group_forces_the_second_factor_and_membership_follows_the_directory() {
    let slapd = Slapd::start();
    slapd.add_user("finn", PASSWORD, None, &[]);
    slapd.add_group("ops", &["finn"]);
    // dev is mapped but not made here: the first login that needs it makes it.
    slapd.add_group("dev", &["finn"]);
    for backend in backends() {
        let gw = gateway(backend, &slapd);
        gw.cli_ok(&["group", "add", "ops"]);
        gw.cli_ok(&["policy", "force-2fa", "on", "--group", "ops"]);

        // First login: in ops by the directory, so forced: enrollment only.
        let first = by_password(&gw, "finn", PASSWORD);
        let _ = first.run(&[]);
        let show = gw.cli_ok(&["user", "show", "finn"]);
        assert!(show.contains("groups:       dev, ops"), "{show}");
        assert!(show.contains("MustEnroll"), "forced by the directory group: {show}");
        let audit = gw.audit("directory.groups");
        assert!(audit.contains("joined dev, ops") && audit.contains("group(s) dev made for the"), "{audit}");

        // With a factor, the gate asks for it.
        let mut device = TotpDevice::new(&gw.enroll_totp("finn"));
        let client = by_password(&gw, "finn", PASSWORD).on_prompt("Authenticator code", &device.code());
        gw.assert_logged_in(&client.run(&[]), "directory password + TOTP");
        assert!(client.prompts_seen().iter().any(|p| p.contains("Authenticator code")), "{:?}", client.prompts_seen());

        // Out of ops in the directory: out of ops here at the next login.
        slapd.remove_member("ops", "finn");
        let client = by_password(&gw, "finn", PASSWORD).on_prompt("Authenticator code", &device.code());
        gw.assert_logged_in(&client.run(&[]), "after leaving ops (the enrolled factor is still asked)");
        let show = gw.cli_ok(&["user", "show", "finn"]);
        assert!(show.contains("groups:       dev"), "{show}");
        assert!(gw.audit("directory.groups").contains("left ops"), "{}", gw.audit("directory"));
        slapd.add_member("ops", "finn");
    }
}

#[test]
fn disabled_in_the_directory_is_refused_and_the_live_connection_ends() {
    let slapd = Slapd::start();
    let gw = gateway(Backend::Sqlite, &slapd);
    let key = gw.new_key("gail");
    slapd.add_user("gail", PASSWORD, None, &[&key.line]);
    slapd.add_user("hank", PASSWORD, None, &[]);
    gw.assert_logged_in(&by_password(&gw, "hank", PASSWORD).run(&[]), "hank");

    let mut held = Master::open(&gw, "gail", &key);
    assert!(held.run(&["--help"]).status.code().is_some());

    // Disabled in the directory (ppolicy lock): the sync disables the account here, and
    // the connection that was open ends.
    slapd.disable_user("gail");
    slapd.delete_user("hank");
    let report = gw.cli_json(&["directory", "sync", "--json"]);
    assert_eq!(report["checked"], 2, "{report}");
    assert_eq!(report["disabled"], 2, "{report}");
    assert!(held.ended(NOTICE), "gail's connection is still open after the directory disabled her:\n{}", gw.log());
    assert!(gw.audit("session").contains("account disabled in the directory"), "{}", gw.audit("session"));
    assert!(gw.audit("directory.disable").contains("gail"), "{}", gw.audit("directory"));
    assert!(gw.cli_ok(&["user", "show", "gail"]).contains("disabled:     YES"));

    // Refused by key and by password, with no restart.
    gw.assert_refused(&by_key(&gw, "gail", &key).run(&[]), "disabled: key");
    gw.assert_refused(&by_password(&gw, "gail", PASSWORD).run(&[]), "disabled: password");
    gw.assert_refused(&by_password(&gw, "hank", PASSWORD).run(&[]), "deleted: password");

    // Enabled again in the directory: let in again, and the account says so.
    slapd.enable_user("gail");
    gw.assert_logged_in(&by_key(&gw, "gail", &key).run(&[]), "enabled again");
    assert!(!gw.cli_ok(&["user", "show", "gail"]).contains("disabled:     YES"));
    assert!(gw.audit("directory.disable").contains("admits the user again"), "{}", gw.audit("directory"));
}

#[test]
fn a_login_finds_a_disabled_user_without_waiting_for_the_sync() {
    let slapd = Slapd::start();
    let gw = gateway(Backend::Sqlite, &slapd);
    let key = gw.new_key("ivan");
    slapd.add_user("ivan", PASSWORD, None, &[&key.line]);
    let mut held = Master::open(&gw, "ivan", &key);
    slapd.disable_user("ivan");
    // A second login (here by key) asks the directory, which no longer admits him: the
    // account is disabled and the connection that was already open ends.
    gw.assert_refused(&by_key(&gw, "ivan", &key).run(&[]), "disabled in the directory");
    assert!(held.ended(NOTICE), "ivan's connection is still open:\n{}", gw.log());
}

#[tokio::test]
async fn hostile_login_names_find_nothing_and_an_empty_password_is_never_sent() {
    let slapd = Slapd::start();
    slapd.add_user("judy", PASSWORD, None, &[]);
    let gw = gateway(Backend::Sqlite, &slapd);
    // OpenSSH refuses to send most of these names, so the harness's own client sends them.
    for hostile in ["*", "j*", "judy)(uid=*", "*)(|(uid=*", "judy\\", "judy\0"] {
        let mut c = RawClient::connect(gw.ssh_port, hostile).await;
        let step = c.password(PASSWORD).await;
        assert!(matches!(step, Step::Failure { partial: false, .. }), "login name {hostile:?} got {step:?}");
        c.disconnect().await;
    }
    // The metacharacters reached slapd escaped (RFC 4515), as values, never as filter syntax.
    let log = slapd.log();
    assert!(log.contains("(uid=\\2A)") || log.contains("(uid=\\2a)"), "no escaped '*' in:\n{log}");
    assert!(log.contains("(uid=judy\\29\\28uid=\\2A)") || log.contains("(uid=judy\\29\\28uid=\\2a)"), "{log}");
    assert!(log.contains("(uid=judy\\5C)") || log.contains("(uid=judy\\5c)"), "{log}");
    assert!(!log.contains("(uid=*)"), "a wildcard search went to the directory:\n{log}");
    assert!(gw.cli_err(&["user", "show", "judy"]).contains("not found"), "nothing was provisioned");

    // An empty password is refused before the directory is asked: no bind as judy at all.
    let before = slapd.log().matches(&format!("BIND dn=\"{}\"", slapd.user_dn("judy"))).count();
    let out = Ssh::new(gw.ssh_port, "judy")
        .arg("-v")
        .stdin("")
        .preferred("keyboard-interactive")
        .on_prompt("Password", "")
        .run(&[]);
    gw.assert_refused(&out, "empty password");
    let after = slapd.log().matches(&format!("BIND dn=\"{}\"", slapd.user_dn("judy"))).count();
    assert_eq!(before, after, "an empty password reached the directory:\n{}", slapd.log());
    assert!(gw.audit("login.password").contains("empty password (directory)"), "{}", gw.audit("login.password"));
}

#[test]
fn a_directory_that_is_down_or_untrusted_fails_closed_and_local_admins_still_log_in() {
    let mut slapd = Slapd::start();
    slapd.add_user("kate", PASSWORD, None, &[]);
    for backend in backends() {
        let gw = gateway(backend, &slapd);
        gw.add_user("root2", LOCAL_PASSWORD);
        gw.cli_ok(&["user", "admin", "root2", "on"]);
        gw.assert_logged_in(&by_password(&gw, "kate", PASSWORD).run(&[]), "directory up");

        slapd.stop();
        let client = by_password(&gw, "kate", PASSWORD);
        let out = client.run(&[]);
        gw.assert_refused(&out, "directory down");
        assert!(stderr(&out).contains("cannot be reached"), "a clear message:\n{}", describe(&out));
        assert!(gw.audit("directory.unavailable").contains("login refused"), "{}", gw.audit("directory"));
        // Not counted as a wrong password: no lockout from an outage.
        for _ in 0..6 {
            let _ = by_password(&gw, "kate", PASSWORD).run(&[]);
        }
        gw.assert_logged_in(&by_password(&gw, "root2", LOCAL_PASSWORD).run(&[]), "local admin during the outage");
        let e = gw.cli_refused(&["directory", "test"], None);
        assert!(e.contains("No answer"), "{e}");

        slapd.restart();
        gw.assert_logged_in(&by_password(&gw, "kate", PASSWORD).run(&[]), "directory back: not locked out");
        assert!(gw.cli_ok(&["directory", "test"]).starts_with("OK"), "test bind after the restart");
    }

    // A server certificate from a CA the gateway does not trust: no bind is attempted.
    let untrusted = Slapd::start_with(SlapdOptions { untrusted_cert: true, ..SlapdOptions::default() });
    untrusted.add_user("kate", PASSWORD, None, &[]);
    let gw = gateway_at(Backend::Sqlite, &untrusted, &untrusted.url());
    // The gateway trusts `slapd`'s CA, not the other one the untrusted server's cert is from.
    let out = by_password(&gw, "kate", PASSWORD).run(&[]);
    gw.assert_refused(&out, "untrusted certificate");
    assert!(!untrusted.log().contains("BIND dn=\"cn=gatehouse"), "a bind went over an untrusted TLS session");
    let audit = gw.audit("directory.unavailable");
    assert!(audit.to_lowercase().contains("certificate") || audit.contains("tls"), "{audit}");
}
