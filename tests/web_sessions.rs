//! Recordings and live sessions in the web UI, with a real terminal session through the
//! gateway to a real sshd: the administrator sees the live session and terminates it, the
//! recording is listed, its asciicast file is served, and the in-browser player (headless
//! Chromium) replays what was typed.

mod common;
mod shell_support;
mod web_support;

use std::time::{Duration, Instant};

use common::{Ssh, describe};
use reqwest::StatusCode;
use shell_support::{MUST, bastion};
use web_support::chrome::{browser, click, fill, shot, start_driver, wait_path};
use web_support::{ADMIN_PASSWORD, admin_browser, audit};

#[tokio::test]
async fn admin_terminates_a_live_session_and_replays_its_recording() {
    let b = bastion();
    b.add_granted("web1");
    let admin = admin_browser(&b.gw).await;

    // alice opens a terminal on web1, prints a marker, then waits on the target.
    let client = Ssh::new(b.gw.ssh_port, "alice").identity(&b.key).arg("-t");
    let body = format!(
        r#"{MUST}
send "echo marker-\$((6*7))\r"
must "marker-42"
send "sleep 300\r"
set timeout 120
expect eof
"#
    );
    let started = Instant::now();
    let session = std::thread::spawn(move || client.interact(&["web1"], &body));

    // The administrator sees it live...
    let deadline = Instant::now() + Duration::from_secs(60);
    let live = loop {
        let page = admin.get("/admin/live").await;
        if page.body.contains("web1") && page.body.contains("Terminate") {
            break page;
        }
        assert!(Instant::now() < deadline, "the session never showed up:\n{}\n{}", page.body, b.gw.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    live.assert_contains("alice", "user").assert_contains("active", "status");
    let id = regex::Regex::new(r#"action="/admin/live/(\d+)/terminate""#)
        .expect("regex")
        .captures(&live.body)
        .map(|c| c[1].to_string())
        .expect("a terminate form");

    // ...and ends it.
    admin
        .post(&format!("/admin/live/{id}/terminate"), &[("csrf", &live.csrf())])
        .await
        .assert_redirect("/admin/live?ok=terminate", "terminate");
    let out = tokio::task::spawn_blocking(move || session.join()).await.expect("join").expect("the ssh thread");
    assert!(started.elapsed() < Duration::from_secs(200), "the session did not end when asked:\n{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("marker-42"), "{}", describe(&out));
    assert!(audit(&b.gw, "session.terminate").contains(&format!("live session {id}")));

    // The recording is listed, served as asciicast v2, and plays in the browser.
    let list = admin.get("/admin/recordings").await;
    list.assert_status(StatusCode::OK, "list").assert_contains("web1", "target").assert_contains("alice", "user");
    let rec = regex::Regex::new(r#"href="/admin/recordings/(\d+)""#)
        .expect("regex")
        .captures(&list.body)
        .map(|c| c[1].to_string())
        .expect("a recording link");
    let cast = admin.get(&format!("/admin/recordings/{rec}/cast")).await;
    cast.assert_status(StatusCode::OK, "cast");
    let header: serde_json::Value =
        serde_json::from_str(cast.body.lines().next().unwrap_or("")).expect("a JSON header line");
    assert_eq!(header["version"], 2, "{header}");
    assert!(cast.body.contains("marker-42"), "the file holds the session");
    // The finished recording is stored gzipped (compressed after the session's end was
    // reported): a client that accepts gzip gets it as it is.
    let files = b.compressed_recording_files(1);
    assert!(b.sql("SELECT path FROM recordings").trim().ends_with(".cast.gz"), "{files:?}");
    let gz = admin
        .client
        .get(format!("{}/admin/recordings/{rec}/cast", b.gw.web_url()))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("GET the cast with gzip");
    assert_eq!(gz.headers().get("content-encoding").and_then(|v| v.to_str().ok()), Some("gzip"));
    let bytes = gz.bytes().await.expect("the body");
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "a gzip stream");

    let driver = start_driver();
    let c = browser(&driver).await;
    c.goto(&format!("{}/login", b.gw.web_url())).await.expect("goto");
    fill(&c, "#username", "admin").await;
    fill(&c, "#password", ADMIN_PASSWORD).await;
    click(&c, "form[action='/login'] button[type=submit]").await;
    wait_path(&c, "/account").await;
    c.goto(&format!("{}/admin/recordings", b.gw.web_url())).await.expect("goto recordings");
    shot(&c, "20-recordings").await;
    c.goto(&format!("{}/admin/recordings/{rec}", b.gw.web_url())).await.expect("goto player");
    click(&c, "#speed option[value='16']").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let term = c.find(fantoccini::Locator::Css("#term")).await.expect("the player");
        let text = term.text().await.unwrap_or_default();
        if text.contains("marker-42") {
            break;
        }
        assert!(Instant::now() < deadline, "the player never showed the marker; it shows:\n{text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    shot(&c, "21-player").await;
    c.close().await.expect("closing the browser");
}
