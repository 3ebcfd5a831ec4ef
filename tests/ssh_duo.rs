//! The Duo second factor through the SSH gate, with the real OpenSSH client and a loopback
//! stand-in for Duo's Auth API that checks every signature as Duo does: a passcode gets
//! in and a wrong one does not, an empty answer sends a push and waits for it (approved,
//! denied, or not answered in time), Duo's preauth answers (deny, enroll, allow) are
//! explained or honoured, and when Duo refuses the gateway's signature or cannot be
//! reached the login fails closed, unless `fail_open` lets an outage through, audited.

mod common;

use std::process::Output;

use common::duo::{Preauth, Push, duo_table, last_duo_error};
use common::{Backend, ClientKey, Duo, Gw, Ssh, backends, describe, free_port, stderr};

const PASSWORD: &str = "correct horse battery";
const WRONG_SECRET_KEY: &str = "notTheSecretKey0000000000000000000000000";

/// A started gateway whose `[duo]` table points at `api_host`, signing with `secret_key`
/// (given through the environment, as the README advises), two gate attempts.
fn gateway(backend: Backend, api_host: &str, secret_key: &str, extra: &str) -> Gw {
    let mut gw = Gw::with_config(backend, &format!("[ssh]\ngate_attempts = 2\n{}", duo_table(api_host, extra)));
    gw.set_env("GATEHOUSE_DUO__SECRET_KEY", secret_key);
    gw.start();
    gw
}

/// `user` with a password and a key, enrolled for Duo (as `duo_user` when given).
fn enrolled(gw: &Gw, user: &str, duo_user: Option<&str>) -> ClientKey {
    gw.add_user(user, PASSWORD);
    let key = gw.add_key(user);
    let mut enroll = vec!["factor", "duo", "enroll", user];
    if let Some(name) = duo_user {
        enroll.extend(["--duo-user", name]);
    }
    gw.cli_ok(&enroll);
    key
}

fn ssh(gw: &Gw, user: &str, key: &ClientKey) -> Ssh {
    Ssh::new(gw.ssh_port, user).arg("-v").stdin("").identity(key)
}

fn assert_in(gw: &Gw, client: &Ssh, out: &Output, what: &str) {
    assert!(
        common::ssh::authenticated(out),
        "{what}: expected to get in\n{}\n--- prompts ---\n{}\n--- gateway log ---\n{}",
        describe(out),
        client.prompts_seen().join("\n"),
        gw.log()
    );
}

#[test]
fn a_passcode_gets_in_and_a_wrong_one_does_not() {
    let duo = Duo::start();
    duo.user("alice", Preauth::Auth, Push::Never);
    duo.user("duo-bob", Preauth::TokenOnly, Push::Never);
    for backend in backends() {
        duo.clear();
        let gw = gateway(backend, &duo.api_host(), Duo::SECRET_KEY, "");
        let key = enrolled(&gw, "alice", None);
        let client = ssh(&gw, "alice", &key).on_prompt("Duo passcode", Duo::PASSCODE);
        let out = client.run(&[]);
        assert_in(&gw, &client, &out, &format!("{backend:?}: right passcode"));
        assert!(
            client.prompts_seen().iter().any(|p| p.contains("Duo passcode, or Enter for a push")),
            "{:?}",
            client.prompts_seen()
        );
        assert!(stderr(&out).contains(Duo::DEVICE), "the push device is named:\n{}", describe(&out));

        // What Duo saw: preauth, then the passcode, each signed with HMAC-SHA512.
        let preauth = duo.requests_to("/auth/v2/preauth");
        assert_eq!(preauth.len(), 1, "{preauth:?}");
        assert_eq!((preauth[0].param("username"), preauth[0].param("ipaddr")), (Some("alice"), Some("127.0.0.1")));
        let auth = duo.requests_to("/auth/v2/auth");
        assert_eq!(auth.len(), 1, "{auth:?}");
        assert_eq!((auth[0].param("factor"), auth[0].param("passcode")), (Some("passcode"), Some(Duo::PASSCODE)));
        assert!(duo.requests().iter().all(|r| r.signature == Ok("sha512")), "{:?}", duo.requests());
        assert!(gw.audit("login.factor").contains("duo via ssh"), "the accepted passcode is audited");

        let wrong = ssh(&gw, "alice", &key).answers(&["111111", "222222"]);
        let out = wrong.run(&[]);
        gw.assert_refused(&out, "wrong passcode");
        assert!(stderr(&out).contains("not right"), "{}", describe(&out));
        assert!(gw.audit("login.factor").contains("duo: wrong answer"));
        let refused: Vec<_> = duo
            .requests_to("/auth/v2/auth")
            .into_iter()
            .filter_map(|r| r.param("passcode").map(str::to_string))
            .collect();
        assert_eq!(refused, [Duo::PASSCODE, "111111", "222222"], "each answer was asked of Duo");

        // A Duo user name of its own, with a token only: no push is offered.
        let key = enrolled(&gw, "bob", Some("duo-bob"));
        let client = ssh(&gw, "bob", &key).on_prompt("Duo", Duo::PASSCODE);
        let out = client.run(&[]);
        assert_in(&gw, &client, &out, "bob as duo-bob with a token");
        assert!(!client.prompts_seen().iter().any(|p| p.contains("push")), "{:?}", client.prompts_seen());
        assert!(duo.requests_to("/auth/v2/preauth").iter().any(|r| r.param("username") == Some("duo-bob")));

        // Neither the passcode nor the secret key reaches the gateway's log.
        let log = gw.log();
        assert!(!log.contains(Duo::PASSCODE) && !log.contains(Duo::SECRET_KEY), "{log}");
    }
}

