//! "Approve in the browser": the real `ssh` client waits at the gate while headless
//! Chromium, with a virtual authenticator (the WebDriver WebAuthn extension), approves the
//! login on the page its link names, through the other node of a pair sharing one
//! database. The attacks: an answer made for another login, the same answer sent twice, a
//! link opened by another user, a page only looked at (GET): none releases a login.

mod common;
mod web_support;

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, ClientKey, Gw, Ssh, backends, describe};
use fantoccini::Client;
use web_support::chrome::{
    Driver, add_virtual_authenticator, body, browser, click, fill, login, start_driver, wait_path, wait_text,
};

const PASSWORD: &str = "correct horse battery";
const PROMPT: &str = "Press Enter once approved";

/// Two nodes of one installation whose `public_url` names `localhost` (WebAuthn refuses
/// an IP address), alice with a password and an SSH key on both.
fn pair(backend: Backend) -> (Gw, Gw, ClientKey) {
    let mut a = Gw::new(backend);
    a.set_public_host("localhost");
    a.start();
    let mut b = a.join();
    b.start();
    a.add_user("alice", PASSWORD);
    let key = a.add_key("alice");
    a.add_user("bob", PASSWORD);
    (a, b, key)
}

/// Registers a security key for the user logged in on `c`, at node `gw`.
async fn register_key(c: &Client, gw: &Gw, name: &str) {
    c.goto(&format!("{}/account/security-keys", gw.web_url())).await.expect("goto keys");
    fill(c, "#name", name).await;
    click(c, "form[action='/account/security-keys/begin'] button[type=submit]").await;
    wait_path(c, "/account/security-keys/begin").await;
    click(c, "#register-key").await;
    wait_path(c, "/account/security-keys").await;
    wait_text(c, "Your security key is registered").await;
}

/// A browser with a virtual authenticator, alice signed in on node `a` and her key "Blue
/// key" registered there.
async fn alice_with_a_key(driver: &Driver, a: &Gw) -> Client {
    let c = browser(driver).await;
    add_virtual_authenticator(&c).await;
    login(&c, a, "alice", PASSWORD).await;
    wait_path(&c, "/account").await;
    register_key(&c, a, "Blue key").await;
    c
}

/// An `ssh` login of alice to `gw` that answers the gate's prompt with Enter (wait for the
/// approval), its stderr in a file that the test reads while it waits.
struct Waiting {
    child: Child,
    stderr: std::path::PathBuf,
    _client: Ssh,
}

fn start_login(gw: &Gw, key: &ClientKey) -> Waiting {
    let client = Ssh::new(gw.ssh_port, "alice").identity(key).on_prompt(PROMPT, "").arg("-v");
    // `command` clears the client's dir first: the file is made after it.
    let mut command = client.command(&[]);
    let stderr = client.dir().join("stderr.log");
    let file = std::fs::File::create(&stderr).expect("creating the stderr file");
    let child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(file).spawn().expect("spawning ssh");
    Waiting { child, stderr, _client: client }
}

