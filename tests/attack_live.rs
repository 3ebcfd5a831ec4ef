//! Attacks on connections that are already open: a login is not a licence. Each test
//! holds a real OpenSSH connection open (ControlMaster) or one of the harness's own, then
//! changes the account behind it, and checks that nothing opens afterwards and that the
//! connection itself ends.

mod common;
mod shell_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{ClientKey, Master, describe, stdout};
use shell_support::{Bastion, bastion};

fn user_id(b: &Bastion, name: &str) -> String {
    b.sql(&format!("SELECT id FROM users WHERE name = '{name}'")).trim().to_string()
}

fn key_only(b: &Bastion, name: &str) -> ClientKey {
    b.gw.cli_ok(&["user", "add", name]);
    b.gw.add_key(name)
}

/// How long the gateway may take to notice a change (it polls the database every second).
const NOTICE: Duration = Duration::from_secs(15);

#[test]
fn deleted_users_connection_does_not_inherit_the_next_users_rights() {
    let b = bastion();
    b.add_granted("web1");
    b.add_target("web2", &b.sshd, &b.target_key, Some(&b.sshd.host_key_pub));
    let zed_key = key_only(&b, "zed");
    b.gw.cli_ok(&["target", "grant", "web1", "--user", "zed"]);
    let mut zed = Master::open(&b.gw, "zed", &zed_key);
    let out = zed.run(&["web1", "echo", "zed-was-here"]);
    assert!(stdout(&out).contains("zed-was-here"), "zed's own target works first:\n{}", describe(&out));
    let zed_id = user_id(&b, "zed");

    b.gw.cli_ok(&["user", "delete", "zed"]);
    b.gw.cli_ok(&["user", "add", "yara"]);
    assert_ne!(user_id(&b, "yara"), zed_id, "a new user must never get a deleted user's id");
    b.gw.cli_ok(&["target", "grant", "web2", "--user", "yara"]);

    let out = zed.run(&["web2", "echo", "leak"]);
    assert!(!stdout(&out).contains("leak"), "zed's connection ran a command with yara's grant:\n{}", describe(&out));
    let out = zed.run(&["web1", "echo", "leak"]);
    assert!(!stdout(&out).contains("leak"), "a deleted user's connection ran a command:\n{}", describe(&out));
    assert!(zed.ended(NOTICE), "the deleted user's connection is still open:\n{}", b.gw.log());
    let audit = b.audit("session");
    assert!(audit.contains("account deleted"), "the end is audited:\n{audit}");
}

