//! RADIUS as the primary credential, against a real FreeRADIUS and the real OpenSSH client:
//! a user whose store is `radius` logs in with the password the RADIUS server accepts
//! (Gatehouse stores none); an Access-Challenge becomes the next prompt, over SSH and on
//! the web; a wrong answer is a failure like any; a server that does not answer refuses the
//! login with a clear message and locks nobody out.

mod common;
mod web_support;

use common::radius::free_udp_port;
use common::{Backend, Gw, Radius, Ssh, TotpDevice, backends, describe, stderr};
use reqwest::StatusCode;
use web_support::{Browser, field_value};

fn gateway(backend: Backend, servers: &[String]) -> Gw {
    let list: Vec<String> = servers.iter().map(|s| format!("\"{s}\"")).collect();
    let mut gw = Gw::with_config(
        backend,
        &format!("[radius]\nservers = [{}]\ntimeout_secs = 1\nretries = 1\nprimary = true\n", list.join(", ")),
    );
    gw.set_env("GATEHOUSE_RADIUS__SECRET", Radius::SECRET);
    gw.start();
    gw
}

fn radius_user(gw: &Gw, name: &str) {
    gw.cli_ok(&["user", "add", name]);
    gw.cli_ok(&["user", "store", name, "radius"]);
}

fn by_password(gw: &Gw, user: &str) -> Ssh {
    Ssh::new(gw.ssh_port, user).arg("-v").stdin("").preferred("keyboard-interactive")
}

#[test]
fn the_radius_server_checks_the_password_and_its_challenge_is_the_next_prompt() {
    let radius = Radius::start();
    for backend in backends() {
        let gw = gateway(backend, &[radius.address()]);
        radius_user(&gw, "radalice");
        radius_user(&gw, "carol");
        assert!(gw.cli_ok(&["user", "show", "carol"]).contains("store:        RADIUS"));

        // Access-Accept: in, and the password was never stored here.
        let out = by_password(&gw, "radalice").on_prompt("Password", Radius::ALICE_PASSWORD).run(&[]);
        gw.assert_logged_in(&out, &format!("{backend:?}: RADIUS password"));
        assert!(gw.audit("login.password").contains("RADIUS password via ssh"), "{}", gw.audit("login.password"));
        assert_eq!(gw.sql("SELECT COALESCE(password_hash, 'none') FROM users WHERE name = 'radalice'").trim(), "none");

        // Access-Challenge: the Reply-Message is the next prompt, in the same exchange.
        let client = by_password(&gw, "carol")
            .on_prompt("Password", Radius::CAROL_FIRST)
            .on_prompt(Radius::CAROL_QUESTION, Radius::CAROL_PIN);
        gw.assert_logged_in(&client.run(&[]), "password, then the RADIUS question");
        let prompts = client.prompts_seen();
        let pw = prompts.iter().position(|p| p.contains("Password")).expect("asked for the password");
        let q = prompts.iter().position(|p| p.contains(Radius::CAROL_QUESTION)).expect("asked the question");
        assert!(pw < q, "{prompts:?}");

        // The `password` method too: the question follows at keyboard-interactive.
        let client = Ssh::new(gw.ssh_port, "carol")
            .arg("-v")
            .stdin("")
            .preferred("password,keyboard-interactive")
            .password(Radius::CAROL_FIRST)
            .on_prompt(Radius::CAROL_QUESTION, Radius::CAROL_PIN);
        gw.assert_logged_in(&client.run(&[]), "password method, then the question");

        // Wrong answers are failures that count.
        let out = by_password(&gw, "carol")
            .on_prompt("Password", Radius::CAROL_FIRST)
            .on_prompt(Radius::CAROL_QUESTION, "0000")
            .run(&[]);
        gw.assert_refused(&out, "wrong answer to the question");
        let out = by_password(&gw, "radalice").on_prompt("Password", "not it").run(&[]);
        gw.assert_refused(&out, "wrong RADIUS password");
        let audit = gw.audit("login.password");
        assert!(audit.contains("wrong answer to the RADIUS question"), "{audit}");
        assert!(audit.contains("wrong password or application passcode"), "{audit}");

        // A second factor still follows the RADIUS password when one is enrolled.
        let mut device = TotpDevice::new(&gw.enroll_totp("radalice"));
        let client = by_password(&gw, "radalice")
            .on_prompt("Password", Radius::ALICE_PASSWORD)
            .on_prompt("Authenticator code", &device.code());
        gw.assert_logged_in(&client.run(&[]), "RADIUS password + TOTP");
        assert!(client.prompts_seen().iter().any(|p| p.contains("Authenticator code")));
    }
    // The passwords went to FreeRADIUS as User-Password for the Gatehouse name.
    assert!(radius.log().contains("User-Name = \"carol\""), "{}", radius.log());
}

