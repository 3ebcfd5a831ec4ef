//! The directory fixture itself ([`Slapd`]): proof, with OpenLDAP's own client tools, that
//! the server the directory-account tests lean on behaves like a real directory: binds
//! check passwords, TLS is real and checked, `memberOf` follows group changes, a locked
//! or AD-disabled account cannot bind, AD's bit filter works, the ACLs hold, names with
//! filter characters are plain data, and data survives a restart. One test does the same
//! against a real Active Directory DC ([`SambaDc`]), where nested groups resolve on the
//! server.

mod common;

use std::process::Output;

use common::ldap::{Slapd, SlapdOptions, escape_filter_value, invalid_credentials, ldif_values};
use common::{SambaDc, describe, run_with_timeout, stderr, stdout};

const ALICE_PW: &str = "alice directory password";
const KEY_A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";
const KEY_B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnVhcY5kv0hPXzZQXlE6lUsKNBFsWnzXcbFa3JTxnRa alice@desk";
/// AD's LDAP_MATCHING_RULE_BIT_AND filter for "not disabled" (ACCOUNTDISABLE = 2).
const AD_ENABLED: &str = "(!(userAccountControl:1.2.840.113556.1.4.803:=2))";

/// `ldapwhoami` as `dn` on the plain URL with StartTLS required (`-ZZ`), trusting the
/// fixture's CA.
fn whoami(slapd: &Slapd, dn: &str, password: &str) -> Output {
    whoami_at(slapd, &slapd.url(), &["-ZZ"], dn, password)
}

fn whoami_at(slapd: &Slapd, url: &str, extra: &[&str], dn: &str, password: &str) -> Output {
    let mut cmd = slapd.tool("ldapwhoami");
    cmd.args(["-x", "-H", url, "-D", dn, "-w", password]).args(extra);
    run_with_timeout(&mut cmd, None, std::time::Duration::from_secs(20))
}

/// `ldapsearch` of the subtree at `base` as `dn` over StartTLS, unwrapped LDIF.
fn search_as(slapd: &Slapd, dn: &str, password: &str, base: &str, filter: &str, attrs: &[&str]) -> Output {
    let mut cmd = slapd.tool("ldapsearch");
    cmd.args(["-LLL", "-o", "ldif-wrap=no", "-x", "-ZZ", "-H", &slapd.url(), "-D", dn, "-w", password])
        .args(["-b", base, filter])
        .args(attrs);
    run_with_timeout(&mut cmd, None, std::time::Duration::from_secs(20))
}

/// What the service account finds for `filter` under `ou=people`: the DNs.
fn service_finds(slapd: &Slapd, filter: &str) -> Vec<String> {
    let out = search_as(slapd, slapd.service_dn(), slapd.service_password(), &slapd.people_dn(), filter, &["1.1"]);
    assert!(out.status.success(), "the service account's search for {filter}:\n{}", describe(&out));
    let mut dns = ldif_values(&stdout(&out), "dn");
    dns.sort();
    dns
}

fn assert_binds(out: &Output, dn: &str) {
    assert!(out.status.success(), "the bind as {dn} should work:\n{}", describe(out));
    assert_eq!(stdout(out).trim(), format!("dn:{dn}"), "ldapwhoami names the bound DN");
}

