//! What can be typed at the gate, pushed past what any person would type, with the
//! harness's message-level client (tests/common/wire.rs): an answer of 1 MB (more than a
//! packet may carry) and of 200 kB (less), ten thousand responses in one message, empty
//! answers without end, answers with NUL bytes, terminal escapes and bytes that are not
//! UTF-8; and one TOTP code raced on two nodes of one database. Each is refused without a
//! crash, in bounded time and memory, and the next real login passes.

mod common;

use std::time::{Duration, Instant};

use common::raw::{RawClient, Step};
use common::wire::{Auth, Wire};
use common::{Backend, Gw, TotpDevice, backends, totp_now};

const PASSWORD: &str = "correct horse battery";

/// Generous lockout thresholds: these tests are about each answer, not about the lock.
const NO_LOCK: &str = "[lockout]\nuser_threshold = 100\nsource_threshold = 1000\n";

/// A gateway with alice (password, TOTP); her authenticator hands out each code once.
fn gateway(backend: Backend) -> (Gw, TotpDevice) {
    let mut gw = Gw::with_config(backend, NO_LOCK);
    gw.start();
    gw.add_user("alice", PASSWORD);
    let device = TotpDevice::new(&gw.enroll_totp("alice"));
    (gw, device)
}

/// Gives alice an access keyword as a second method.
fn add_keyword(gw: &Gw) {
    let out = gw.cli_stdin(&["factor", "keyword", "alice", "--stdin"], "purple elephant\n");
    gw.assert_success(&out, "factor keyword");
}

/// A 6-digit code that is certainly not valid now for `secret`.
fn wrong_code(secret: &str) -> String {
    format!("{:06}", (totp_now(secret).parse::<u32>().expect("a numeric code") + 500_000) % 1_000_000)
}

/// A connection at the gate's code prompt.
async fn at_the_gate(gw: &Gw) -> Wire {
    let mut wire = Wire::connect(gw.ssh_port).await;
    let reply = wire.password(b"alice", PASSWORD.as_bytes()).await;
    assert_eq!(reply, Auth::Failure { methods: "keyboard-interactive".into(), partial: true }, "{}", gw.log());
    let prompt = wire.kbd_start(b"alice").await;
    assert!(matches!(&prompt, Auth::Info { prompts, .. } if prompts.len() == 1), "{prompt:?}");
    wire
}

/// A connection at the keyboard-interactive password prompt.
async fn at_the_password_prompt(gw: &Gw) -> Wire {
    let mut wire = Wire::connect(gw.ssh_port).await;
    let prompt = wire.kbd_start(b"alice").await;
    assert!(matches!(&prompt, Auth::Info { prompts, .. } if prompts.iter().any(|p| p.contains("Password"))));
    wire
}

/// The whole login, as a person would do it: it must pass.
async fn real_login_passes(gw: &Gw, device: &mut TotpDevice, what: &str) {
    let mut c = RawClient::connect(gw.ssh_port, "alice").await;
    let step = c.reach_gate(PASSWORD).await;
    assert!(step.prompt().is_some(), "{what}: {step:?}");
    assert_eq!(c.kbd_answer(&[&device.code()]).await, Step::Success, "{what}: the real login\n{}", gw.log());
}