#[test]
fn an_empty_answer_sends_a_push_and_waits_for_it() {
    let duo = Duo::start();
    duo.user("alice", Preauth::Auth, Push::ApproveAfter(2));
    duo.user("bob", Preauth::Auth, Push::Deny);
    for backend in backends() {
        duo.clear();
        let gw = gateway(backend, &duo.api_host(), Duo::SECRET_KEY, "");
        let key = enrolled(&gw, "alice", None);
        let client = ssh(&gw, "alice", &key).on_prompt("Duo passcode", "");
        let out = client.run(&[]);
        assert_in(&gw, &client, &out, &format!("{backend:?}: approved push"));
        let pushes = duo.requests_to("/auth/v2/auth");
        assert_eq!(pushes.len(), 1, "{pushes:?}");
        let push = &pushes[0];
        assert_eq!(
            (push.param("factor"), push.param("async"), push.param("device")),
            (Some("push"), Some("1"), Some("auto"))
        );
        let info = push.param("pushinfo").unwrap_or_default();
        for part in [format!("Gateway=test-{}", gw.ssh_port), "From=127.0.0.1".into(), "Via=ssh".into()] {
            assert!(info.contains(&part), "pushinfo names the login: {info}");
        }
        let polls = duo.requests_to("/auth/v2/auth_status");
        assert_eq!(polls.len(), 3, "two 'waiting', then 'allow': {polls:?}");
        assert!(polls.iter().all(|p| p.param("txid").is_some_and(|t| !t.is_empty())));
        assert!(gw.audit("login.factor").contains("duo via ssh"));

        // Denied on the phone ("this was not me"): the login ends at once.
        let key = enrolled(&gw, "bob", None);
        let out = ssh(&gw, "bob", &key).answers(&["", ""]).run(&[]);
        gw.assert_refused(&out, "denied push");
        assert!(stderr(&out).contains("The login was denied (Duo)."), "{}", describe(&out));
        let bob_pushes =
            duo.requests_to("/auth/v2/auth").into_iter().filter(|r| r.param("username") == Some("bob")).count();
        assert_eq!(bob_pushes, 1, "no second attempt after a denial");
        assert!(gw.audit("login.factor").contains("duo: wrong answer"), "a denied push counts as a failure");
    }
}

#[test]
fn a_push_nobody_answers_expires() {
    let duo = Duo::start();
    duo.user("carol", Preauth::Auth, Push::Never);
    // Each push is given up after two seconds.
    let gw = gateway(Backend::Sqlite, &duo.api_host(), Duo::SECRET_KEY, "push_timeout_secs = 2\n");
    let key = enrolled(&gw, "carol", None);
    let started = std::time::Instant::now();
    let out = ssh(&gw, "carol", &key).answers(&["", ""]).run(&[]);
    gw.assert_refused(&out, "push never answered");
    assert!(stderr(&out).contains("The approval request expired."), "{}", describe(&out));
    assert!(started.elapsed() >= std::time::Duration::from_secs(4), "each push was waited for");
    assert_eq!(duo.requests_to("/auth/v2/auth").len(), 2, "a new push for the second attempt");
    assert!(gw.audit("login.factor").contains("duo: expired"));
    assert!(!gw.audit("login.success").contains("carol"));
}

