//! The admin command line, on SQLite and PostgreSQL: every command of issue 2 (and
//! `factor …`, `policy methods`, `audit`) succeeds on good input, and on bad input prints
//! a one-line error, exits non-zero and writes nothing (checked with a list or show
//! afterwards). Also: `--help` everywhere, config errors naming the key, env overrides.
//!
//! Targets, grants and factors are in `cli_targets.rs`.

mod common;

use common::{Backend, Gw, backends, describe};
use serde_json::Value;

fn user_names(gw: &Gw) -> Vec<String> {
    let v = gw.cli_json(&["user", "list", "--json"]);
    v.as_array().expect("user list is an array").iter().map(|u| u["name"].as_str().unwrap_or("").to_string()).collect()
}

fn user_json(gw: &Gw, name: &str) -> Value {
    gw.cli_json(&["user", "show", name, "--json"])
}

/// Every subcommand path, found by walking `--help` ("Commands:" sections).
fn command_paths(gw: &Gw, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut args: Vec<&str> = prefix.iter().map(String::as_str).collect();
    args.push("--help");
    let text = gw.cli_ok(&args);
    out.push(prefix.clone());
    let Some(start) = text.find("Commands:") else { return };
    for line in text[start..].lines().skip(1) {
        if line.trim().is_empty() || !line.starts_with("  ") {
            break;
        }
        let name = line.split_whitespace().next().unwrap_or_default();
        if name != "help" {
            let mut next = prefix.clone();
            next.push(name.to_string());
            command_paths(gw, next, out);
        }
    }
}

#[test]
fn help_on_every_command() {
    let gw = Gw::new(Backend::Sqlite);
    let mut paths = Vec::new();
    command_paths(&gw, Vec::new(), &mut paths);
    let joined: Vec<String> = paths.iter().map(|p| p.join(" ")).collect();
    for expected in [
        "serve",
        "migrate",
        "user add",
        "user list",
        "user show",
        "user passwd",
        "user lock",
        "user unlock",
        "user delete",
        "user add-key",
        "user exempt",
        "group add",
        "group list",
        "group add-member",
        "group remove-member",
        "policy show",
        "policy force-2fa",
        "policy methods",
        "target add",
        "target list",
        "target grant",
        "target revoke",
        "factor totp enroll",
        "factor backup-codes",
        "factor keyword",
        "factor list",
        "factor remove",
        "audit",
    ] {
        assert!(joined.iter().any(|p| p == expected), "no '{expected}' command; found {joined:?}");
    }
    for path in &paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let text = gw.cli_ok(&args);
        assert!(text.contains("Usage:"), "gatehouse {args:?}:\n{text}");
        assert!(text.contains("--config"), "gatehouse {args:?} does not take --config:\n{text}");
        assert!(text.contains("--data-dir"), "gatehouse {args:?} does not take --data-dir:\n{text}");
    }
    assert!(!gw.data_dir().join("gatehouse.db").exists(), "--help touched the database");
}

#[test]
fn user_add_list_show() {
    for backend in backends() {
        let gw = Gw::new(backend);
        assert_eq!(gw.cli_ok(&["migrate"]).trim(), "database is up to date");
        gw.add_user("alice", "correct horse");
        let out = gw.cli_stdin(
            &["user", "add", "root-ops", "--password-stdin", "--admin", "--email", "ops@example.com"],
            "battery staple\n",
        );
        assert!(out.status.success(), "{}", describe(&out));
        gw.cli_ok(&["user", "add", "keyonly"]);
        assert_eq!(user_names(&gw), vec!["alice", "keyonly", "root-ops"], "{backend:?}");
        let ops = user_json(&gw, "root-ops");
        assert_eq!(ops["user"]["is_admin"], true);
        assert_eq!(ops["user"]["email"], "ops@example.com");
        assert_eq!(user_json(&gw, "alice")["user"]["is_admin"], false);
        assert!(gw.cli_ok(&["user", "list"]).contains("alice"));
        let text = gw.cli_ok(&["user", "show", "alice"]);
        assert!(text.contains("alice") && text.contains("2FA"), "{text}");

        // Bad input: one-line error, nothing written.
        let e = gw.cli_refused(&["user", "add", "alice", "--password-stdin"], Some("other password\n"));
        assert!(e.contains("alice") && e.contains("already exists"), "{backend:?}: {e}");
        let e = gw.cli_refused(&["user", "add", "bob", "--password-stdin"], None);
        assert!(e.contains("standard input"), "{backend:?}: missing stdin: {e}");
        gw.cli_refused(&["user", "add", "bob", "--password-stdin"], Some("short\n"));
        gw.cli_refused(&["user", "add", "bad name", "--password-stdin"], Some("long enough\n"));
        gw.cli_refused(&["user", "add", "bob", "--email", "not-an-address"], None);
        assert_eq!(user_names(&gw), vec!["alice", "keyonly", "root-ops"], "{backend:?}: a refused add wrote something");
        gw.cli_refused(&["user", "show", "nobody"], None);
        gw.cli_usage_error(&["user", "add"]);
    }
}