#[test]
fn lock_ends_open_connections_and_their_target_sessions() {
    let b = bastion();
    b.add_granted("web1");
    let mut alice = Master::open(&b.gw, "alice", &b.key);
    assert!(stdout(&alice.run(&["web1", "echo", "before"])).contains("before"));

    // A target session in progress through the master.
    let mut long = alice.client().command(&["web1", "sleep 120; echo finished"]);
    let mut running =
        long.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("a long command");
    std::thread::sleep(Duration::from_secs(2));

    let started = Instant::now();
    b.gw.cli_ok(&["user", "lock", "alice"]);
    let out = alice.run(&["web1", "echo", "after"]);
    assert!(!stdout(&out).contains("after"), "a locked user's open connection ran a command:\n{}", describe(&out));
    assert!(alice.ended(NOTICE), "the locked user's connection is still open:\n{}", b.gw.log());
    let ended = loop {
        if let Ok(Some(_)) = running.try_wait() {
            break true;
        }
        if started.elapsed() > NOTICE {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = running.kill();
    assert!(ended, "the target session of a locked user went on");
    let audit = b.audit("session");
    assert!(audit.contains("account locked"), "{audit}");
}

#[test]
fn forcing_2fa_ends_connections_made_without_a_factor() {
    let b = bastion();
    b.add_granted("web1");
    let mut alice = Master::open(&b.gw, "alice", &b.key);
    assert!(stdout(&alice.run(&["web1", "echo", "before"])).contains("before"));
    b.gw.cli_ok(&["policy", "force-2fa", "on"]);
    let out = alice.run(&["web1", "echo", "after"]);
    assert!(
        !stdout(&out).contains("after"),
        "a connection without a factor ran a command after 2FA was forced:\n{}",
        describe(&out)
    );
    assert!(alice.ended(NOTICE), "the connection made without a factor is still open");
    assert!(b.audit("session").contains("policy now requires a second factor"), "{}", b.audit("session"));
}

#[test]
fn forcing_2fa_on_one_user_ends_that_users_connection_and_no_other() {
    let b = bastion();
    b.add_granted("web1");
    let bob_key = key_only(&b, "bob");
    b.gw.cli_ok(&["target", "grant", "web1", "--user", "bob"]);
    let mut alice = Master::open(&b.gw, "alice", &b.key);
    let mut bob = Master::open(&b.gw, "bob", &bob_key);
    assert!(stdout(&alice.run(&["web1", "echo", "before"])).contains("before"));
    assert!(stdout(&bob.run(&["web1", "echo", "before"])).contains("before"));
    b.gw.cli_ok(&["user", "force-2fa", "alice", "on"]);
    let out = alice.run(&["web1", "echo", "after"]);
    assert!(
        !stdout(&out).contains("after"),
        "a connection without a factor ran a command after 2FA was forced on its user:\n{}",
        describe(&out)
    );
    assert!(alice.ended(NOTICE), "alice's connection made without a factor is still open");
    assert!(!bob.ended(Duration::from_secs(2)), "bob's connection ended, though nothing changed for him");
    assert!(stdout(&bob.run(&["web1", "echo", "still"])).contains("still"), "bob's connection stands");
    let audit = b.audit("session");
    assert!(audit.contains("policy now requires a second factor") && audit.contains("alice"), "{audit}");

    // Making bob an administrator, while every administrator must use 2FA (as on a new
    // installation), ends his too.
    assert!(b.gw.cli_ok(&["policy", "show"]).contains("force 2FA (admins): on"));
    b.gw.cli_ok(&["user", "admin", "bob", "on"]);
    assert!(bob.ended(NOTICE), "a new administrator's connection without a factor is still open");
}

#[test]
fn removing_the_login_key_or_the_grant_closes_what_they_opened() {
    let b = bastion();
    b.add_granted("web1");
    let alice = Master::open(&b.gw, "alice", &b.key);
    // A revoked grant: the next session to that target is refused, the connection stays.
    b.gw.cli_ok(&["target", "revoke", "web1", "--user", "alice"]);
    let out = alice.run(&["web1", "echo", "leak"]);
    assert!(!stdout(&out).contains("leak"), "{}", describe(&out));
    b.gw.cli_ok(&["target", "grant", "web1", "--user", "alice"]);
    assert!(stdout(&alice.run(&["web1", "echo", "again"])).contains("again"));
    // The key the connection logged in with is removed (behind the gateway's back, so
    // only the check at the next channel can see it): nothing opens any more.
    b.sql("DELETE FROM ssh_keys WHERE user_id = (SELECT id FROM users WHERE name = 'alice')");
    let out = alice.run(&["web1", "echo", "leak"]);
    assert!(!stdout(&out).contains("leak"), "a connection whose key was removed ran a command:\n{}", describe(&out));
    assert!(b.audit("session").contains("key removed"), "{}", b.audit("session"));
}

/// `ssh -J` through the gateway is a live session like any other: it has a row on the
/// live-sessions page, and ending that row ends the tunnel.
#[test]
fn a_jump_forward_is_a_live_session_an_administrator_can_end() {
    let b = bastion();
    b.add_granted("web1");
    // The client's own key is what the target sees on a -J hop.
    b.sshd.authorize(&b.key.line);
    let config = b.client_config(&["web1"]);
    let mut cmd = std::process::Command::new("ssh");
    cmd.args(["-F", config.to_str().expect("utf-8 path"), "-J", "gw", "direct", "sleep 120; echo finished"]);
    let mut jump = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("ssh -J");
    let until = Instant::now() + Duration::from_secs(30);
    let id = loop {
        let id = b.sql("SELECT id FROM live_sessions WHERE kind = 'forward' AND user_name = 'alice'");
        if !id.trim().is_empty() {
            break id.trim().to_string();
        }
        assert!(Instant::now() < until, "no live session for the -J forward:\n{}", b.gw.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    // What the admin page's End button does.
    b.sql(&format!("UPDATE live_sessions SET terminate_requested = 1 WHERE id = {id}"));
    let until = Instant::now() + NOTICE;
    let ended = loop {
        if let Ok(Some(_)) = jump.try_wait() {
            break true;
        }
        if Instant::now() > until {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = jump.kill();
    assert!(ended, "the -J forward went on after its live session was ended");
    assert!(b.audit("target.disconnect").contains("forward ended by an administrator"), "{}", b.audit("target"));
    assert!(b.sql("SELECT COUNT(*) FROM live_sessions").trim() == "0", "the row is gone");
}
