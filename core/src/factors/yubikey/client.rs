//! A client for Yubico's OTP validation protocol 2.0, as YubiCloud and self-hosted
//! `yubikey-val` servers speak it: one signed `GET …/verify?id=…&nonce=…&otp=…&h=…` per
//! server, tried in order until one gives a definitive answer.
//!
//! An answer counts only when it passes every check: HTTP 200, `key=value` lines, a
//! signature `h` over all the other fields made with our API key, and — for `OK` — the
//! very `otp` and `nonce` we sent. Anything else from a server (no connection, a timeout,
//! a bad or missing signature, an answer for another request, a status that speaks of a
//! problem on our side or theirs) means "ask the next one"; when none is left the check
//! fails closed.
//!
//! Why not the `yubico` crate (0.11): it pulls reqwest 0.11 with OpenSSL through
//! native-tls, which cannot be turned off; it panics on an answer without a `status`
//! line or with an `h` that is not base64 (a proxy's error page would take down the
//! login); its async verifier stops at the first network error instead of trying the
//! next server; it signs non-`OK` answers' fields but never checks them; and it refuses
//! OTPs of exactly 32 or 48 characters. The protocol is small enough to carry here, on
//! the workspace's reqwest with rustls.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Url;
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::otp::Otp;
use crate::config::YubikeyConfig;

/// A validation server's definitive, signed answer about an OTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `OK`: the OTP is valid and was not seen before; it is now spent.
    Valid,
    /// `REPLAYED_OTP` (or `REPLAYED_REQUEST`): the OTP was already used.
    Replayed,
    /// `BAD_OTP`: not a valid OTP of a key the service knows.
    Invalid,
}

/// Why no validation server gave a definitive answer. The caller refuses the OTP in every
/// case. The texts name servers and statuses, never the OTP or the key.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the [yubikey] client_id or secret_key is not set")]
    NotConfigured,
    #[error("the HTTP client could not be set up: {0}")]
    Setup(String),
    #[error("no validation server gave a usable answer ({0})")]
    NoAnswer(String),
}

/// Longest answer read from a server; real ones are a few hundred bytes.
const MAX_ANSWER: usize = 8 * 1024;

/// Asks the configured servers, in order, about `otp`.
pub async fn verify(config: &YubikeyConfig, otp: &Otp) -> Result<Outcome, ClientError> {
    let key = config.key_bytes();
    if config.client_id.is_empty() || key.is_empty() {
        return Err(ClientError::NotConfigured);
    }
    let client = http_client()?;
    let timeout = Duration::from_secs(config.timeout_secs.max(1));
    let mut problems = Vec::new();
    for server in &config.api_urls {
        // A fresh nonce per server: a second server that syncs with the first must not
        // see the same request again (it would answer REPLAYED_REQUEST).
        let nonce = hex::encode(crate::vault::random_bytes(16));
        let outcome = match request_url(server, &config.client_id, &key, otp, &nonce) {
            Ok(url) => match fetch(client, url, timeout).await {
                Ok(body) => judge(&body, &key, otp, &nonce),
                Err(why) => Err(why),
            },
            Err(why) => Err(why),
        };
        match outcome {
            Ok(outcome) => return Ok(outcome),
            Err(why) => {
                tracing::warn!(server = %server, reason = %why, "YubiKey validation server gave no usable answer");
                problems.push(format!("{server}: {why}"));
            }
        }
    }
    Err(ClientError::NoAnswer(problems.join("; ")))
}

/// One HTTP client for the process (it holds the TLS roots and a connection pool).
fn http_client() -> Result<&'static reqwest::Client, ClientError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    let built = CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
            // A validation server answers; it does not send us elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| error_text(&e))
    });
    built.as_ref().map_err(|e| ClientError::Setup(e.clone()))
}