#[test]
fn user_password_lock_exempt_admin_delete() {
    for backend in backends() {
        let gw = Gw::new(backend);
        gw.add_user("alice", "correct horse");
        gw.cli_stdin(&["user", "passwd", "alice", "--password-stdin"], "battery staple\n");
        let e = gw.cli_refused(&["user", "passwd", "nobody", "--password-stdin"], Some("battery staple\n"));
        assert!(e.contains("nobody") && e.contains("not found"), "{backend:?}: {e}");
        gw.cli_refused(&["user", "passwd", "alice", "--password-stdin"], None);
        gw.cli_refused(&["user", "passwd", "alice", "--password-stdin"], Some("short\n"));
        gw.cli_usage_error(&["user", "passwd", "alice"]);

        gw.cli_ok(&["user", "lock", "alice"]);
        assert_eq!(user_json(&gw, "alice")["user"]["locked"], true, "{backend:?}");
        gw.cli_ok(&["user", "unlock", "alice"]);
        assert_eq!(user_json(&gw, "alice")["user"]["locked"], false, "{backend:?}");
        gw.cli_refused(&["user", "lock", "nobody"], None);
        gw.cli_refused(&["user", "unlock", "nobody"], None);

        let warning = gw.cli_ok(&["user", "exempt", "alice", "on"]);
        assert!(warning.contains("WARNING"), "exempting must warn: {warning}");
        assert_eq!(user_json(&gw, "alice")["user"]["exempt_2fa"], true);
        assert!(gw.cli_ok(&["policy", "show"]).contains("WARNING: user alice is exempt"), "{backend:?}");
        gw.cli_ok(&["user", "exempt", "alice", "off"]);
        assert_eq!(user_json(&gw, "alice")["user"]["exempt_2fa"], false);
        gw.cli_refused(&["user", "exempt", "nobody", "on"], None);
        gw.cli_usage_error(&["user", "exempt", "alice", "maybe"]);
        assert_eq!(user_json(&gw, "alice")["user"]["exempt_2fa"], false);

        gw.cli_ok(&["user", "admin", "alice", "on"]);
        assert_eq!(user_json(&gw, "alice")["user"]["is_admin"], true);
        gw.cli_ok(&["user", "admin", "alice", "off"]);
        assert_eq!(user_json(&gw, "alice")["user"]["is_admin"], false);

        gw.cli_ok(&["user", "delete", "alice"]);
        assert!(user_names(&gw).is_empty(), "{backend:?}");
        gw.cli_refused(&["user", "delete", "alice"], None);
    }
}

#[test]
fn user_add_key() {
    for backend in backends() {
        let gw = Gw::new(backend);
        gw.add_user("alice", "correct horse");
        let key = gw.new_key("alice");
        let out = gw.cli_ok(&["user", "add-key", "alice", "--key", &key.line]);
        assert!(out.contains(&key.fingerprint()), "{backend:?}: {out}");
        let other = gw.add_key("alice");
        let keys = user_json(&gw, "alice")["keys"].clone();
        let fps: Vec<&str> = keys.as_array().unwrap().iter().map(|k| k["fingerprint"].as_str().unwrap()).collect();
        assert_eq!(fps, vec![key.fingerprint(), other.fingerprint()], "{backend:?}");

        let e = gw.cli_refused(&["user", "add-key", "alice", "--key", "ssh-ed25519 AAAAnot-a-key"], None);
        assert!(e.contains("key"), "{e}");
        gw.cli_refused(&["user", "add-key", "alice", "--key", "hello world"], None);
        let private = key.private.display().to_string();
        gw.cli_refused(&["user", "add-key", "alice", "--key-file", &private], None);
        gw.cli_refused(&["user", "add-key", "alice", "--key-file", "/nonexistent/key.pub"], None);
        let e = gw.cli_refused(&["user", "add-key", "alice", "--key", &key.line], None);
        assert!(e.contains("already exists"), "{backend:?}: duplicate key: {e}");
        let third = gw.new_key("x");
        gw.cli_refused(&["user", "add-key", "nobody", "--key", &third.line], None);
        gw.cli_usage_error(&["user", "add-key", "alice"]);
        assert_eq!(
            user_json(&gw, "alice")["keys"].as_array().unwrap().len(),
            2,
            "{backend:?}: a refused key was written"
        );
    }
}