#[test]
fn a_user_binds_with_the_right_password_only() {
    let slapd = Slapd::start();
    slapd.add_user("alice", ALICE_PW, Some("alice@example.test"), &[]);
    let dn = slapd.user_dn("alice");
    assert_eq!(dn, "uid=alice,ou=people,dc=gatehouse,dc=test");

    assert_binds(&whoami(&slapd, &dn, ALICE_PW), &dn);
    assert_binds(&whoami_at(&slapd, &slapd.ldaps_url(), &[], &dn, ALICE_PW), &dn);

    let wrong = whoami(&slapd, &dn, "alice directory passwore");
    assert!(invalid_credentials(&wrong), "a wrong password must not bind:\n{}", describe(&wrong));
    let unknown = whoami(&slapd, &slapd.user_dn("mallory"), ALICE_PW);
    assert!(invalid_credentials(&unknown), "an unknown DN must not bind:\n{}", describe(&unknown));
    // A DN with an empty password is an unauthenticated bind (RFC 4513 5.1.2): slapd
    // refuses it rather than binding anonymously.
    let empty = whoami(&slapd, &dn, "");
    assert!(!empty.status.success(), "a DN with an empty password must not bind:\n{}", describe(&empty));
    assert!(stderr(&empty).contains("Server is unwilling to perform (53)"), "{}", describe(&empty));

    slapd.set_password("alice", "a new password");
    assert!(invalid_credentials(&whoami(&slapd, &dn, ALICE_PW)), "the old password is gone");
    assert_binds(&whoami(&slapd, &dn, "a new password"), &dn);
    let stored = slapd.search_as_root(&dn, "(objectClass=*)", &["userPassword"]);
    assert!(!stored.contains("a new password"), "ppolicy stores the password hashed:\n{stored}");
}

#[test]
fn tls_is_checked_against_the_test_ca() {
    let slapd = Slapd::start();
    slapd.add_user("alice", ALICE_PW, None, &[]);
    let dn = slapd.user_dn("alice");
    assert_binds(&whoami(&slapd, &dn, ALICE_PW), &dn);

    // A client that trusts another CA refuses the server, on StartTLS and on ldaps.
    for (url, extra) in [(slapd.url(), vec!["-ZZ"]), (slapd.ldaps_url(), vec![])] {
        let mut cmd = slapd.tool_trusting("ldapwhoami", &slapd.other_ca_cert_path());
        cmd.args(["-x", "-H", &url, "-D", &dn, "-w", ALICE_PW]).args(&extra);
        let out = run_with_timeout(&mut cmd, None, std::time::Duration::from_secs(20));
        assert!(!out.status.success(), "{url}: a client trusting another CA must refuse:\n{}", describe(&out));
        assert!(!stdout(&out).contains("dn:"), "{}", describe(&out));
    }

    // StartTLS required (-ZZ) but the server offers a certificate from the wrong CA, or
    // for the wrong name: refused too, though the CA is the one the client trusts.
    for options in [
        SlapdOptions { untrusted_cert: true, ..SlapdOptions::default() },
        SlapdOptions { wrong_name: true, ..SlapdOptions::default() },
    ] {
        let bad = Slapd::start_with(options.clone());
        bad.add_user("alice", ALICE_PW, None, &[]);
        let out = whoami(&bad, &dn, ALICE_PW);
        assert!(!out.status.success(), "{options:?}: StartTLS must fail:\n{}", describe(&out));
        assert!(stderr(&out).contains("ldap_start_tls"), "{options:?}: the TLS handshake fails:\n{}", describe(&out));
        let out = whoami_at(&bad, &bad.ldaps_url(), &[], &dn, ALICE_PW);
        assert!(!out.status.success(), "{options:?}: ldaps must fail:\n{}", describe(&out));
        // The same server does answer over plain LDAP: only the certificate is wrong.
        assert_binds(&whoami_at(&bad, &bad.url(), &[], &dn, ALICE_PW), &dn);
    }
}