/// The signed request: parameters sorted by name, `h` = base64(HMAC-SHA1(key,
/// "id=…&nonce=…&otp=…")) appended.
fn request_url(server: &str, client_id: &str, key: &[u8], otp: &Otp, nonce: &str) -> Result<Url, String> {
    let params = [("id", client_id), ("nonce", nonce), ("otp", otp.as_str())];
    let signed: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let h = STANDARD.encode(hmac_sha1(key, signed.join("&").as_bytes()));
    let mut url = Url::parse(server).map_err(|e| format!("not a URL: {e}"))?;
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in params {
            query.append_pair(k, v);
        }
        query.append_pair("h", &h);
    }
    Ok(url)
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    // Invariant: HMAC takes keys of any length.
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// GETs `url` and returns the body of a 200 answer, read up to [`MAX_ANSWER`] bytes.
async fn fetch(client: &reqwest::Client, url: Url, timeout: Duration) -> Result<String, String> {
    let mut response = client.get(url).timeout(timeout).send().await.map_err(|e| error_text(&e))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(format!("HTTP status {}", response.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_text(&e))? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err("answer too long".into());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| "answer is not text".into())
}

/// What went wrong with a request, without its URL (whose query holds the OTP): the
/// innermost cause ("Connection refused", "timed out").
fn error_text(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut cause = std::error::Error::source(e);
    let mut text = None;
    while let Some(inner) = cause {
        text = Some(inner.to_string());
        cause = inner.source();
    }
    // Without a cause only the kind is shown: the error's own text names the URL.
    let text = text.unwrap_or_else(|| if e.is_connect() { "cannot connect".into() } else { "request failed".into() });
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect()
}

/// The `key=value` lines of an answer. Blank lines are skipped; a line without `=` or a
/// key given twice makes the answer unusable.
fn parse_answer(body: &str) -> Result<BTreeMap<String, String>, String> {
    let mut fields = BTreeMap::new();
    for line in body.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.trim().is_empty()) {
        let Some((k, v)) = line.split_once('=') else { return Err("answer is not key=value lines".into()) };
        if fields.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("answer has '{}' twice", printable(k)));
        }
    }
    Ok(fields)
}

/// Whether `fields` carry a valid `h`: base64(HMAC-SHA1(key, "k=v&…" over every other
/// field, sorted by key)). Compared in constant time.
fn signed(fields: &BTreeMap<String, String>, key: &[u8]) -> bool {
    let Some(Ok(given)) = fields.get("h").map(|h| STANDARD.decode(h.trim())) else { return false };
    let text: Vec<String> = fields.iter().filter(|(k, _)| k.as_str() != "h").map(|(k, v)| format!("{k}={v}")).collect();
    let expected = hmac_sha1(key, text.join("&").as_bytes());
    given.ct_eq(&expected).into()
}

/// Whether the answer's `name` field is `sent` (constant time). A missing field is
/// `missing_ok` (servers leave `otp` and `nonce` out of some refusals).
fn echoes(fields: &BTreeMap<String, String>, name: &str, sent: &str, missing_ok: bool) -> bool {
    match fields.get(name) {
        Some(v) => v.as_bytes().ct_eq(sent.as_bytes()).into(),
        None => missing_ok,
    }
}

/// Reads one server's answer to the request with `nonce` about `otp`: the outcome when it
/// is definitive and authentic, else why this server gave no usable answer. Public only
/// so that the fuzz targets (`fuzz/`) can feed it any answer.
#[doc(hidden)]
pub fn judge(body: &str, key: &[u8], otp: &Otp, nonce: &str) -> Result<Outcome, String> {
    let fields = parse_answer(body)?;
    // The status is compared as sent; only its printable form goes into messages, so
    // that a status such as "O K" is not read as "OK" once its space is dropped.
    let status = fields.get("status").map(|s| s.trim()).ok_or_else(|| "answer has no status".to_string())?;
    let shown = printable(status);
    if !signed(&fields, key) {
        // An unsigned NO_SUCH_CLIENT is what a server says to an unknown client id: the
        // status is worth showing, the answer is not worth trusting.
        let hint = if status == "NO_SUCH_CLIENT" { "check yubikey.client_id" } else { "check yubikey.secret_key" };
        return Err(format!("answered {shown} with a missing or bad signature ({hint})"));
    }
    let definitive = match status {
        "OK" => Some(Outcome::Valid),
        "REPLAYED_OTP" | "REPLAYED_REQUEST" => Some(Outcome::Replayed),
        "BAD_OTP" => Some(Outcome::Invalid),
        _ => None,
    };
    let Some(outcome) = definitive else {
        return Err(match status {
            "NO_SUCH_CLIENT" => "answered NO_SUCH_CLIENT (check yubikey.client_id)".to_string(),
            "BAD_SIGNATURE" => {
                "answered BAD_SIGNATURE: it does not accept our request signature (check yubikey.secret_key)"
                    .to_string()
            }
            _ => format!("answered {shown}"),
        });
    };
    let ok = outcome == Outcome::Valid;
    if !echoes(&fields, "otp", otp.as_str(), !ok) || !echoes(&fields, "nonce", nonce, !ok) {
        return Err(format!("answered {shown} for another request (otp or nonce differ)"));
    }
    Ok(outcome)
}

