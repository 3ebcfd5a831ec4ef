//! The RADIUS second factor through the SSH gate, with the real OpenSSH client and a real
//! FreeRADIUS: Access-Accept lets the user in, Access-Reject does not, an Access-Challenge
//! shows the server's Reply-Message as the next prompt, the RADIUS user name may differ
//! from the Gatehouse one, and a server that does not answer refuses the login.

mod common;

use std::process::Output;

use common::radius::free_udp_port;
use common::{Backend, ClientKey, Gw, Radius, Ssh, backends, describe, stderr};

const PASSWORD: &str = "correct horse battery";

/// A started gateway whose `[radius]` table lists `servers`, with `user` (an enrolled key)
/// enrolled for RADIUS as `radius_user`.
fn gateway(backend: Backend, servers: &[String], user: &str, radius_user: Option<&str>) -> (Gw, ClientKey) {
    let list: Vec<String> = servers.iter().map(|s| format!("\"{s}\"")).collect();
    let mut gw = Gw::with_config(
        backend,
        &format!(
            "[radius]\nservers = [{}]\ntimeout_secs = 1\nretries = 1\nnas_identifier = \"gatehouse-test\"\n",
            list.join(", ")
        ),
    );
    // The secret comes from the environment, as the README advises.
    gw.set_env("GATEHOUSE_RADIUS__SECRET", Radius::SECRET);
    gw.start();
    gw.add_user(user, PASSWORD);
    let key = gw.add_key(user);
    let mut enroll = vec!["factor", "radius", "enroll", user];
    if let Some(name) = radius_user {
        enroll.extend(["--radius-user", name]);
    }
    gw.cli_ok(&enroll);
    (gw, key)
}

fn assert_in(gw: &Gw, radius: Option<&Radius>, out: &Output, what: &str) {
    assert!(
        common::ssh::authenticated(out),
        "{what}: expected to get in\n{}\n--- gateway log ---\n{}\n--- radius log ---\n{}",
        describe(out),
        gw.log(),
        radius.map(Radius::log).unwrap_or_default()
    );
}

fn ssh(gw: &Gw, user: &str, key: &ClientKey) -> Ssh {
    Ssh::new(gw.ssh_port, user).arg("-v").stdin("").identity(key)
}

#[test]
fn accepted_answer_gets_in_and_a_wrong_one_does_not() {
    let radius = Radius::start();
    for backend in backends() {
        let (gw, key) = gateway(backend, &[radius.address()], "radalice", None);
        let client = ssh(&gw, "radalice", &key).on_prompt("RADIUS", Radius::ALICE_PASSWORD);
        assert_in(&gw, Some(&radius), &client.run(&[]), &format!("{backend:?}: right RADIUS password"));
        assert!(client.prompts_seen().iter().any(|p| p.contains("RADIUS")), "{:?}", client.prompts_seen());

        let wrong = ssh(&gw, "radalice", &key).answers(&["nope", "nope again", "still no"]);
        let out = wrong.run(&[]);
        gw.assert_refused(&out, "wrong RADIUS password");
        assert!(stderr(&out).contains("not right"), "{}", describe(&out));
        let audit = gw.cli_ok(&["audit", "--event", "login.factor"]);
        assert!(audit.contains("radius: wrong answer"), "{audit}");
        assert!(audit.contains("radius via ssh"), "the accepted answer is audited: {audit}");
    }
    // Nothing the user typed, nor the secret, reaches the gateway's log.
    let (gw, key) = gateway(Backend::Sqlite, &[radius.address()], "radalice", None);
    ssh(&gw, "radalice", &key).on_prompt("RADIUS", Radius::ALICE_PASSWORD).run(&[]);
    let log = gw.log();
    assert!(!log.contains(Radius::ALICE_PASSWORD) && !log.contains(Radius::SECRET), "{log}");
}

