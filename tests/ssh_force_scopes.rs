//! The finer force-2FA scopes at the SSH gate, with the real OpenSSH client, on SQLite and
//! PostgreSQL: a user's own override (on forces them when nothing else does; off sets a
//! forcing group aside), and the administrators' scope, which a new installation turns on
//! and an administrator's own override cannot set aside.

mod common;

use common::{Backend, ClientKey, Gw, Ssh, backends, describe, stdout, totp_now};

const PASSWORD: &str = "correct horse battery";

/// What enrollment mode says first: the login passed, but only to enroll a factor.
const ENROLL_ONLY: &str = "no target can be reached until you enroll one";

fn started(backend: Backend) -> Gw {
    let mut gw = Gw::new(backend);
    gw.start();
    gw
}

fn user_with_key(gw: &Gw, name: &str) -> ClientKey {
    gw.add_user(name, PASSWORD);
    gw.add_key(name)
}

/// A client that logs in with `key` and leaves at once (the shell sees end of input).
fn ssh(gw: &Gw, user: &str, key: &ClientKey) -> Ssh {
    Ssh::new(gw.ssh_port, user).arg("-v").stdin("").identity(key)
}

/// Logs in with the key alone and asserts no second factor was asked and the shell was
/// the target menu, not enrollment mode.
fn gets_in_without_a_factor(gw: &Gw, user: &str, key: &ClientKey, what: &str) {
    let client = ssh(gw, user, key);
    let out = client.run(&[]);
    gw.assert_logged_in(&out, what);
    assert!(client.prompts_seen().is_empty(), "{what}: asked {:?}", client.prompts_seen());
    assert!(!stdout(&out).contains(ENROLL_ONLY), "{what}: enrollment mode\n{}", describe(&out));
}

/// Logs in with the key and asserts the login was held to enrollment mode.
fn must_enroll(gw: &Gw, user: &str, key: &ClientKey, what: &str) {
    let out = ssh(gw, user, key).run(&[]);
    gw.assert_logged_in(&out, what);
    assert!(stdout(&out).contains(ENROLL_ONLY), "{what}: expected enrollment mode\n{}", describe(&out));
}

/// Enrolls TOTP for `user` and asserts the gate asks for the code and takes it.
fn asked_for_a_code(gw: &Gw, user: &str, key: &ClientKey, secret: &str, what: &str) {
    let client = ssh(gw, user, key).on_prompt("Authenticator code", &totp_now(secret));
    let out = client.run(&[]);
    gw.assert_logged_in(&out, what);
    assert!(
        client.prompts_seen().iter().any(|p| p.contains("Authenticator code")),
        "{what}: not asked for the code: {:?}",
        client.prompts_seen()
    );
    assert!(!stdout(&out).contains(ENROLL_ONLY), "{what}: {}", describe(&out));
}