/// A server's text as it may appear in a log or on the health page.
fn printable(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_graphic()).take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdefghij";
    const OTP: &str = "cccjgjgkhcbbirdrfdnlnghhfgrtnnlgedjlftrbdeut";
    const NONCE: &str = "aef3a7835277a28da831005c2ae3b919e2076a62";

    fn otp() -> Otp {
        Otp::parse(OTP).unwrap()
    }

    /// An answer as a server builds it: the fields, then `h` over them, CRLF lines.
    fn answer(fields: &[(&str, &str)], key: &[u8]) -> String {
        let sorted: BTreeMap<&str, &str> = fields.iter().copied().collect();
        let text: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let h = STANDARD.encode(hmac_sha1(key, text.join("&").as_bytes()));
        let mut out = format!("h={h}\r\n");
        for (k, v) in fields {
            out.push_str(&format!("{k}={v}\r\n"));
        }
        out + "\r\n"
    }

    fn full(status: &str) -> String {
        answer(
            &[("t", "2024-05-06T07:08:09Z0123"), ("otp", OTP), ("nonce", NONCE), ("sl", "100"), ("status", status)],
            KEY,
        )
    }

    #[test]
    fn request_is_signed_over_sorted_parameters() {
        let url = request_url("https://api.example/wsapi/2.0/verify", "87", KEY, &otp(), NONCE).unwrap();
        let expected_h = STANDARD.encode(hmac_sha1(KEY, format!("id=87&nonce={NONCE}&otp={OTP}").as_bytes()));
        let query: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        assert_eq!(url.path(), "/wsapi/2.0/verify");
        assert_eq!(
            query[..3],
            [("id".into(), "87".into()), ("nonce".into(), NONCE.into()), ("otp".into(), OTP.into())]
        );
        assert_eq!(query[3], ("h".to_string(), expected_h));
        // `+` and `/` of base64 are escaped in the query.
        assert!(!url.query().unwrap().contains('/'));
    }

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(judge(&full("OK"), KEY, &otp(), NONCE), Ok(Outcome::Valid));
        assert_eq!(judge(&full("REPLAYED_OTP"), KEY, &otp(), NONCE), Ok(Outcome::Replayed));
        assert_eq!(judge(&full("REPLAYED_REQUEST"), KEY, &otp(), NONCE), Ok(Outcome::Replayed));
        assert_eq!(judge(&full("BAD_OTP"), KEY, &otp(), NONCE), Ok(Outcome::Invalid));
        // A refusal may leave out the otp and nonce.
        let short = answer(&[("t", "x"), ("status", "BAD_OTP")], KEY);
        assert_eq!(judge(&short, KEY, &otp(), NONCE), Ok(Outcome::Invalid));
        for problem in [
            "NO_SUCH_CLIENT",
            "BAD_SIGNATURE",
            "MISSING_PARAMETER",
            "OPERATION_NOT_ALLOWED",
            "BACKEND_ERROR",
            "NOT_ENOUGH_ANSWERS",
            "SOMETHING_NEW",
        ] {
            let err = judge(&full(problem), KEY, &otp(), NONCE).unwrap_err();
            assert!(err.contains(problem), "{err}");
        }
    }

    #[test]
    fn a_status_is_read_as_sent_not_as_shown() {
        // "\u{7d1}OK", the signed answer the yubikey_response fuzz target found: shown as
        // "OK" once its non-ASCII character is dropped, but it is not OK.
        for status in ["\u{7d1}OK", "O K", "OK\u{1}", "BAD_OTP\u{7f}", "REPLAYED\u{a0}_OTP"] {
            let err = judge(&full(status), KEY, &otp(), NONCE).unwrap_err();
            assert!(err.starts_with("answered "), "{status:?}: {err}");
        }
        assert_eq!(judge(&full(" OK "), KEY, &otp(), NONCE), Ok(Outcome::Valid), "surrounding blanks are trimmed");
    }

    #[test]
    fn an_ok_must_be_signed_and_echo_the_request() {
        // Signed with another key.
        let err = judge(&answer(&[("otp", OTP), ("nonce", NONCE), ("status", "OK")], b"other key"), KEY, &otp(), NONCE)
            .unwrap_err();
        assert!(err.contains("signature"), "{err}");
        // No signature at all.
        let err = judge(&format!("otp={OTP}\r\nnonce={NONCE}\r\nstatus=OK\r\n"), KEY, &otp(), NONCE).unwrap_err();
        assert!(err.contains("signature"), "{err}");
        // A field added after signing.
        let tampered = full("OK") + "sl=0\r\n";
        assert!(judge(&tampered, KEY, &otp(), NONCE).is_err());
        // A signed OK for another nonce (an old answer played back) or another OTP.
        let other_nonce = answer(&[("otp", OTP), ("nonce", "0000000000000000"), ("status", "OK")], KEY);
        assert!(judge(&other_nonce, KEY, &otp(), NONCE).unwrap_err().contains("another request"));
        let other = "cccjgjgkhcbbirdrfdnlnghhfgrtnnlgedjlftrbdeuv";
        let other_otp = answer(&[("otp", other), ("nonce", NONCE), ("status", "OK")], KEY);
        assert!(judge(&other_otp, KEY, &otp(), NONCE).is_err());
        // An OK that leaves them out.
        let bare = answer(&[("status", "OK")], KEY);
        assert!(judge(&bare, KEY, &otp(), NONCE).is_err());
    }

    #[test]
    fn garbage_is_no_answer_and_never_panics() {
        for body in [
            "",
            "<html>502 Bad Gateway</html>",
            "status=OK\nstatus=OK",
            "h=!!!\r\nstatus=OK\r\n",
            "h=\r\nstatus=\r\n",
            "=\r\n",
        ] {
            assert!(judge(body, KEY, &otp(), NONCE).is_err(), "{body:?}");
        }
        // A status full of control characters is shown cleaned and cut short.
        let odd = "X\u{1b}".repeat(100);
        let err = judge(&answer(&[("status", odd.as_str())], KEY), KEY, &otp(), NONCE).unwrap_err();
        assert!(!err.contains('\u{1b}') && err.len() < 120, "{err}");
    }

    #[tokio::test]
    async fn unreachable_servers_fail_closed_without_showing_the_otp() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = dead.local_addr().unwrap().port();
        drop(dead);
        let config = YubikeyConfig {
            client_id: "1".into(),
            secret_key: STANDARD.encode(KEY),
            api_urls: vec![
                format!("http://127.0.0.1:{port}/wsapi/2.0/verify"),
                format!("http://127.0.0.1:{port}/second"),
            ],
            timeout_secs: 1,
        };
        let err = verify(&config, &otp()).await.unwrap_err().to_string();
        assert!(err.contains("/wsapi/2.0/verify") && err.contains("/second"), "both servers named: {err}");
        assert!(!err.contains(OTP) && !err.contains("otp="), "{err}");
        let off = YubikeyConfig { client_id: String::new(), ..config };
        assert!(matches!(verify(&off, &otp()).await, Err(ClientError::NotConfigured)));
    }
}