#[test]
fn a_radius_server_that_does_not_answer_fails_closed_without_locking_anyone_out() {
    let dead = format!("127.0.0.1:{}", free_udp_port());
    let gw = gateway(Backend::Sqlite, &[dead]);
    radius_user(&gw, "radalice");
    gw.add_user("local", "a local password 1");
    for _ in 0..6 {
        let out = by_password(&gw, "radalice").on_prompt("Password", Radius::ALICE_PASSWORD).run(&[]);
        gw.assert_refused(&out, "no RADIUS server answers");
        assert!(stderr(&out).contains("cannot be reached"), "a clear message:\n{}", describe(&out));
    }
    assert!(gw.audit("login.password").contains("RADIUS unavailable"), "{}", gw.audit("login.password"));
    let show = gw.cli_ok(&["user", "show", "radalice"]);
    assert!(!show.contains("locked out"), "an outage is not the user's failure: {show}");
    let out = by_password(&gw, "local").on_prompt("Password", "a local password 1").run(&[]);
    gw.assert_logged_in(&out, "a local user during the RADIUS outage");
}

#[test]
fn the_store_is_an_administrators_choice_and_needs_radius_primary() {
    let radius = Radius::start();
    // Without radius.primary, no user can be moved to RADIUS.
    let mut gw = Gw::with_config(Backend::Sqlite, &format!("[radius]\nservers = [\"{}\"]\n", radius.address()));
    gw.set_env("GATEHOUSE_RADIUS__SECRET", Radius::SECRET);
    gw.start();
    gw.add_user("radalice", "a local password 1");
    let e = gw.cli_refused(&["user", "store", "radalice", "radius"], None);
    assert!(e.contains("radius.primary"), "{e}");
    let e = gw.cli_refused(&["user", "store", "radalice", "ldap"], None);
    assert!(e.contains("expected local or radius"), "{e}");

    // With it: moved, audited, the local password dropped (it no longer opens anything).
    let gw = gateway(Backend::Sqlite, &[radius.address()]);
    gw.add_user("radalice", "a local password 1");
    gw.cli_ok(&["user", "store", "radalice", "radius"]);
    assert!(gw.audit("user.store").contains("RADIUS"), "{}", gw.audit("user"));
    let out = by_password(&gw, "radalice").on_prompt("Password", "a local password 1").run(&[]);
    gw.assert_refused(&out, "the old local password after the move");
    // And back: no password at all until an administrator sets one.
    gw.cli_ok(&["user", "store", "radalice", "local"]);
    let out = by_password(&gw, "radalice").on_prompt("Password", Radius::ALICE_PASSWORD).run(&[]);
    gw.assert_refused(&out, "the RADIUS password after moving back");
}

#[tokio::test]
async fn on_the_web_the_radius_question_is_a_second_form() {
    let radius = Radius::start();
    let gw = gateway(Backend::Sqlite, &[radius.address()]);
    radius_user(&gw, "carol");
    let b = Browser::new(&gw);

    let page = b.password_step("carol", Radius::CAROL_FIRST).await;
    page.assert_status(StatusCode::OK, "the question").assert_contains(Radius::CAROL_QUESTION, "the Reply-Message");
    let state = field_value(&page.body, "state").expect("the State travels in the form");
    assert_eq!(state, "676174652d73746570", "the server's State, hex");
    // A forged State is the RADIUS server's to refuse: a wrong answer, back to the login.
    let bad =
        b.post("/login/question", &[("csrf", &page.csrf()), ("state", "00ff"), ("code", Radius::CAROL_PIN)]).await;
    bad.assert_status(StatusCode::UNAUTHORIZED, "a forged state").assert_contains("Wrong user name or password", "");
    // The right answer with the server's State: logged in.
    let page = b.password_step("carol", Radius::CAROL_FIRST).await;
    let state = field_value(&page.body, "state").expect("state");
    let done =
        b.post("/login/question", &[("csrf", &page.csrf()), ("state", &state), ("code", Radius::CAROL_PIN)]).await;
    done.assert_redirect("/account", "the answer completes the password step");
    b.get("/account").await.assert_status(StatusCode::OK, "logged in");
    assert!(gw.audit("login.password").contains("RADIUS password via web"), "{}", gw.audit("login.password"));
}