#[test]
fn member_of_follows_groups_and_nesting() {
    let slapd = Slapd::start();
    slapd.add_user("alice", ALICE_PW, None, &[]);
    slapd.add_user("bob", "bob directory password", None, &[]);
    slapd.add_group("ops", &["alice"]);
    slapd.add_group("devs", &[]);
    slapd.add_group("staff", &[]);
    slapd.add_group_to_group("staff", "ops");
    slapd.add_member("devs", "alice");
    slapd.add_member("devs", "bob");

    let member_of = |uid: &str| {
        let dn = slapd.user_dn(uid);
        let out =
            search_as(&slapd, slapd.service_dn(), slapd.service_password(), &dn, "(objectClass=*)", &["memberOf"]);
        assert!(out.status.success(), "{}", describe(&out));
        let mut groups = ldif_values(&stdout(&out), "memberOf");
        groups.sort();
        groups
    };
    assert_eq!(member_of("alice"), vec![slapd.group_dn("devs"), slapd.group_dn("ops")]);
    assert_eq!(member_of("bob"), vec![slapd.group_dn("devs")]);
    // Nesting: the child group carries memberOf its parent (slapd lists direct groups only,
    // so a user's nested groups come from following these).
    let ops = search_as(
        &slapd,
        slapd.service_dn(),
        slapd.service_password(),
        &slapd.group_dn("ops"),
        "(objectClass=*)",
        &["memberOf"],
    );
    assert_eq!(ldif_values(&stdout(&ops), "memberOf"), vec![slapd.group_dn("staff")], "{}", describe(&ops));

    // A user reads their own memberOf too.
    let own = search_as(
        &slapd,
        &slapd.user_dn("bob"),
        "bob directory password",
        &slapd.user_dn("bob"),
        "(objectClass=*)",
        &["memberOf"],
    );
    assert_eq!(ldif_values(&stdout(&own), "memberOf"), vec![slapd.group_dn("devs")], "{}", describe(&own));

    slapd.remove_member("devs", "alice");
    assert_eq!(member_of("alice"), vec![slapd.group_dn("ops")]);
    slapd.remove_member("ops", "alice");
    assert!(member_of("alice").is_empty());
    assert!(slapd.group_members("ops").is_empty(), "an emptied group lists nobody");
    // Deleting a user takes them out of their groups (refint), even the last member.
    slapd.delete_user("bob");
    assert!(slapd.group_members("devs").is_empty(), "refint removed bob: {:?}", slapd.group_members("devs"));
    assert_eq!(slapd.group_members("staff"), vec![slapd.group_dn("ops")]);
}

#[test]
fn a_disabled_user_cannot_bind_until_enabled() {
    let slapd = Slapd::start();
    slapd.add_user("alice", ALICE_PW, None, &[]);
    let dn = slapd.user_dn("alice");
    assert_binds(&whoami(&slapd, &dn, ALICE_PW), &dn);

    slapd.disable_user("alice");
    let out = whoami(&slapd, &dn, ALICE_PW);
    assert!(invalid_credentials(&out), "a locked user must not bind:\n{}", describe(&out));
    let lock = slapd.search_as_root(&dn, "(objectClass=*)", &["pwdAccountLockedTime"]);
    assert_eq!(ldif_values(&lock, "pwdAccountLockedTime"), vec![Slapd::LOCKED_FOR_GOOD.to_string()]);
    assert!(slapd.log().contains("ppolicy"), "ppolicy is loaded and answering:\n{}", slapd.log());

    slapd.enable_user("alice");
    assert_binds(&whoami(&slapd, &dn, ALICE_PW), &dn);
    // Wrong passwords alone never lock (the policy counts no failures).
    for _ in 0..5 {
        assert!(invalid_credentials(&whoami(&slapd, &dn, "guess")));
    }
    assert_binds(&whoami(&slapd, &dn, ALICE_PW), &dn);
}

#[test]
fn the_ad_bit_filter_excludes_a_disabled_ad_shaped_user() {
    let slapd = Slapd::start();
    slapd.add_ad_user("jdoe", "jdoe@gatehouse.test", "jdoe password", Some("jdoe@example.test"), false);
    slapd.add_ad_user("gone", "gone@gatehouse.test", "gone password", None, true);
    slapd.add_user("alice", ALICE_PW, None, &[]);
    let jdoe = slapd.user_dn("jdoe");
    let gone = slapd.user_dn("gone");
    assert_eq!(jdoe, "cn=jdoe,ou=people,dc=gatehouse,dc=test", "AD-shaped entries are named by cn");

    let enabled = format!("(&(objectClass=gatehouseAdAccount){AD_ENABLED})");
    assert_eq!(service_finds(&slapd, "(objectClass=gatehouseAdAccount)"), vec![gone.clone(), jdoe.clone()]);
    assert_eq!(service_finds(&slapd, &enabled), vec![jdoe.clone()]);
    assert_eq!(service_finds(&slapd, "(sAMAccountName=JDOE)"), vec![jdoe.clone()], "sAMAccountName ignores case");
    assert_eq!(service_finds(&slapd, "(userPrincipalName=jdoe@gatehouse.test)"), vec![jdoe.clone()]);
    assert_binds(&whoami(&slapd, &jdoe, "jdoe password"), &jdoe);
    assert!(invalid_credentials(&whoami(&slapd, &gone, "gone password")), "a disabled AD user cannot bind");

    slapd.disable_user("jdoe");
    assert!(service_finds(&slapd, &enabled).is_empty());
    let uac = slapd.search_as_root(&jdoe, "(objectClass=*)", &["userAccountControl"]);
    assert_eq!(ldif_values(&uac, "userAccountControl"), vec!["514".to_string()]);
    assert!(invalid_credentials(&whoami(&slapd, &jdoe, "jdoe password")));

    slapd.enable_user("gone");
    assert_eq!(service_finds(&slapd, &enabled), vec![gone.clone()]);
    assert_binds(&whoami(&slapd, &gone, "gone password"), &gone);
}