impl Waiting {
    /// The approval link and code the gate showed (up to 30 s).
    fn link_and_code(&self) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let link = regex::Regex::new(r"(https?://\S+/approve/[a-z0-9]+)").expect("regex");
        let code = regex::Regex::new(r"shows the code (\d{3} \d{3})").expect("regex");
        loop {
            let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            if let (Some(l), Some(c)) = (link.captures(&text), code.captures(&text)) {
                return (l[1].to_string(), c[1].to_string());
            }
            assert!(Instant::now() < deadline, "the gate showed no approval link:\n{text}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn finish(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        while self.child.try_wait().expect("waiting for ssh").is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut out = self.child.wait_with_output().expect("ssh output");
        out.stderr = std::fs::read(&self.stderr).unwrap_or_default();
        out
    }

    fn still_waiting(&mut self) -> bool {
        self.child.try_wait().expect("checking ssh").is_none()
    }
}

/// `link` (made by node `from`) through node `to`, as a load balancer would send it.
fn through(link: &str, from: &Gw, to: &Gw) -> String {
    link.replace(&from.web_url(), &to.web_url())
}

/// Touches the key on the approval page open in `c`, and waits for the page's verdict.
async fn approve(c: &Client) -> String {
    click(c, "#approve-key").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let page = body(c).await;
        if page.contains("Approved.") || page.contains("was refused") || page.contains("already went through") {
            return page;
        }
        assert!(Instant::now() < deadline, "the approval page never answered:\n{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Run on the approval page: its script asks the authenticator as usual, but `submit`
/// keeps the answer in `window.answers` instead of sending it.
const CAPTURE: &str = "window.send = HTMLFormElement.prototype.submit; window.answers = []; \
    HTMLFormElement.prototype.submit = function () { \
      window.answers.push([this.querySelector('input[name=ceremony]').value, \
                          this.querySelector('[data-webauthn-response]').value]); };";

/// Run on an approval page: sends the answer `arguments[0]` for the ceremony `arguments[1]`.
const SEND: &str = "const f = document.querySelector('form[data-webauthn]'); \
    f.querySelector('input[name=ceremony]').value = arguments[1]; \
    f.querySelector('[data-webauthn-response]').value = arguments[0]; \
    (window.send || HTMLFormElement.prototype.submit).call(f);";

/// Touches the key on the approval page open in `c` and returns (ceremony, answer), unsent.
async fn captured_answer(c: &Client) -> (String, String) {
    c.execute(CAPTURE, vec![]).await.expect("capturing");
    click(c, "#approve-key").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = c.execute("return window.answers.length ? window.answers[0] : null;", vec![]).await.expect("reading");
        if let Some(pair) = got.as_array() {
            let text = |i: usize| pair[i].as_str().unwrap_or_default().to_string();
            return (text(0), text(1));
        }
        assert!(Instant::now() < deadline, "the authenticator never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn send(c: &Client, ceremony: &str, answer: &str) -> String {
    c.execute(SEND, vec![serde_json::json!(answer), serde_json::json!(ceremony)]).await.expect("sending");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let page = body(c).await;
        if page.contains("was refused") || page.contains("Approved.") || page.contains("already went through") {
            return page;
        }
        assert!(Instant::now() < deadline, "no verdict on the sent answer:\n{page}");
    }
}

fn audited(gw: &Gw, kind: &str, text: &str) -> usize {
    gw.audit(kind).lines().filter(|l| l.contains(text)).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_touch_in_the_browser_on_the_other_node_releases_the_waiting_ssh_login() {
    let driver = start_driver();
    for backend in backends() {
        let (a, b, key) = pair(backend);
        let c = browser(&driver).await;
        add_virtual_authenticator(&c).await;
        // Alice registers her key on node B and stays signed in there.
        login(&c, &b, "alice", PASSWORD).await;
        wait_path(&c, "/account").await;
        register_key(&c, &b, "Blue key").await;

        // The gate on node A asks for the key first (her only factor) and waits.
        let mut waiting = start_login(&a, &key);
        let (link, code) = waiting.link_and_code();
        assert!(link.starts_with(&a.web_url()), "the link names the gateway's public URL: {link}");

        // Only looking at the page approves nothing.
        c.goto(&through(&link, &a, &b)).await.expect("goto approval");
        wait_text(&c, "Approve an SSH login").await;
        let page = body(&c).await;
        assert!(page.contains(&code), "the page shows the code the prompt showed ({code}):\n{page}");
        assert!(page.contains("127.0.0.1"), "the page shows the login's address:\n{page}");
        if backend == Backend::Sqlite {
            web_support::chrome::shot(&c, "approve-01-page").await;
        }
        std::thread::sleep(Duration::from_secs(2));
        assert!(waiting.still_waiting(), "a GET of the page released the login");

        let page = approve(&c).await;
        assert!(page.contains("Approved."), "{page}");
        if backend == Backend::Sqlite {
            web_support::chrome::shot(&c, "approve-02-approved").await;
        }
        let out = waiting.finish(Duration::from_secs(60));
        a.assert_logged_in(&out, "released by the key touched on the other node");
        assert_eq!(audited(&a, "webauthn.approval", "approved with key \"Blue key\""), 1, "{}", a.audit("webauthn"));
        assert!(a.audit("login.success").contains("webauthn"), "{}", a.audit("login.success"));
        c.close().await.ok();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_for_another_login_a_replayed_answer_and_another_users_link_release_nothing() {
    let driver = start_driver();
    let backend = backends().into_iter().last().expect("a backend");
    let (a, b, key) = pair(backend);
    let c = alice_with_a_key(&driver, &a).await;

    // Two logins wait; the answer the key gave on the first one's page is sent to the
    // second one's.
    let mut first = start_login(&a, &key);
    let (first_link, _) = first.link_and_code();
    let mut second = start_login(&a, &key);
    let (second_link, _) = second.link_and_code();
    assert_ne!(first_link, second_link);
    c.goto(&first_link).await.expect("goto first");
    wait_text(&c, "Approve an SSH login").await;
    let (ceremony, answer) = captured_answer(&c).await;
    c.goto(&through(&second_link, &a, &b)).await.expect("goto second");
    wait_text(&c, "Approve an SSH login").await;
    let page = send(&c, &ceremony, &answer).await;
    assert!(page.contains("was refused"), "an answer made for another login:\n{page}");
    assert!(audited(&a, "webauthn.refused", "begun for something else") >= 1, "{}", a.audit("webauthn"));
    std::thread::sleep(Duration::from_secs(2));
    assert!(first.still_waiting() && second.still_waiting(), "a login was released by another's answer");

    // That answer's ceremony is spent (a ceremony is used once, even by a refused
    // answer). A fresh touch on the first login's own page releases it; the same answer
    // sent again, to the other login, is refused.
    c.goto(&first_link).await.expect("goto first");
    wait_text(&c, "Approve an SSH login").await;
    let (ceremony, answer) = captured_answer(&c).await;
    let page = send(&c, &ceremony, &answer).await;
    assert!(page.contains("Approved."), "{page}");
    let out = first.finish(Duration::from_secs(60));
    a.assert_logged_in(&out, "the first login");
    c.goto(&first_link).await.expect("goto first");
    let page = body(&c).await;
    assert!(page.contains("already went through"), "{page}");
    c.goto(&second_link).await.expect("goto second");
    wait_text(&c, "Approve an SSH login").await;
    let page = send(&c, &ceremony, &answer).await;
    assert!(page.contains("was refused"), "a replayed answer:\n{page}");
    assert!(second.still_waiting(), "the replayed answer released the second login");

    // Bob, signed in on his own browser, cannot see or approve alice's login.
    let bobs_driver = start_driver();
    let bobs = browser(&bobs_driver).await;
    login(&bobs, &a, "bob", PASSWORD).await;
    wait_path(&bobs, "/account").await;
    bobs.goto(&second_link).await.expect("bob opens alice's link");
    let page = body(&bobs).await;
    assert!(page.contains("No SSH login of yours waits"), "{page}");
    assert!(!page.contains("Approve with my security key"), "{page}");

    // The second login is never approved: it ends without a login.
    drop(bobs);
    let _ = second.child.kill();
    let out = second.finish(Duration::from_secs(5));
    assert!(!common::ssh::authenticated(&out), "{}", describe(&out));
    assert_eq!(audited(&a, "webauthn.approval", "approved"), 1, "{}", a.audit("webauthn"));
    c.close().await.ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_locked_while_their_login_waits_is_never_let_in_by_an_approval() {
    let driver = start_driver();
    let backend = backends().into_iter().last().expect("a backend");
    let (a, b, key) = pair(backend);
    let c = alice_with_a_key(&driver, &a).await;

    // The key is touched on the approval page, and the answer held back; meanwhile an
    // administrator locks alice (on the other node).
    let mut waiting = start_login(&a, &key);
    let (link, _) = waiting.link_and_code();
    c.goto(&link).await.expect("goto approval");
    wait_text(&c, "Approve an SSH login").await;
    let (ceremony, answer) = captured_answer(&c).await;
    b.cli_ok(&["user", "lock", "alice"]);

    // The held-back answer arrives after the lock: it approves nothing.
    c.execute(SEND, vec![serde_json::json!(answer), serde_json::json!(ceremony)]).await.expect("sending");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let page = body(&c).await;
    assert!(!page.contains("Approved."), "a locked user's browser approved a login:\n{page}");
    assert_eq!(audited(&a, "webauthn.approval", "approved"), 0, "{}", a.audit("webauthn"));

    // An approval that reached the database just before the lock (the race the gate
    // cannot see coming) must not let the locked user in either.
    a.sql("UPDATE webauthn_approvals SET approved_at = expires_at - 10, approved_from = '127.0.0.1'");
    let deadline = Instant::now() + Duration::from_secs(20);
    while waiting.still_waiting() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = waiting.child.kill();
    let out = waiting.finish(Duration::from_secs(5));
    assert!(!common::ssh::authenticated(&out), "a locked user got in:\n{}", describe(&out));
    // (Her web login at the start of the test is the only one on record.)
    let ssh_logins =
        a.audit("login.success").lines().filter(|l| l.contains("user=alice") && l.contains("via ssh")).count();
    assert_eq!(ssh_logins, 0, "{}", a.audit("login.success"));
    assert!(a.audit("login.factor").contains("refused at the end"), "{}", a.audit("login.factor"));
    c.close().await.ok();
}