#[test]
fn access_challenge_shows_the_reply_message_and_takes_a_second_answer() {
    let radius = Radius::start();
    let (gw, key) = gateway(Backend::Sqlite, &[radius.address()], "carol", None);
    let client = ssh(&gw, "carol", &key)
        .on_prompt("RADIUS", Radius::CAROL_FIRST)
        .on_prompt(Radius::CAROL_QUESTION, Radius::CAROL_PIN);
    let out = client.run(&[]);
    assert_in(&gw, Some(&radius), &out, "challenge round trip");
    let prompts = client.prompts_seen();
    let first = prompts.iter().position(|p| p.contains("RADIUS")).expect("asked for the RADIUS answer");
    let second =
        prompts.iter().position(|p| p.contains(Radius::CAROL_QUESTION)).expect("the Reply-Message is the next prompt");
    assert!(first < second, "{prompts:?}");
    // The State went back: FreeRADIUS only accepts the PIN with it.
    assert!(radius.log().contains("State = 0x676174652d73746570"), "{}", radius.log());

    // A wrong PIN after the challenge is a wrong answer, and the next try starts afresh.
    let again = ssh(&gw, "carol", &key)
        .on_prompt("RADIUS", Radius::CAROL_FIRST)
        .on_prompt("RADIUS", Radius::CAROL_FIRST)
        .on_prompt(Radius::CAROL_QUESTION, "0000")
        .on_prompt(Radius::CAROL_QUESTION, Radius::CAROL_PIN);
    let out = again.run(&[]);
    assert_in(&gw, Some(&radius), &out, "wrong PIN, then the whole exchange again");
    assert!(stderr(&out).contains("not right"), "{}", describe(&out));
    assert_eq!(again.prompts_seen().iter().filter(|p| p.contains("RADIUS")).count(), 2, "{:?}", again.prompts_seen());
}

#[test]
fn the_radius_user_name_may_differ_and_servers_are_tried_in_order() {
    let radius = Radius::start();
    // The first server does not answer; the second does.
    let dead = format!("127.0.0.1:{}", free_udp_port());
    let (gw, key) = gateway(Backend::Sqlite, &[dead, radius.address()], "alice", Some("radalice"));
    let list = gw.cli_ok(&["factor", "list", "alice"]);
    assert!(list.contains("radius") && list.contains("RADIUS user radalice"), "{list}");

    let client = ssh(&gw, "alice", &key).on_prompt("RADIUS", Radius::ALICE_PASSWORD);
    assert_in(&gw, Some(&radius), &client.run(&[]), "alice as radalice");
    assert!(radius.log().contains("User-Name = \"radalice\""), "{}", radius.log());
    assert!(radius.log().contains("NAS-Identifier = \"gatehouse-test\""), "{}", radius.log());

    gw.cli_ok(&["factor", "remove", "alice", "radius"]);
    let list = gw.cli_ok(&["factor", "list", "alice"]);
    assert!(!list.contains("radius"), "{list}");
}

#[test]
fn no_server_answering_refuses_the_login() {
    let dead = [format!("127.0.0.1:{}", free_udp_port()), format!("127.0.0.1:{}", free_udp_port())];
    let (gw, key) = gateway(Backend::Sqlite, &dead, "radalice", None);
    let client =
        ssh(&gw, "radalice", &key).answers(&[Radius::ALICE_PASSWORD, Radius::ALICE_PASSWORD, Radius::ALICE_PASSWORD]);
    let out = client.run(&[]);
    gw.assert_refused(&out, "RADIUS servers down");
    assert!(stderr(&out).contains("did not answer"), "the user is told why:\n{}", describe(&out));
    let audit = gw.cli_ok(&["audit", "--event", "login.factor"]);
    assert!(audit.contains("radius: server unavailable"), "{audit}");
    assert!(!audit.contains("login.success"), "{audit}");
}

#[test]
fn enroll_needs_a_known_user_and_has_help() {
    let gw = Gw::new(Backend::Sqlite);
    let help = gw.cli_ok(&["factor", "radius", "enroll", "--help"]);
    assert!(help.contains("--radius-user"), "{help}");
    let err = gw.cli_err(&["factor", "radius", "enroll", "nobody"]);
    assert!(err.contains("nobody"), "{err}");
}