#[test]
fn the_service_account_searches_people_and_others_see_only_themselves() {
    let slapd = Slapd::start();
    slapd.add_user("alice", ALICE_PW, Some("alice@example.test"), &[KEY_A, KEY_B]);
    slapd.add_user("bob", "bob directory password", None, &[]);
    slapd.add_group("ops", &["alice"]);

    let out = search_as(&slapd, slapd.service_dn(), slapd.service_password(), slapd.base_dn(), "(uid=alice)", &["*"]);
    assert!(out.status.success(), "{}", describe(&out));
    let entry = stdout(&out);
    assert_eq!(ldif_values(&entry, "mail"), vec!["alice@example.test".to_string()]);
    assert_eq!(ldif_values(&entry, "sshPublicKey"), vec![KEY_A.to_string(), KEY_B.to_string()]);
    assert!(ldif_values(&entry, "userPassword").is_empty(), "no one reads password hashes:\n{entry}");
    assert_eq!(
        service_finds(&slapd, "(objectClass=inetOrgPerson)"),
        vec![slapd.user_dn("alice"), slapd.user_dn("bob")]
    );
    let groups =
        search_as(&slapd, slapd.service_dn(), slapd.service_password(), &slapd.groups_dn(), "(member=*)", &["member"]);
    assert_eq!(ldif_values(&stdout(&groups), "member"), vec![slapd.user_dn("alice")], "{}", describe(&groups));

    // A user reads only their own entry: bob's search for alice finds nothing.
    let bob =
        search_as(&slapd, &slapd.user_dn("bob"), "bob directory password", slapd.base_dn(), "(uid=alice)", &["uid"]);
    assert!(!stdout(&bob).contains("dn:"), "bob must not see alice:\n{}", describe(&bob));
    // Anonymous may bind, and nothing more.
    let mut cmd = slapd.tool("ldapsearch");
    cmd.args(["-LLL", "-x", "-ZZ", "-H", &slapd.url(), "-b", slapd.base_dn(), "(objectClass=*)"]);
    let anonymous = run_with_timeout(&mut cmd, None, std::time::Duration::from_secs(20));
    assert!(!stdout(&anonymous).contains("dn:"), "anonymous must see nothing:\n{}", describe(&anonymous));
    assert!(stderr(&anonymous).contains("No such object (32)"), "{}", describe(&anonymous));

    // Keys change in place; none left means no attribute at all.
    slapd.set_ssh_keys("alice", &[KEY_B]);
    let keys = slapd.search_as_root(&slapd.user_dn("alice"), "(objectClass=*)", &["sshPublicKey"]);
    assert_eq!(ldif_values(&keys, "sshPublicKey"), vec![KEY_B.to_string()]);
    slapd.set_ssh_keys("alice", &[]);
    let keys = slapd.search_as_root(&slapd.user_dn("alice"), "(objectClass=*)", &["sshPublicKey"]);
    assert!(ldif_values(&keys, "sshPublicKey").is_empty(), "{keys}");
}