#[test]
fn duos_preauth_answers_are_shown_or_honoured() {
    let duo = Duo::start();
    duo.user("dave", Preauth::Deny, Push::Never);
    duo.user("frank", Preauth::Allow, Push::Never);
    // erin has no script: Duo does not know her and asks her to enroll.
    for backend in backends() {
        let gw = gateway(backend, &duo.api_host(), Duo::SECRET_KEY, "");
        let key = enrolled(&gw, "dave", None);
        let out = ssh(&gw, "dave", &key).answers(&["123456", "123456"]).run(&[]);
        gw.assert_refused(&out, "preauth deny");
        assert!(stderr(&out).contains(&format!("Duo refused this login: {}", Duo::DENY_MESSAGE)), "{}", describe(&out));

        let key = enrolled(&gw, "erin", None);
        let out = ssh(&gw, "erin", &key).answers(&["123456", "123456"]).run(&[]);
        gw.assert_refused(&out, "preauth enroll");
        assert!(stderr(&out).contains(Duo::ENROLL_URL), "the enrollment address is shown:\n{}", describe(&out));
        assert!(
            !duo.requests_to("/auth/v2/auth").iter().any(|r| matches!(r.param("username"), Some("dave" | "erin"))),
            "nothing is asked of Duo for a user it refused"
        );

        let key = enrolled(&gw, "frank", None);
        let client = ssh(&gw, "frank", &key).answers(&[""]);
        let out = client.run(&[]);
        assert_in(&gw, &client, &out, &format!("{backend:?}: Duo bypass"));
        let bypass = gw.audit("login.duo.bypass");
        assert!(
            bypass.contains("frank") && bypass.contains("Duo bypass") && bypass.contains("Allowing unknown user"),
            "{bypass}"
        );
    }
}

#[test]
fn a_signature_duo_refuses_fails_closed_even_with_fail_open() {
    let duo = Duo::start();
    duo.user("alice", Preauth::Auth, Push::ApproveAfter(0));
    for backend in backends() {
        duo.clear();
        // fail_open is for outages only: a refused signature is Duo answering.
        let gw = gateway(backend, &duo.api_host(), WRONG_SECRET_KEY, "fail_open = true\n");
        let key = enrolled(&gw, "alice", None);
        let out = ssh(&gw, "alice", &key).answers(&[Duo::PASSCODE, ""]).run(&[]);
        gw.assert_refused(&out, &format!("{backend:?}: wrong secret key"));
        assert!(stderr(&out).contains("did not answer"), "the user is told why:\n{}", describe(&out));
        let seen = duo.requests();
        assert!(!seen.is_empty() && seen.iter().all(|r| r.signature == Err("signature".to_string())), "{seen:?}");
        assert!(gw.audit("login.factor").contains("duo: server unavailable"));
        assert!(!gw.audit("login.duo").contains("fail_open"), "nothing was let through");
        let error = last_duo_error(&gw);
        assert!(error.contains("Invalid signature in request credentials") && error.contains("40103"), "{error}");
    }
}

#[test]
fn duo_down_refuses_the_login_with_a_clear_message() {
    let down = format!("http://127.0.0.1:{}", free_port());
    for backend in backends() {
        let gw = gateway(backend, &down, Duo::SECRET_KEY, "");
        let key = enrolled(&gw, "alice", None);
        let client = ssh(&gw, "alice", &key).answers(&["", Duo::PASSCODE]);
        let out = client.run(&[]);
        gw.assert_refused(&out, &format!("{backend:?}: Duo down"));
        assert!(stderr(&out).contains("Duo did not answer"), "{}", describe(&out));
        assert!(stderr(&out).contains("did not answer. Try again later"), "{}", describe(&out));
        assert!(gw.audit("login.factor").contains("duo: server unavailable"));
        assert!(!gw.audit("login.success").contains("alice"));
        assert!(last_duo_error(&gw).contains("could not be reached"), "{}", last_duo_error(&gw));
    }

    // A Duo answering HTTP 503 is down too.
    let duo = Duo::start();
    duo.break_with(Some(503));
    let gw = gateway(Backend::Sqlite, &duo.api_host(), Duo::SECRET_KEY, "");
    let key = enrolled(&gw, "alice", None);
    let out = ssh(&gw, "alice", &key).answers(&[Duo::PASSCODE, Duo::PASSCODE]).run(&[]);
    gw.assert_refused(&out, "Duo answering 503");
    assert!(last_duo_error(&gw).contains("HTTP 503"), "{}", last_duo_error(&gw));
}

