//! The YubiKey OTP second factor through the SSH gate, with the real OpenSSH client and a
//! loopback validation server speaking Yubico's protocol 2.0: an administrator binds a
//! key with one OTP, a fresh OTP lets the user in, the same OTP again is refused as
//! replayed (also by the gateway alone when the server forgot it), another key's OTP is
//! refused without asking the server, and a server that signs with the wrong key or does
//! not answer refuses the login with a clear message.

mod common;

use std::process::Output;

use common::{Backend, ClientKey, Gw, SoftYubiKey, Ssh, ValidationServer, backends, describe, free_port, stderr};

const PASSWORD: &str = "correct horse battery";

/// A started gateway whose `[yubikey]` table lists `urls`, with the server's client id and
/// its API key from the environment (as the README advises). `lock_after` failures lock
/// an account.
fn gateway(backend: Backend, server: &ValidationServer, urls: &[String], lock_after: u32) -> Gw {
    let list: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    let mut gw = Gw::with_config(
        backend,
        &format!(
            "[yubikey]\nclient_id = \"{}\"\napi_urls = [{}]\ntimeout_secs = 2\n\
             [lockout]\nuser_threshold = {lock_after}\nsource_threshold = 100\nwindow_secs = 900\nduration_secs = 900\n",
            server.client_id(),
            list.join(", ")
        ),
    );
    gw.set_env("GATEHOUSE_YUBIKEY__SECRET_KEY", &server.secret_key());
    gw.start();
    gw
}

/// `user` with a password and an SSH key, their `yubikey` bound by one OTP through the
/// CLI; returns the SSH key and the OTP that enrolled.
fn enrolled(gw: &Gw, user: &str, yubikey: &mut SoftYubiKey) -> (ClientKey, String) {
    gw.add_user(user, PASSWORD);
    let key = gw.add_key(user);
    let otp = yubikey.otp();
    let out = gw.cli_ok(&["factor", "yubikey", "enroll", user, &otp]);
    assert!(out.contains(&yubikey.public_id), "the bound public id is named: {out}");
    (key, otp)
}

fn ssh(gw: &Gw, user: &str, key: &ClientKey) -> Ssh {
    Ssh::new(gw.ssh_port, user).arg("-v").stdin("").identity(key)
}

/// Refused, and `message` was shown to the user.
fn assert_out(gw: &Gw, out: &Output, message: &str, what: &str) {
    gw.assert_refused(out, what);
    assert!(stderr(out).contains(message), "{what}: the user is told {message:?}\n{}", describe(out));
}