/// The resident memory of `serve`, in kB.
fn resident_kb(gw: &Gw) -> u64 {
    let pid = gw.pid().expect("serve runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Whether `reply` let the client further than where it stood.
fn passed(reply: &Auth) -> bool {
    matches!(reply, Auth::Success | Auth::Failure { partial: true, .. })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_megabyte_answer_is_refused_and_the_next_login_passes() {
    let (mut gw, mut device) = gateway(Backend::Sqlite);
    real_login_passes(&gw, &mut device, "before").await;

    // 1 MB does not fit in a packet: the connection ends, at either prompt.
    let huge = vec![b'7'; 1024 * 1024];
    let mut wire = at_the_password_prompt(&gw).await;
    let reply = wire.kbd_answer(&[&huge]).await;
    assert!(!passed(&reply), "a 1 MB password: {reply:?}");
    let mut wire = at_the_gate(&gw).await;
    let reply = wire.kbd_answer(&[&huge]).await;
    assert!(!passed(&reply), "a 1 MB code: {reply:?}");

    // 200 kB fits: checked like any wrong answer, quickly, again and again. Memory is
    // measured after a few rounds, once the password hashing's own buffers are in place.
    let big: Vec<u8> = b"Z9".iter().copied().cycle().take(200 * 1024).collect();
    let mut before = 0;
    for round in 0..13 {
        if round == 3 {
            before = resident_kb(&gw);
        }
        let started = Instant::now();
        let mut wire = at_the_password_prompt(&gw).await;
        let reply = wire.kbd_answer(&[&big]).await;
        assert!(!passed(&reply), "round {round}: a 200 kB password: {reply:?}");
        let mut wire = at_the_gate(&gw).await;
        let reply = wire.kbd_answer(&[&big]).await;
        assert!(matches!(&reply, Auth::Info { .. } | Auth::Failure { partial: false, .. }), "round {round}: {reply:?}");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(15), "round {round}: two 200 kB answers took {took:?}");
    }
    let after = resident_kb(&gw);
    println!("resident memory of serve: {before} kB before, {after} kB after the large answers");
    assert!(after < before + 32 * 1024, "serve grew from {before} kB to {after} kB in ten rounds");

    // Neither the log nor the audit log keeps what was typed.
    let typed = "Z9".repeat(32);
    assert!(!gw.log().contains(&typed), "the answer is in the gateway's log");
    assert!(!gw.cli_ok(&["audit", "--limit", "500"]).contains(&typed), "the answer is in the audit log");
    assert!(gw.is_running() && !gw.log().contains("panicked"), "{}", gw.log());
    real_login_passes(&gw, &mut device, "after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_responses_in_one_message_are_one_guess() {
    for backend in backends() {
        let (mut gw, mut device) = gateway(backend);
        let secret = device.secret().to_string();
        // At the code prompt: wrong codes, and the right one hidden among them (not first).
        let wrong = wrong_code(&secret);
        let right = totp_now(&secret);
        let mut answers: Vec<Vec<u8>> = (0..10_000)
            .map(|i| format!("{:06}", (i * 7919) % 1_000_000))
            .map(|c| if c == right { wrong.clone() } else { c }.into_bytes())
            .collect();
        answers[0] = wrong.clone().into_bytes();
        answers[1] = right.clone().into_bytes();
        answers[9_999] = right.clone().into_bytes();
        let refs: Vec<&[u8]> = answers.iter().map(Vec::as_slice).collect();
        let mut wire = at_the_gate(&gw).await;
        let started = Instant::now();
        let reply = wire.kbd_answer(&refs).await;
        assert!(!passed(&reply), "{backend:?}: the right code among 10,000 responses: {reply:?}\n{}", gw.log());
        assert!(started.elapsed() < Duration::from_secs(15), "{backend:?}: {:?}", started.elapsed());
        let factor = gw.cli_ok(&["audit", "--user", "alice", "--event", "login.factor", "--limit", "500"]);
        let checked = factor.lines().filter(|l| l.contains("failure")).count();
        assert_eq!(checked, 1, "{backend:?}: one message, one guess:\n{factor}");

        // At the password prompt: wrong passwords and the right one second.
        let mut passwords: Vec<Vec<u8>> = (0..10_000).map(|i| format!("guess {i}").into_bytes()).collect();
        passwords[1] = PASSWORD.as_bytes().to_vec();
        let refs: Vec<&[u8]> = passwords.iter().map(Vec::as_slice).collect();
        let mut wire = at_the_password_prompt(&gw).await;
        let reply = wire.kbd_answer(&refs).await;
        assert!(!passed(&reply), "{backend:?}: the right password among 10,000 responses: {reply:?}");
        let password = gw.cli_ok(&["audit", "--user", "alice", "--event", "login.password", "--limit", "500"]);
        let checked = password.lines().filter(|l| l.contains("failure")).count();
        assert_eq!(checked, 1, "{backend:?}: one message, one guess:\n{password}");

        assert!(gw.is_running() && !gw.log().contains("panicked"), "{}", gw.log());
        real_login_passes(&gw, &mut device, &format!("{backend:?}")).await;
        gw.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_answers_cannot_hold_the_gate_open() {
    let (gw, mut device) = gateway(Backend::Sqlite);
    // A second method, so that an empty answer also switches to the method list and back.
    add_keyword(&gw);
    for (what, answers) in [
        ("one empty answer", vec![b"".as_slice()]),
        ("no answer at all", vec![]),
        ("a thousand empty answers", vec![b"".as_slice(); 1000]),
        ("blanks", vec![b"   \t ".as_slice()]),
    ] {
        let mut wire = at_the_gate(&gw).await;
        let started = Instant::now();
        let mut rounds = 0;
        let end = loop {
            let reply = wire.kbd_answer(&answers).await;
            match reply {
                Auth::Info { .. } if rounds < 100 => rounds += 1,
                other => break other,
            }
        };
        println!("{what}: the gate gave up after {rounds} rounds ({:?}): {end:?}", started.elapsed());
        assert!(!passed(&end), "{what}: {end:?}");
        assert!(rounds <= 21, "{what}: the gate went on for {rounds} rounds");
        assert!(started.elapsed() < Duration::from_secs(60), "{what}: {:?}", started.elapsed());
    }
    // Nothing was guessed: no failure counted, no lock, and alice logs in at once.
    let factor = gw.cli_ok(&["audit", "--user", "alice", "--event", "login.factor", "--limit", "500"]);
    assert!(!factor.contains("failure"), "an empty answer was checked as a guess:\n{factor}");
    real_login_passes(&gw, &mut device, "after the empty answers").await;
}

/// The characters that must never come back to a terminal as they are.
fn harmful(text: &str) -> bool {
    text.chars().any(|c| (c.is_control() && c != '\n' && c != '\t') || ('\u{202a}'..='\u{202e}').contains(&c))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_bytes_escapes_and_broken_utf8_in_answers_are_refused_harmlessly() {
    let (mut gw, mut device) = gateway(Backend::Sqlite);
    add_keyword(&gw);
    let wrong = wrong_code(device.secret());
    let hostile: Vec<Vec<u8>> = vec![
        b"\0".to_vec(),
        format!("{}\0", &wrong[..3]).into_bytes(),
        format!("\0{wrong}").into_bytes(),
        format!("{}\0{}", &wrong[..3], &wrong[3..]).into_bytes(),
        b"\x1b]0;PWNED\x07".to_vec(),
        b"\x1b[2J\x1b[H".to_vec(),
        "\u{202e}654321".as_bytes().to_vec(),
        b"\xff\xfe\xfd".to_vec(),
        b"12\xc3".to_vec(),
        b"purple elephant\0".to_vec(),
    ];
    for answer in &hostile {
        let shown = String::from_utf8_lossy(answer).into_owned();
        // As a code...
        let mut wire = at_the_gate(&gw).await;
        let reply = wire.kbd_answer(&[answer]).await;
        assert!(!passed(&reply), "{shown:?} as a code: {reply:?}");
        if let Auth::Info { instruction, prompts } = &reply {
            assert!(!harmful(instruction) && !prompts.iter().any(|p| harmful(p)), "{shown:?} echoed: {reply:?}");
        }
        // ...and where the gate echoes what was typed: the method list.
        let mut wire = at_the_gate(&gw).await;
        let list = wire.kbd_answer(&[b"?"]).await;
        assert!(matches!(&list, Auth::Info { instruction, .. } if instruction.contains("methods")), "{list:?}");
        let reply = wire.kbd_answer(&[answer]).await;
        match &reply {
            Auth::Info { instruction, prompts } => {
                assert!(!harmful(instruction) && !prompts.iter().any(|p| harmful(p)), "{shown:?} echoed: {reply:?}");
            }
            other => assert!(!passed(other), "{shown:?} as a method: {other:?}"),
        }
    }
    assert!(gw.is_running() && !gw.log().contains("panicked"), "{}", gw.log());
    let audit = gw.cli(&["audit", "--limit", "500"]);
    assert!(
        !audit.stdout.contains(&0x1b) && !audit.stdout.contains(&0x07) && !audit.stdout.contains(&0),
        "raw bytes in the audit"
    );
    assert!(gw.audit("login.success").trim().is_empty(), "{}", gw.audit("login.success"));
    real_login_passes(&gw, &mut device, "after the hostile answers").await;
}

/// Two nodes on one database, a login waiting at the gate on each, the same code sent to
/// both at the same moment: one gets in, the other is told the code was used. Five users,
/// five races, on each backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_totp_code_raced_on_two_nodes_lets_exactly_one_login_in() {
    for backend in backends() {
        let mut a = Gw::with_config(backend, NO_LOCK);
        a.start();
        let mut b = a.join();
        b.start();
        let users: Vec<(String, String)> = (0..5)
            .map(|i| {
                let name = format!("racer{i}");
                a.add_user(&name, PASSWORD);
                let secret = a.enroll_totp(&name);
                (name, secret)
            })
            .collect();
        for (name, secret) in &users {
            let mut on_a = RawClient::connect(a.ssh_port, name).await;
            let mut on_b = RawClient::connect(b.ssh_port, name).await;
            assert!(on_a.reach_gate(PASSWORD).await.prompt().is_some());
            assert!(on_b.reach_gate(PASSWORD).await.prompt().is_some());
            let code = totp_now(secret);
            let answer = [code.as_str()];
            let (x, y) = tokio::join!(on_a.kbd_answer(&answer), on_b.kbd_answer(&answer));
            let winners = [&x, &y].iter().filter(|s| ***s == Step::Success).count();
            assert_eq!(winners, 1, "{backend:?} {name}: node A {x:?}, node B {y:?}\n{}\n{}", a.log(), b.log());
            let loser = if x == Step::Success { &y } else { &x };
            assert!(
                matches!(loser, Step::Info { instructions, .. } if instructions.contains("already used")),
                "{backend:?} {name}: the other node says why: {loser:?}"
            );
        }
        let successes = a.audit("login.success");
        assert_eq!(successes.lines().count(), users.len(), "{backend:?}: one login per code:\n{successes}");
        a.stop();
        b.stop();
    }
}