#[test]
fn names_with_filter_characters_are_plain_data() {
    let slapd = Slapd::start();
    slapd.add_user("alice", ALICE_PW, None, &[]);
    for name in ["adm*", "x)(uid=*", "o'brien, jr"] {
        slapd.add_user(name, "odd name password", None, &[]);
        let dn = slapd.user_dn(name);
        // slapd answers with its normalized form of the DN (`\3D` for `\=`), so the bind is
        // checked by its result, the entry by its uid.
        let out = whoami(&slapd, &dn, "odd name password");
        assert!(out.status.success() && stdout(&out).starts_with("dn:uid="), "{name}:\n{}", describe(&out));
        let filter = format!("(uid={})", escape_filter_value(name));
        let found =
            search_as(&slapd, slapd.service_dn(), slapd.service_password(), &slapd.people_dn(), &filter, &["uid"]);
        assert!(found.status.success(), "{}", describe(&found));
        assert_eq!(
            ldif_values(&stdout(&found), "uid"),
            vec![name.to_string()],
            "the escaped filter {filter} finds only {name}"
        );
    }
    assert_eq!(slapd.user_dn("o'brien, jr"), "uid=o'brien\\, jr,ou=people,dc=gatehouse,dc=test");
    assert_eq!(slapd.user_dn("x)(uid=*"), "uid=x)(uid\\=*,ou=people,dc=gatehouse,dc=test");
    // The same names unescaped are filter syntax: what the gateway must never send.
    assert_eq!(service_finds(&slapd, "(uid=adm*)").len(), 1, "adm* matches by prefix");
    assert_eq!(service_finds(&slapd, "(uid=*)").len(), 4);
}

#[test]
fn stop_and_restart_keep_the_data() {
    let mut slapd = Slapd::start();
    slapd.add_user("alice", ALICE_PW, None, &[KEY_A]);
    slapd.add_group("ops", &["alice"]);
    let dn = slapd.user_dn("alice");
    let (url, ldaps) = (slapd.url(), slapd.ldaps_url());

    slapd.stop();
    assert!(!slapd.is_running());
    let down = whoami(&slapd, &dn, ALICE_PW);
    assert!(!down.status.success(), "a stopped server answers nothing:\n{}", describe(&down));
    assert!(stderr(&down).contains("Can't contact LDAP server (-1)"), "{}", describe(&down));

    slapd.restart();
    assert_eq!((slapd.url(), slapd.ldaps_url()), (url, ldaps), "same ports after a restart");
    assert_binds(&whoami(&slapd, &dn, ALICE_PW), &dn);
    assert_binds(&whoami_at(&slapd, &slapd.ldaps_url(), &[], &dn, ALICE_PW), &dn);
    assert_eq!(slapd.group_members("ops"), vec![dn.clone()]);
    let keys = slapd.search_as_root(&dn, "(objectClass=*)", &["sshPublicKey", "memberOf"]);
    assert_eq!(ldif_values(&keys, "sshPublicKey"), vec![KEY_A.to_string()]);
    assert_eq!(ldif_values(&keys, "memberOf"), vec![slapd.group_dn("ops")]);
    assert_eq!(slapd.log().matches("slapd starting").count(), 2, "{}", slapd.log());
}

