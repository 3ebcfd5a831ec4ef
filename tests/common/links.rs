//! The links of a login mail, followed as a mail reader's browser would: no cookie.

/// Opens a link from a mail (`GET`), as a mail client's browser would, with no cookie.
pub async fn open_link(url: &str) -> (reqwest::StatusCode, String) {
    let resp = reqwest::get(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status();
    (status, resp.text().await.expect("reading the page"))
}

/// Presses a button of the page an Authorize link opens (`action`: `authorize` or `deny`).
pub async fn press(url: &str, action: &str) -> (reqwest::StatusCode, String) {
    let resp = reqwest::Client::new()
        .post(url)
        .form(&[("action", action)])
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status();
    (status, resp.text().await.expect("reading the page"))
}