#[test]
fn a_bound_key_gets_in_once_per_otp_and_another_key_never() {
    let server = ValidationServer::start();
    for backend in backends() {
        let gw = gateway(backend, &server, &[server.url()], 20);
        let mut yubikey = SoftYubiKey::new();
        let mut stranger = SoftYubiKey::new();
        server.register(&yubikey);
        server.register(&stranger);
        let (key, enrolling_otp) = enrolled(&gw, "alice", &mut yubikey);
        let list = gw.cli_ok(&["factor", "list", "alice"]);
        assert!(list.contains(&format!("YubiKey {}", yubikey.public_id)), "{list}");
        assert!(
            gw.audit("factor.enroll").contains(&format!("yubikey {}", yubikey.public_id)),
            "the enrollment is audited"
        );

        // The OTP that enrolled is spent: it cannot log in.
        let out = ssh(&gw, "alice", &key).answers(&[&enrolling_otp]).run(&[]);
        assert_out(&gw, &out, "already used", &format!("{backend:?}: the enrollment OTP"));

        // A fresh touch gets in, and the prompt named the method.
        let otp = yubikey.otp();
        let client = ssh(&gw, "alice", &key).on_prompt("YubiKey OTP", &otp);
        gw.assert_logged_in(&client.run(&[]), &format!("{backend:?}: a fresh OTP"));
        assert!(client.prompts_seen().iter().any(|p| p.contains("YubiKey OTP")), "{:?}", client.prompts_seen());
        let list = gw.cli_ok(&["factor", "list", "--json", "alice"]);
        assert!(!list.contains("\"last_used_at\": null"), "the use is recorded: {list}");

        // The same OTP again is refused before the server is asked.
        let asked = server.answered().len();
        let out = ssh(&gw, "alice", &key).answers(&[&otp]).run(&[]);
        assert_out(&gw, &out, "already used", "the same OTP again");
        assert_eq!(server.answered().len(), asked, "the gateway refused it before asking");

        // An older OTP the gateway never saw is refused by the server's counters.
        let old = yubikey.otp_with_counters(1, 0);
        let out = ssh(&gw, "alice", &key).answers(&[&old]).run(&[]);
        assert_out(&gw, &out, "already used", "an OTP with old counters");
        assert_eq!(server.answered().last().map(String::as_str), Some("REPLAYED_OTP"));

        // A server that forgot (restored from a backup) would take the last OTP again;
        // the gateway does not.
        server.forget();
        let out = ssh(&gw, "alice", &key).answers(&[&otp]).run(&[]);
        assert_out(&gw, &out, "already used", "the same OTP after the server forgot it");
        assert_eq!(server.answered().len(), asked + 1, "only the old-counter OTP reached the server");

        // Another key's valid OTP is refused without asking the server.
        let asked = server.answered().len();
        let out = ssh(&gw, "alice", &key).answers(&[&stranger.otp()]).run(&[]);
        assert_out(&gw, &out, "not right", "another key's OTP");
        assert_eq!(server.answered().len(), asked, "another key's OTP never reaches the server");

        // Garbage and a forged OTP with the right public id are wrong answers.
        let forged = format!("{}{}", yubikey.public_id, "c".repeat(32));
        let out = ssh(&gw, "alice", &key).answers(&["not an otp", &forged]).run(&[]);
        assert_out(&gw, &out, "not right", "a forged OTP");
        assert_eq!(server.answered().last().map(String::as_str), Some("BAD_OTP"));

        let factor = gw.audit("login.factor");
        assert!(factor.contains("yubikey via ssh"), "{factor}");
        assert!(factor.contains("yubikey: code already used"), "{factor}");
        assert!(factor.contains("yubikey: wrong answer"), "{factor}");
        assert_eq!(gw.audit("login.success").matches("publickey + yubikey").count(), 1, "one login passed");

        // Every request was signed, and no OTP nor the API key reached the gateway's log.
        assert!(server.all_requests_signed());
        let log = gw.log();
        let api_key = server.secret_key();
        for secret in [enrolling_otp.as_str(), otp.as_str(), old.as_str(), api_key.as_str()] {
            assert!(!log.contains(secret), "the log shows a secret:\n{log}");
        }
    }
}

#[test]
fn a_server_signing_with_another_key_is_not_believed() {
    let server = ValidationServer::start();
    let gw = gateway(Backend::Sqlite, &server, &[server.url()], 5);
    let mut yubikey = SoftYubiKey::new();
    server.register(&yubikey);
    let (key, _) = enrolled(&gw, "bob", &mut yubikey);

    server.sign_with_wrong_key(true);
    let out = ssh(&gw, "bob", &key).answers(&[&yubikey.otp()]).run(&[]);
    assert_out(&gw, &out, "did not answer", "an OK with a bad signature");
    assert_eq!(server.answered().last().map(String::as_str), Some("OK"), "the server did say OK");
    let factor = gw.audit("login.factor");
    assert!(factor.contains("yubikey: server unavailable"), "{factor}");
    assert!(!gw.audit("login.success").contains("bob"), "no login passed");
    assert!(gw.log().contains("bad signature"), "the reason is logged:\n{}", gw.log());

    // An enrollment checked against it binds nothing.
    gw.add_user("carol", PASSWORD);
    let err = gw.cli_err(&["factor", "yubikey", "enroll", "carol", &yubikey.otp()]);
    assert!(err.contains("could not be checked"), "{err}");
    assert!(!gw.cli_ok(&["factor", "list", "carol"]).contains("yubikey"));

    // Signed correctly again, a fresh OTP gets in.
    server.sign_with_wrong_key(false);
    let out = ssh(&gw, "bob", &key).answers(&[&yubikey.otp()]).run(&[]);
    gw.assert_logged_in(&out, "the honest server again");
}