#[test]
fn groups_and_members() {
    for backend in backends() {
        let gw = Gw::new(backend);
        gw.add_user("alice", "correct horse");
        gw.add_user("bob", "correct horse");
        gw.cli_ok(&["group", "add", "ops"]);
        gw.cli_ok(&["group", "add", "dev"]);
        let e = gw.cli_refused(&["group", "add", "ops"], None);
        assert!(e.contains("ops") && e.contains("already exists"), "{e}");
        gw.cli_refused(&["group", "add", "no spaces"], None);
        let groups = || -> Vec<(String, Vec<String>)> {
            let v = gw.cli_json(&["group", "list", "--json"]);
            v.as_array()
                .unwrap()
                .iter()
                .map(|g| {
                    let members =
                        g["members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_string()).collect();
                    (g["group"]["name"].as_str().unwrap().to_string(), members)
                })
                .collect()
        };
        assert_eq!(groups(), vec![("dev".into(), vec![]), ("ops".into(), vec![])], "{backend:?}");

        gw.cli_ok(&["group", "add-member", "ops", "alice"]);
        gw.cli_ok(&["group", "add-member", "ops", "bob"]);
        gw.cli_refused(&["group", "add-member", "ops", "alice"], None);
        let e = gw.cli_refused(&["group", "add-member", "ops", "nobody"], None);
        assert!(e.contains("nobody"), "{e}");
        let e = gw.cli_refused(&["group", "add-member", "nogroup", "alice"], None);
        assert!(e.contains("nogroup"), "{e}");
        assert_eq!(groups()[1], ("ops".into(), vec!["alice".into(), "bob".into()]), "{backend:?}");
        assert!(gw.cli_ok(&["group", "list"]).contains("alice,bob"));
        assert_eq!(user_json(&gw, "alice")["groups"], serde_json::json!(["ops"]));

        gw.cli_ok(&["group", "remove-member", "ops", "bob"]);
        gw.cli_refused(&["group", "remove-member", "ops", "bob"], None);
        gw.cli_refused(&["group", "remove-member", "nogroup", "bob"], None);
        assert_eq!(groups()[1], ("ops".into(), vec!["alice".into()]), "{backend:?}");

        gw.cli_ok(&["group", "delete", "dev"]);
        gw.cli_refused(&["group", "delete", "dev"], None);
        assert_eq!(groups().len(), 1);
    }
}

#[test]
fn policy_force_methods_backup_codes() {
    for backend in backends() {
        let gw = Gw::new(backend);
        gw.cli_ok(&["group", "add", "ops"]);
        let policy = || gw.cli_json(&["policy", "show", "--json"]);
        assert_eq!(policy()["global"]["force_2fa"], false, "{backend:?}");
        assert!(gw.cli_ok(&["policy", "show"]).contains("force 2FA (global): off"));

        gw.cli_ok(&["policy", "force-2fa", "on"]);
        assert_eq!(policy()["global"]["force_2fa"], true);
        gw.cli_ok(&["policy", "force-2fa", "on", "--group", "ops"]);
        assert_eq!(policy()["groups"][0]["force_2fa"], true);
        gw.cli_ok(&["policy", "force-2fa", "off"]);
        let e = gw.cli_refused(&["policy", "force-2fa", "on", "--group", "nogroup"], None);
        assert!(e.contains("nogroup"), "{e}");
        gw.cli_usage_error(&["policy", "force-2fa", "sometimes"]);
        assert_eq!(policy()["global"]["force_2fa"], false, "{backend:?}: a refused change was written");

        gw.cli_ok(&["policy", "methods", "totp,keyword"]);
        assert_eq!(policy()["global"]["allowed_methods"], serde_json::json!(["totp", "keyword"]), "{backend:?}");
        let e = gw.cli_refused(&["policy", "methods", "totp,sms"], None);
        assert!(e.contains("sms"), "the error names the bad method: {e}");
        gw.cli_refused(&["policy", "methods", ""], None);
        gw.cli_refused(&["policy", "methods", "totp", "--group", "nogroup"], None);
        assert_eq!(policy()["global"]["allowed_methods"], serde_json::json!(["totp", "keyword"]));
        gw.cli_ok(&["policy", "methods", "totp", "--group", "ops"]);
        assert_eq!(policy()["groups"][0]["allowed_methods"], serde_json::json!(["totp"]));
        gw.cli_ok(&["policy", "methods", "inherit", "--group", "ops"]);
        assert_eq!(policy()["groups"][0]["allowed_methods"], Value::Null, "{backend:?}");

        gw.cli_ok(&["policy", "backup-codes", "6"]);
        assert_eq!(policy()["global"]["backup_code_count"], 6);
        gw.cli_refused(&["policy", "backup-codes", "0"], None);
        gw.cli_refused(&["policy", "backup-codes", "51"], None);
        gw.cli_usage_error(&["policy", "backup-codes", "many"]);
        assert_eq!(policy()["global"]["backup_code_count"], 6);
    }
}

#[test]
fn audit_log_records_cli_changes() {
    for backend in backends() {
        let gw = Gw::new(backend);
        gw.add_user("alice", "correct horse");
        gw.cli_ok(&["group", "add", "ops"]);
        gw.cli_ok(&["group", "add-member", "ops", "alice"]);
        gw.cli_refused(&["group", "add-member", "ops", "nobody"], None);
        let all = gw.cli_json(&["audit", "--json"]);
        let events: Vec<&str> = all.as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(events, vec!["group.member.add", "group.create", "user.create"], "{backend:?}: newest first");
        assert!(all.as_array().unwrap().iter().all(|e| e["actor"] == "cli"));
        let mine = gw.cli_json(&["audit", "--json", "--user", "alice", "--event", "user"]);
        assert_eq!(mine.as_array().unwrap().len(), 1, "{backend:?}: {mine}");
        assert_eq!(gw.cli_json(&["audit", "--json", "--limit", "1"]).as_array().unwrap().len(), 1);
        let text = gw.cli_ok(&["audit"]);
        assert!(text.contains("user.create") && text.contains("user=alice"), "{text}");
        gw.cli_usage_error(&["audit", "--limit", "lots"]);
    }
}

#[test]
fn config_errors_name_the_key() {
    let gw = Gw::with_config(Backend::Sqlite, "ssh_lisen = \"127.0.0.1:2222\"\n");
    for args in [&["user", "list"][..], &["serve"][..], &["migrate"][..]] {
        let e = gw.cli_refused(args, None);
        assert!(e.contains("ssh_lisen"), "gatehouse {args:?}: the error must name the key: {e}");
    }
    let gw = Gw::with_config(Backend::Sqlite, "[lockout]\nuser_threshold = \"many\"\n");
    let e = gw.cli_refused(&["user", "list"], None);
    assert!(e.contains("user_threshold"), "{e}");

    let mut gw = Gw::new(Backend::Sqlite);
    gw.set_env("GATEHOUSE_WEB_LISTN", "127.0.0.1:1");
    let e = gw.cli_refused(&["user", "list"], None);
    assert!(e.to_lowercase().contains("web_listn"), "an unknown variable must be named: {e}");
    let mut gw = Gw::new(Backend::Sqlite);
    gw.set_env("GATEHOUSE_SSH_LISTEN", "nowhere");
    let e = gw.cli_refused(&["serve"], None);
    assert!(e.contains("ssh_listen"), "{e}");
}

#[test]
fn environment_and_flags_override_the_file() {
    let mut gw = Gw::new(Backend::Sqlite);
    gw.add_user("alice", "correct horse");
    // GATEHOUSE_DATABASE_URL wins over database_url in the file.
    let other = gw.dir.path().join("other.db");
    gw.set_env("GATEHOUSE_DATABASE_URL", &format!("sqlite://{}?mode=rwc", other.display()));
    assert!(user_names(&gw).is_empty(), "the environment's database was not used");
    gw.add_user("bob", "correct horse");
    assert_eq!(user_names(&gw), vec!["bob"]);
    assert!(other.exists());

    // --data-dir wins over data_dir in the file (the secrets key is created there).
    let flag_dir = gw.dir.path().join("flag-data");
    gw.cli_ok(&["--data-dir", &flag_dir.display().to_string(), "migrate"]);
    assert!(flag_dir.join("secret.key").exists(), "--data-dir was not used");

    // Pointed back at the file's database: alice is there.
    gw.set_env("GATEHOUSE_DATABASE_URL", &gw.database_url.clone());
    assert_eq!(user_names(&gw), vec!["alice"]);
}

/// The README's "Command line" block, as subcommand paths (`["user", "add"]`, …).
fn readme_command_paths(readme: &str) -> Vec<Vec<String>> {
    let block = readme.split("## Command line").nth(1).and_then(|s| s.split("```").nth(1)).unwrap_or_default();
    let mut paths = Vec::new();
    for line in block.lines().filter_map(|l| l.strip_prefix("gatehouse ")) {
        let line = line.split('#').next().unwrap_or_default();
        let words = |alt: &str| -> Vec<String> {
            alt.split_whitespace()
                .take_while(|w| {
                    !w.is_empty()
                        && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        && !w.starts_with('-')
                })
                .map(str::to_string)
                .collect()
        };
        let mut alts = line.split(" | ");
        let first = words(alts.next().unwrap_or_default());
        let Some(group) = first.first().cloned() else { continue };
        paths.push(first);
        for alt in alts {
            let mut path = vec![group.clone()];
            path.extend(words(alt));
            paths.push(path);
        }
    }
    paths
}

#[test]
fn readme_matches_the_commands_and_config_keys() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("reading README.md");
    let gw = Gw::new(Backend::Sqlite);

    let mut known = Vec::new();
    command_paths(&gw, Vec::new(), &mut known);
    let documented = readme_command_paths(&readme);
    assert!(documented.len() >= 30, "README command block not found or too short: {documented:?}");
    for path in &documented {
        assert!(known.contains(path), "README documents 'gatehouse {}', which does not exist", path.join(" "));
    }
    for path in known.iter().filter(|p| !p.is_empty()) {
        // Group commands (`user`, `policy`, …) are documented through their subcommands.
        let covered = documented.iter().any(|d| d.starts_with(path));
        assert!(covered, "'gatehouse {}' is missing from the README's command list", path.join(" "));
    }

    // Config keys: the README table's rows against the keys the binary accepts. An
    // unknown key's error lists the expected ones.
    // A key only the file can set (a table of names, like `ldap.groups`) says `—` for its
    // variable.
    let table: Vec<(String, String)> = readme
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let key = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let var = match *cells.get(2)? {
                "—" => "—",
                cell => cell.strip_prefix('`')?.strip_suffix('`')?,
            };
            (var.starts_with("GATEHOUSE_") || var == "—").then(|| (key.to_string(), var.to_string()))
        })
        .collect();
    assert!(table.len() >= 5, "README config table not found");
    for (key, var) in table.iter().filter(|(_, var)| var != "—") {
        assert_eq!(*var, format!("GATEHOUSE_{}", key.to_uppercase().replace('.', "__")), "README row for {key}");
    }
    // The keys an unknown key's error lists, for the top level or one table.
    let keys_in = |table_name: &str| -> Vec<String> {
        let probe = if table_name.is_empty() {
            "zz_unknown = 1\n".to_string()
        } else {
            format!("[{table_name}]\nzz_unknown = 1\n")
        };
        let gw = Gw::with_config(Backend::Sqlite, &probe);
        let e = gw.cli_refused(&["migrate"], None);
        let expected = e.split("expected").nth(1).unwrap_or_else(|| panic!("no list of keys in: {e}"));
        // A nested table's error ends with "in `lockout`": not a key.
        let expected = expected.split(" in `").next().unwrap_or_default();
        expected.split('`').skip(1).step_by(2).map(str::to_string).collect()
    };
    let mut accepted = Vec::new();
    let mut pending = keys_in("");
    while let Some(key) = pending.pop() {
        // A key the README documents as `key.field` rows is a table (tables nest:
        // `recordings.s3.bucket`).
        if table.iter().any(|(k, _)| k.starts_with(&format!("{key}."))) {
            pending.extend(keys_in(&key).into_iter().map(|field| format!("{key}.{field}")));
        } else {
            accepted.push(key);
        }
    }
    let documented: Vec<&String> = table.iter().map(|(k, _)| k).collect();
    for key in &accepted {
        assert!(documented.contains(&key), "config key {key} is not in the README table");
    }
    for key in &documented {
        assert!(accepted.contains(key), "the README documents config key {key}, which the binary rejects");
    }
}