#[test]
fn a_users_own_override_forces_them_or_sets_a_forcing_group_aside() {
    for backend in backends() {
        let gw = started(backend);
        let alice = user_with_key(&gw, "alice");
        let bob = user_with_key(&gw, "bob");

        // Nothing forces alice; her own override does.
        gets_in_without_a_factor(&gw, "alice", &alice, "alice, nothing forcing");
        let out = gw.cli_ok(&["user", "force-2fa", "alice", "on"]);
        assert!(out.contains("Required: forcing is turned on for alice."), "{backend:?}: {out}");
        must_enroll(&gw, "alice", &alice, "alice, override on, nothing enrolled");
        let secret = gw.enroll_totp("alice");
        asked_for_a_code(&gw, "alice", &alice, &secret, "alice, override on, TOTP enrolled");
        // Without a code, no way in.
        let client = ssh(&gw, "alice", &alice).answers(&["000000", "000001", "000002"]);
        gw.assert_refused(&client.run(&[]), "alice, override on, wrong codes");

        // bob's group forces; his own override "off" sets it aside.
        gw.cli_ok(&["group", "add", "ops"]);
        gw.cli_ok(&["group", "add-member", "ops", "bob"]);
        gw.cli_ok(&["policy", "force-2fa", "on", "--group", "ops"]);
        must_enroll(&gw, "bob", &bob, "bob, forced by ops");
        gw.cli_ok(&["user", "force-2fa", "bob", "off"]);
        gets_in_without_a_factor(&gw, "bob", &bob, "bob, override off in a forcing group");
        let show = gw.cli_ok(&["user", "show", "bob"]);
        assert!(show.contains("force 2FA:    off"), "{backend:?}: {show}");
        assert!(
            show.contains("why 2FA:      Not required: forcing is turned off for bob, overriding group(s) ops."),
            "{backend:?}: {show}"
        );
        // Off is "not forced", not "never asked": a factor bob enrolls is asked for.
        let bob_secret = gw.enroll_totp("bob");
        asked_for_a_code(&gw, "bob", &bob, &bob_secret, "bob, override off, TOTP enrolled");
        gw.cli_ok(&["factor", "reset", "bob"]);
        // Inherit again: the group decides.
        gw.cli_ok(&["user", "force-2fa", "bob", "inherit"]);
        must_enroll(&gw, "bob", &bob, "bob, inheriting ops again");

        // Each change is one audit event naming the user; `policy show` lists overrides.
        let audit = gw.audit("policy.force_2fa");
        for line in ["user alice: on", "user bob: off", "user bob: inherit"] {
            assert!(audit.contains(line), "{backend:?}: {line} not audited:\n{audit}");
        }
        let policy = gw.cli_ok(&["policy", "show"]);
        assert!(
            policy.lines().any(|l| l.starts_with("user  alice") && l.ends_with("force 2FA: on")),
            "{backend:?}: {policy}"
        );
        assert!(!policy.contains("user  bob"), "{backend:?}: bob inherits again: {policy}");
        let json = gw.cli_json(&["policy", "show", "--json"]);
        assert_eq!(json["user_overrides"]["alice"], "on", "{backend:?}: {json}");
        gw.cli_refused(&["user", "force-2fa", "nobody", "on"], None);
        gw.cli_usage_error(&["user", "force-2fa", "alice", "maybe"]);
    }
}

#[test]
fn every_administrator_is_forced_by_the_administrators_scope_whatever_their_override() {
    for backend in backends() {
        let gw = started(backend);
        // A new installation: the first start turned the scope on.
        assert!(gw.cli_ok(&["policy", "show"]).contains("force 2FA (admins): on"), "{backend:?}");
        let carol = user_with_key(&gw, "carol");
        gets_in_without_a_factor(&gw, "carol", &carol, "carol, not an administrator");
        gw.cli_ok(&["user", "admin", "carol", "on"]);
        must_enroll(&gw, "carol", &carol, "carol, administrator");
        // Her own override cannot set the scope aside.
        gw.cli_ok(&["user", "force-2fa", "carol", "off"]);
        must_enroll(&gw, "carol", &carol, "carol, administrator with override off");
        let show = gw.cli_ok(&["user", "show", "carol"]);
        assert!(
            show.contains("Required: carol is an administrator and every administrator must use 2FA."),
            "{backend:?}: {show}"
        );
        // The scope off: her override decides again.
        let out = gw.cli_ok(&["policy", "force-2fa", "off", "--admins"]);
        assert!(out.contains("force 2FA (administrators): off"), "{out}");
        gets_in_without_a_factor(&gw, "carol", &carol, "carol, scope off, override off");
        gw.cli_ok(&["policy", "force-2fa", "on", "--admins"]);
        let secret = gw.enroll_totp("carol");
        asked_for_a_code(&gw, "carol", &carol, &secret, "carol, administrator with TOTP");
        let audit = gw.audit("policy.force_2fa");
        assert!(audit.contains("administrators: off") && audit.contains("administrators: on"), "{audit}");
        gw.cli_usage_error(&["policy", "force-2fa", "on", "--admins", "--group", "ops"]);
    }
}

#[test]
fn an_installation_that_already_has_accounts_keeps_its_policy() {
    for backend in backends() {
        let mut gw = Gw::new(backend);
        // Accounts, but no administrator, before the first `serve` (an upgrade, or users
        // made with the command line first): the bootstrap administrator is made, the
        // policy is left as it was.
        let dave = user_with_key(&gw, "dave");
        gw.start();
        assert!(gw.bootstrap_password().is_some(), "{backend:?}: the administrator is made");
        assert!(gw.cli_ok(&["policy", "show"]).contains("force 2FA (admins): off"), "{backend:?}");
        gw.cli_ok(&["user", "admin", "dave", "on"]);
        gets_in_without_a_factor(&gw, "dave", &dave, "dave, administrator, scope off");
    }
}
