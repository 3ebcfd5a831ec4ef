//! Directory accounts against a real Samba Active Directory domain controller (provisioned
//! in a temp dir, on a loopback address of its own) and the real OpenSSH client: the AD
//! attribute set (`sAMAccountName`, `userAccountControl`), users disabled in AD refused, and
//! nested groups resolved by the server (LDAP_MATCHING_RULE_IN_CHAIN), so "members of
//! `staff` must use 2FA" reaches a user who is in `staff` only through `ops`.

mod common;

use common::{Backend, Gw, SambaDc, Ssh};

const PASSWORD: &str = "jdoe's AD password 1";

fn gateway(dc: &SambaDc) -> Gw {
    let toml = format!(
        r#"[ldap]
urls = ["{url}"]
ca_file = "{ca}"
bind_dn = "{svc}"
user_base = "{base}"
user_filter = "(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"
login_attribute = "sAMAccountName"
group_base = "{base}"
group_filter = "(&(objectClass=group)(member:1.2.840.113556.1.4.1941:={{dn}}))"
sync_interval_secs = 0

[ldap.groups]
"{staff}" = "staff"
"#,
        url = dc.ldaps_url(),
        ca = dc.ca_cert_path().display(),
        svc = dc.service_dn(),
        base = dc.base_dn(),
        staff = dc.dn("staff"),
    );
    let mut gw = Gw::with_config(Backend::Sqlite, &toml);
    gw.set_env("GATEHOUSE_LDAP__BIND_PASSWORD", dc.service_password());
    gw.start();
    gw
}

fn by_password(gw: &Gw, user: &str, password: &str) -> Ssh {
    Ssh::new(gw.ssh_port, user).arg("-v").stdin("").preferred("keyboard-interactive").on_prompt("Password", password)
}

#[test]
fn active_directory_users_nested_groups_and_disabled_accounts() {
    let dc = SambaDc::start();
    dc.add_user("jdoe", PASSWORD, Some("jdoe@example.test"));
    dc.add_user("gone", PASSWORD, None);
    dc.add_group("ops", &["jdoe"]);
    dc.add_group("staff", &["ops"]);
    let gw = gateway(&dc);
    gw.cli_ok(&["group", "add", "staff"]);
    gw.cli_ok(&["policy", "force-2fa", "on", "--group", "staff"]);

    // jdoe is in staff only through ops: AD resolves the chain, the gateway maps staff.
    let _ = by_password(&gw, "jdoe", PASSWORD).run(&[]);
    let show = gw.cli_ok(&["user", "show", "jdoe"]);
    assert!(show.contains("store:        directory"), "{show}\n{}", gw.log());
    assert!(show.contains(&dc.dn("jdoe")), "{show}");
    assert!(show.contains("groups:       staff"), "nested membership: {show}");
    assert!(show.contains("MustEnroll"), "forced through the nested group: {show}");
    assert!(show.contains("jdoe@example.test"), "{show}");
    let secret = gw.enroll_totp("jdoe");
    let client = by_password(&gw, "jdoe", PASSWORD).on_prompt("Authenticator code", &common::totp_now(&secret));
    gw.assert_logged_in(&client.run(&[]), "AD password + TOTP");

    // Out of ops in AD: out of staff here at the next login.
    dc.remove_member("ops", "jdoe");
    let out = gw.cli_ok(&["directory", "sync"]);
    assert!(out.contains("1 directory user(s) checked"), "{out}");
    assert!(gw.cli_ok(&["user", "show", "jdoe"]).contains("groups:       -"));

    // A disabled AD account (userAccountControl bit 2) is refused; the sync disables it here.
    gw.assert_logged_in(&by_password(&gw, "gone", PASSWORD).run(&[]), "gone, still enabled");
    dc.disable_user("gone");
    gw.assert_refused(&by_password(&gw, "gone", PASSWORD).run(&[]), "disabled in AD");
    gw.cli_ok(&["directory", "sync"]);
    assert!(gw.cli_ok(&["user", "show", "gone"]).contains("disabled:     YES"));
    // A wrong password is a wrong password (AD answers 49 / 52e), not an outage.
    gw.assert_refused(&by_password(&gw, "jdoe", "not it").run(&[]), "wrong AD password");
    assert!(gw.audit("directory.unavailable").trim().is_empty(), "{}", gw.audit("directory"));
}
