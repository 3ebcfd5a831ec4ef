//! The admin command line for targets, grants and second factors, on SQLite and
//! PostgreSQL: success, and on bad input a one-line error, a non-zero exit and nothing
//! written (checked with `target list --json` / `factor list --json` afterwards).

mod common;

use common::{Gw, TotpDevice, backends, describe};
use serde_json::Value;

/// (name, users granted, groups granted) for every target.
fn targets(gw: &Gw) -> Vec<(String, Vec<String>, Vec<String>)> {
    let strings = |v: &Value| v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    gw.cli_json(&["target", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["target"]["name"].as_str().unwrap().to_string(), strings(&t["users"]), strings(&t["groups"])))
        .collect()
}

/// `target add NAME --host 10.0.0.1 --user u EXTRA…`
fn add<'a>(name: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["target", "add", name, "--host", "10.0.0.1", "--user", "u"];
    args.extend_from_slice(extra);
    args
}

fn target_json(gw: &Gw, name: &str) -> Value {
    let all = gw.cli_json(&["target", "list", "--json"]);
    all.as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"]["name"] == name)
        .map(|t| t["target"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn target_add_list_delete() {
    for backend in backends() {
        let gw = Gw::new(backend);
        let key = gw.new_key("target");
        let private = key.private.display().to_string();
        let host_key = gw.new_key("hostkey").line;
        gw.cli_ok(&[
            "target",
            "add",
            "web1",
            "--host",
            "127.0.0.1",
            "--port",
            "2201",
            "--user",
            "deploy",
            "--key-file",
            &private,
        ]);
        let out = gw.cli_stdin(
            &[
                "target",
                "add",
                "db1",
                "--host",
                "db.internal",
                "--user",
                "postgres",
                "--password-stdin",
                "--host-key",
                &host_key,
            ],
            "target-password\n",
        );
        assert!(out.status.success(), "{}", describe(&out));
        let web1 = target_json(&gw, "web1");
        assert_eq!(
            (web1["host"].as_str(), web1["port"].as_u64(), web1["username"].as_str()),
            (Some("127.0.0.1"), Some(2201), Some("deploy"))
        );
        assert_eq!(web1["credential_kind"], "key");
        assert_eq!(web1["host_key"], Value::Null);
        let db1 = target_json(&gw, "db1");
        assert_eq!(db1["port"], 22, "{backend:?}: default port");
        assert_eq!(db1["credential_kind"], "password");
        assert!(db1["host_key"].as_str().is_some_and(|k| host_key.starts_with(k)), "{db1}");
        let listing = gw.cli_ok(&["target", "list"]);
        assert!(!listing.contains("target-password") && !listing.contains("PRIVATE KEY"), "secrets in the listing");
        assert!(!gw.cli_json(&["target", "list", "--json"]).to_string().contains("target-password"));

        let before = targets(&gw);
        let e = gw.cli_refused(&add("web1", &["--password-stdin"]), Some("pw\n"));
        assert!(e.contains("web1") && e.contains("already exists"), "{backend:?}: {e}");
        for port in ["0", "70000", "http"] {
            let e = gw.cli_usage_error(&add("web2", &["--port", port, "--password-stdin"]));
            assert!(e.contains("port"), "bad port {port}: {e}");
        }
        let e = gw.cli_refused(&add("web2", &["--password-stdin"]), None);
        assert!(e.contains("standard input"), "missing stdin: {e}");
        let public = key.public.display().to_string();
        let e = gw.cli_refused(&add("web2", &["--key-file", &public]), None);
        assert!(e.contains("private key"), "a public key is not a credential: {e}");
        gw.cli_refused(&add("web2", &["--key-file", "/nonexistent/id"]), None);
        gw.cli_refused(
            &["target", "add", "web2", "--host", "bad host!", "--user", "u", "--password-stdin"],
            Some("pw\n"),
        );
        gw.cli_refused(&add("web2", &["--password-stdin", "--host-key", "ssh-ed25519 garbage"]), Some("pw\n"));
        gw.cli_refused(&add("bad/name", &["--password-stdin"]), Some("pw\n"));
        gw.cli_usage_error(&["target", "add", "web2", "--host", "h", "--user", "u"]);
        gw.cli_usage_error(&["target", "add", "web2", "--user", "u", "--password-stdin"]);
        assert_eq!(targets(&gw), before, "{backend:?}: a refused add wrote something");

        gw.cli_ok(&["target", "pin-host-key", "web1", &host_key]);
        assert!(target_json(&gw, "web1")["host_key"].is_string());
        gw.cli_refused(&["target", "pin-host-key", "nowhere", &host_key], None);
        gw.cli_refused(&["target", "pin-host-key", "db1", "not a key"], None);

        gw.cli_ok(&["target", "delete", "web1"]);
        gw.cli_refused(&["target", "delete", "web1"], None);
        assert_eq!(targets(&gw).len(), 1, "{backend:?}");
    }
}

#[test]
fn grant_and_revoke() {
    for backend in backends() {
        let gw = Gw::new(backend);
        gw.add_user("alice", "correct horse");
        gw.cli_ok(&["group", "add", "ops"]);
        gw.cli_stdin(&["target", "add", "web1", "--host", "127.0.0.1", "--user", "u", "--password-stdin"], "pw\n");
        gw.cli_ok(&["target", "grant", "web1", "--user", "alice"]);
        gw.cli_ok(&["target", "grant", "web1", "--group", "ops"]);
        let granted = vec![("web1".to_string(), vec!["alice".to_string()], vec!["ops".to_string()])];
        assert_eq!(targets(&gw), granted, "{backend:?}");
        assert!(gw.cli_ok(&["target", "list"]).contains("alice,@ops"));

        let e = gw.cli_refused(&["target", "grant", "web1", "--user", "alice"], None);
        assert!(e.contains("already exists"), "{backend:?}: duplicate grant: {e}");
        let e = gw.cli_refused(&["target", "grant", "web1", "--user", "nobody"], None);
        assert!(e.contains("nobody"), "{e}");
        let e = gw.cli_refused(&["target", "grant", "web1", "--group", "nogroup"], None);
        assert!(e.contains("nogroup"), "{e}");
        let e = gw.cli_refused(&["target", "grant", "nowhere", "--user", "alice"], None);
        assert!(e.contains("nowhere"), "{e}");
        gw.cli_usage_error(&["target", "grant", "web1"]);
        gw.cli_usage_error(&["target", "grant", "web1", "--user", "alice", "--group", "ops"]);
        assert_eq!(targets(&gw), granted, "{backend:?}: a refused grant was written");

        gw.cli_ok(&["target", "revoke", "web1", "--user", "alice"]);
        gw.cli_refused(&["target", "revoke", "web1", "--user", "alice"], None);
        gw.cli_refused(&["target", "revoke", "web1", "--user", "nobody"], None);
        gw.cli_refused(&["target", "revoke", "nowhere", "--group", "ops"], None);
        assert_eq!(targets(&gw), vec![("web1".to_string(), vec![], vec!["ops".to_string()])], "{backend:?}");
        gw.cli_ok(&["target", "revoke", "web1", "--group", "ops"]);
        assert_eq!(targets(&gw), vec![("web1".to_string(), vec![], vec![])]);
    }
}

fn factor_methods(gw: &Gw, user: &str) -> Vec<String> {
    gw.cli_json(&["factor", "list", user, "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["method"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn factor_commands() {
    for backend in backends() {
        let gw = Gw::new(backend);
        gw.add_user("alice", "correct horse");
        assert!(factor_methods(&gw, "alice").is_empty());
        assert!(gw.cli_ok(&["factor", "list", "alice"]).contains("no second factor"));

        let uri = gw.cli_ok(&["factor", "totp", "enroll", "alice"]);
        assert!(uri.trim().starts_with("otpauth://totp/"), "{uri}");
        let secret = common::gateway::secret_from_uri(&uri).expect("secret in the URI");
        // The seed is a real RFC 6238 seed: oathtool derives codes from it.
        let code = TotpDevice::new(&secret).code();
        assert_eq!(code.len(), 6);
        assert_eq!(factor_methods(&gw, "alice"), vec!["totp"], "{backend:?}");
        assert!(user_requirement(&gw, "alice").contains("Totp"), "{backend:?}");

        gw.cli_ok(&["policy", "backup-codes", "4"]);
        let codes = gw.cli_ok(&["factor", "backup-codes", "alice"]);
        assert_eq!(codes.lines().count(), 4, "{codes}");
        let again = gw.cli_ok(&["factor", "backup-codes", "alice"]);
        assert!(codes.lines().all(|c| !again.contains(c)), "regenerated codes must be new");
        let listed = gw.cli_json(&["factor", "list", "alice", "--json"]);
        let backup =
            listed.as_array().unwrap().iter().find(|f| f["method"] == "backup-code").cloned().unwrap_or_default();
        assert_eq!(backup["label"], "4 unused", "{backend:?}: the old set is void: {listed}");

        gw.cli_stdin(&["factor", "keyword", "alice", "--stdin"], "open sesame\n");
        assert_eq!(factor_methods(&gw, "alice"), vec!["keyword", "totp", "backup-code"], "{backend:?}");
        let e = gw.cli_refused(&["factor", "keyword", "alice", "--stdin"], Some("abc\n"));
        assert!(e.contains("keyword"), "{e}");
        gw.cli_refused(&["factor", "keyword", "alice", "--stdin"], None);
        gw.cli_refused(&["factor", "keyword", "nobody", "--stdin"], Some("open sesame\n"));
        gw.cli_usage_error(&["factor", "keyword", "alice"]);

        for args in [
            &["factor", "totp", "enroll", "nobody"][..],
            &["factor", "backup-codes", "nobody"][..],
            &["factor", "list", "nobody"][..],
            &["factor", "remove", "nobody", "totp"][..],
        ] {
            let e = gw.cli_refused(args, None);
            assert!(e.contains("nobody"), "gatehouse {args:?}: {e}");
        }
        let e = gw.cli_refused(&["factor", "remove", "alice", "sms"], None);
        assert!(e.contains("sms"), "bad method must be named: {e}");
        gw.cli_refused(&["factor", "remove", "alice", "yubikey"], None);
        assert_eq!(factor_methods(&gw, "alice").len(), 3, "{backend:?}: a refused command changed the factors");

        gw.cli_ok(&["factor", "remove", "alice", "totp"]);
        gw.cli_ok(&["factor", "remove", "alice", "backup-code"]);
        gw.cli_refused(&["factor", "remove", "alice", "totp"], None);
        assert_eq!(factor_methods(&gw, "alice"), vec!["keyword"], "{backend:?}");
        let audit = gw.cli_json(&["audit", "--json", "--user", "alice", "--event", "factor"]);
        assert_eq!(audit.as_array().unwrap().len(), 6, "{backend:?}: every factor change audited: {audit}");
    }
}

fn user_requirement(gw: &Gw, user: &str) -> String {
    gw.cli_json(&["user", "show", user, "--json"])["requirement"].as_str().unwrap_or_default().to_string()
}