#[test]
fn fail_open_lets_a_login_through_while_duo_is_down_and_says_so() {
    let down = format!("http://127.0.0.1:{}", free_port());
    for backend in backends() {
        let gw = gateway(backend, &down, Duo::SECRET_KEY, "fail_open = true\n");
        assert!(gw.log().contains("duo.fail_open is set"), "start-up says so:\n{}", gw.log());
        let key = enrolled(&gw, "alice", None);
        let client = ssh(&gw, "alice", &key).answers(&[""]);
        let out = client.run(&[]);
        assert_in(&gw, &client, &out, &format!("{backend:?}: fail_open with Duo down"));
        let loud = gw.audit("login.duo.fail_open");
        assert!(
            loud.contains("alice")
                && loud.contains("Duo unreachable")
                && loud.contains("let through because fail_open is set"),
            "{loud}"
        );
        assert!(gw.log().contains("letting the login through because duo.fail_open is set"), "{}", gw.log());
    }
}

#[test]
fn enroll_names_the_duo_user_and_refuses_bad_input() {
    let gw = Gw::new(Backend::Sqlite);
    gw.add_user("alice", PASSWORD);
    let help = gw.cli_ok(&["factor", "duo", "enroll", "--help"]);
    assert!(help.contains("--duo-user"), "{help}");
    let err = gw.cli_err(&["factor", "duo", "enroll", "nobody"]);
    assert!(err.contains("nobody"), "{err}");
    let err = gw.cli_err(&["factor", "duo", "enroll", "alice", "--duo-user", " "]);
    assert!(err.contains("duo user"), "{err}");
    assert!(!gw.cli_ok(&["factor", "list", "alice"]).contains("duo"), "nothing was written");

    let out = gw.cli(&["factor", "duo", "enroll", "alice", "--duo-user", "alice.smith"]);
    gw.assert_success(&out, "enroll");
    assert!(common::stdout(&out).contains("Duo user alice.smith"), "{}", describe(&out));
    assert!(common::stderr(&out).contains("Duo is not configured"), "{}", describe(&out));
    assert!(gw.cli_ok(&["factor", "list", "alice"]).contains("Duo user alice.smith"));
    assert!(gw.audit("factor.enroll").contains("duo as alice.smith"));
    gw.cli_ok(&["factor", "remove", "alice", "duo"]);
    assert!(!gw.cli_ok(&["factor", "list", "alice"]).contains("duo"));
}

/// The stand-in itself refuses what Duo refuses, with Duo's own answers, and takes the
/// legacy HMAC-SHA1 signature as Duo does.
#[tokio::test]
async fn the_stand_in_checks_credentials_as_duo_does() {
    use base64::Engine;
    use hmac::{Hmac, KeyInit, Mac};

    let duo = Duo::start();
    let http = reqwest::Client::new();
    let url = format!("{}/auth/v2/check", duo.api_host());
    let host = format!("127.0.0.1:{}", duo.port);
    let date = gatehouse_core::time::format_rfc2822(gatehouse_core::time::now());
    let canonical = format!("{date}\nGET\n{host}\n/auth/v2/check\n");
    let signed = |key: &str| {
        let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(canonical.as_bytes());
        let token = format!("{}:{}", Duo::INTEGRATION_KEY, hex::encode(mac.finalize().into_bytes()));
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(token))
    };
    let get = |auth: Option<String>, date: &str| {
        let mut r = http.get(&url).header("Date", date);
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        r.send()
    };

    let r = get(None, &date).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], 40101);

    let r = get(Some(signed("some other key")), &date).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"stat": "FAIL", "code": 40103, "message": "Invalid signature in request credentials"})
    );

    let r = get(Some(signed(Duo::SECRET_KEY)), &date).await.unwrap();
    assert_eq!(r.status(), 200, "HMAC-SHA1 is accepted");
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["stat"], "OK");
    assert_eq!(duo.requests().last().map(|s| s.signature.clone()), Some(Ok("sha1")));

    // The same request with a stale date is refused.
    let stale = "Tue, 21 Aug 2012 17:29:18 -0000";
    let r = get(Some(signed(Duo::SECRET_KEY)), stale).await.unwrap();
    assert_eq!(r.status(), 401);
}