#[test]
fn servers_are_tried_in_order_and_none_answering_fails_closed() {
    let mut server = ValidationServer::start();
    // The first URL refuses connections; the second is the stand-in.
    let dead = format!("http://127.0.0.1:{}/wsapi/2.0/verify", free_port());
    // Two failures would lock the account, were unavailability counted.
    let gw = gateway(Backend::Sqlite, &server, &[dead, server.url()], 2);
    let mut yubikey = SoftYubiKey::new();
    server.register(&yubikey);
    let (key, _) = enrolled(&gw, "dave", &mut yubikey);
    let out = ssh(&gw, "dave", &key).answers(&[&yubikey.otp()]).run(&[]);
    gw.assert_logged_in(&out, "the second server answers");

    // The service is down: the answer is not accepted, the user is told why, and the
    // failure does not count towards the lock.
    server.stop();
    let otp = yubikey.otp();
    let out = ssh(&gw, "dave", &key).answers(&[&otp, &otp, &otp]).run(&[]);
    assert_out(&gw, &out, "did not answer", "service down");
    let factor = gw.audit("login.factor");
    assert_eq!(factor.matches("yubikey: server unavailable").count(), 3, "{factor}");
    assert!(!gw.audit("login.lockout").contains("dave"), "not the user's fault: no lock");
    assert_eq!(gw.audit("login.success").matches("publickey + yubikey").count(), 1, "only the first login passed");
    let err = gw.cli_err(&["factor", "yubikey", "enroll", "dave", &yubikey.otp()]);
    assert!(err.contains("could not be checked") && err.contains("127.0.0.1"), "{err}");
}

#[test]
fn enrollment_refuses_what_is_not_a_valid_otp_and_writes_nothing() {
    let server = ValidationServer::start();
    let gw = gateway(Backend::Sqlite, &server, &[server.url()], 5);
    gw.add_user("erin", PASSWORD);
    let mut known = SoftYubiKey::new();
    server.register(&known);
    let (unknown, not_modhex, no_public_id) = (SoftYubiKey::new().otp(), "a".repeat(44), "c".repeat(40));
    for (otp, expected) in [
        ("123456", "32 to 48 characters"),
        (not_modhex.as_str(), "cbdefghijklnrtuv"),
        (no_public_id.as_str(), "12-character public id"),
        (unknown.as_str(), "not valid"),
    ] {
        let err = gw.cli_err(&["factor", "yubikey", "enroll", "erin", otp]);
        assert!(err.contains(expected), "{otp}: {err}");
    }
    let otp = known.otp();
    gw.cli_ok(&["factor", "yubikey", "enroll", "erin", &otp]);
    gw.cli_ok(&["factor", "remove", "erin", "yubikey"]);
    let err = gw.cli_err(&["factor", "yubikey", "enroll", "erin", &otp]);
    assert!(err.contains("already used"), "{err}");
    assert!(!gw.cli_ok(&["factor", "list", "erin"]).contains("yubikey"), "nothing was bound");
    let err = gw.cli_err(&["factor", "yubikey", "enroll", "nobody", &known.otp()]);
    assert!(err.contains("nobody"), "{err}");
    let enrolled = gw.audit("factor.enroll");
    assert_eq!(enrolled.matches("yubikey").count(), 1, "only the one enrollment: {enrolled}");

    // A wrong API key or client id: the server's complaint reaches the administrator.
    for (client_id, key, expected) in [
        (server.client_id().to_string(), "d3Jvbmcga2V5".to_string(), "BAD_SIGNATURE"),
        ("999".to_string(), server.secret_key(), "NO_SUCH_CLIENT"),
    ] {
        let mut wrong = Gw::with_config(
            Backend::Sqlite,
            &format!("[yubikey]\nclient_id = \"{client_id}\"\napi_urls = [\"{}\"]\n", server.url()),
        );
        wrong.set_env("GATEHOUSE_YUBIKEY__SECRET_KEY", &key);
        wrong.add_user("erin", PASSWORD);
        let err = wrong.cli_err(&["factor", "yubikey", "enroll", "erin", &known.otp()]);
        assert!(err.contains(expected) && err.contains("could not be checked"), "{err}");
        assert!(!err.contains(&key), "the key is not shown: {err}");
    }

    // Without a [yubikey] table the method is off and nothing can be checked.
    let plain = Gw::new(Backend::Sqlite);
    plain.add_user("erin", PASSWORD);
    let err = plain.cli_err(&["factor", "yubikey", "enroll", "erin", &known.otp()]);
    assert!(err.contains("not configured"), "{err}");
    assert!(plain.cli_ok(&["factor", "yubikey", "enroll", "--help"]).contains("OTP"));
}