/// A real AD DC (Samba): UPN and DN binds over ldaps and StartTLS with the certificate
/// checked, AD's refusals (no simple bind without TLS, "data 533" for a disabled account),
/// the bit filter, and nested groups resolved by the server with
/// LDAP_MATCHING_RULE_IN_CHAIN.
#[test]
fn samba_ad_dc_binds_disables_and_resolves_nested_groups() {
    let dc = SambaDc::start();
    dc.add_user("jdoe", "jdoe password", Some("jdoe@example.test"));
    dc.add_user("gone", "gone password", None);
    dc.disable_user("gone");
    dc.add_group("ops", &["jdoe"]);
    dc.add_group("staff", &["ops"]);
    dc.add_group("empty", &[]);
    let jdoe = dc.dn("jdoe");

    // AD has no "Who am I?" operation, so a base search of the user's own entry proves the
    // bind.
    let bind = |url: &str, extra: &[&str], who: &str, password: &str| {
        let mut cmd = dc.tool("ldapsearch");
        cmd.args(["-LLL", "-o", "ldif-wrap=no", "-x", "-H", url, "-D", who, "-w", password]).args(extra).args([
            "-s",
            "base",
            "-b",
            &jdoe,
            "(objectClass=*)",
            "sAMAccountName",
        ]);
        run_with_timeout(&mut cmd, None, std::time::Duration::from_secs(30))
    };
    for (url, extra) in [(dc.ldaps_url(), vec![]), (dc.url(), vec!["-ZZ"])] {
        for who in [dc.upn("jdoe"), jdoe.clone()] {
            let out = bind(&url, &extra, &who, "jdoe password");
            assert!(out.status.success(), "{url} as {who}:\n{}", describe(&out));
            assert_eq!(ldif_values(&stdout(&out), "sAMAccountName"), vec!["jdoe".to_string()]);
        }
    }
    let wrong = bind(&dc.ldaps_url(), &[], &dc.upn("jdoe"), "jdoe passwore");
    assert!(invalid_credentials(&wrong) && stderr(&wrong).contains("data 52e"), "{}", describe(&wrong));
    let plain = bind(&dc.url(), &[], &dc.upn("jdoe"), "jdoe password");
    assert!(stderr(&plain).contains("Strong(er) authentication required (8)"), "{}", describe(&plain));
    let disabled = bind(&dc.ldaps_url(), &[], &dc.upn("gone"), "gone password");
    assert!(invalid_credentials(&disabled) && stderr(&disabled).contains("data 533"), "{}", describe(&disabled));

    let find = |filter: &str| {
        let mut cmd = dc.tool("ldapsearch");
        cmd.args(["-LLL", "-o", "ldif-wrap=no", "-x", "-H", &dc.ldaps_url(), "-D", dc.service_dn(), "-w"])
            .arg(dc.service_password())
            .args(["-b", dc.base_dn(), filter, "1.1"]);
        let out = run_with_timeout(&mut cmd, None, std::time::Duration::from_secs(30));
        assert!(out.status.success(), "the service account's search for {filter}:\n{}", describe(&out));
        let mut dns = ldif_values(&stdout(&out), "dn");
        dns.sort();
        dns
    };
    let people = "(&(objectCategory=person)(objectClass=user)(|(sAMAccountName=jdoe)(sAMAccountName=gone)))";
    assert_eq!(find(people), vec![dc.dn("gone"), jdoe.clone()]);
    let enabled_people = format!("(&{people}{AD_ENABLED})");
    assert_eq!(find(&enabled_people), vec![jdoe.clone()]);
    assert_eq!(find(&format!("(userPrincipalName={})", dc.upn("jdoe"))), vec![jdoe.clone()]);

    // Direct membership only with memberOf; the whole chain with the in-chain rule.
    assert_eq!(find(&format!("(memberOf={})", dc.dn("staff"))), vec![dc.dn("ops")]);
    let in_staff = format!("(&(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:={}))", dc.dn("staff"));
    assert_eq!(find(&in_staff), vec![jdoe.clone()]);
    let jdoe_groups = format!("(&(objectClass=group)(member:1.2.840.113556.1.4.1941:={jdoe}))");
    assert_eq!(find(&jdoe_groups), vec![dc.dn("ops"), dc.dn("staff")]);

    dc.remove_member("ops", "jdoe");
    dc.add_member("empty", "jdoe");
    assert!(find(&in_staff).is_empty());
    assert_eq!(find(&jdoe_groups), vec![dc.dn("empty")]);

    dc.disable_user("jdoe");
    assert!(find(&enabled_people).is_empty());
    assert!(invalid_credentials(&bind(&dc.ldaps_url(), &[], &dc.upn("jdoe"), "jdoe password")));
    dc.enable_user("jdoe");
    assert!(bind(&dc.ldaps_url(), &[], &dc.upn("jdoe"), "jdoe password").status.success());
}
