//! Answers of a YubiKey OTP validation server, protocol 2.0
//! (core/src/factors/yubikey/client.rs, `judge`): what a validation server, a proxy or an
//! attacker on the way may send back.
//!
//! The input's first octet picks: the rest as the answer's text (even), or a `key=value`
//! answer built from fuzzed fields and signed with our API key as a real server would, or
//! with another key, or not at all (odd). Asserts: an
//! answer not signed with our key is never an outcome; a signed answer is `Valid` only
//! when its status is `OK` and it echoes the very OTP and nonce we sent; an outcome is
//! given only for a definitive status; the reason given for no outcome has no control or
//! bidi character (it reaches the logs and the health page); no panic.

#![no_main]

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gatehouse_core::factors::yubikey::Otp;
use gatehouse_core::factors::yubikey::client::{Outcome, judge};
use gatehouse_core::text::is_unsafe;
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use sha1::Sha1;

const KEY: &[u8] = b"0123456789abcdefghij";
const OTP: &str = "cccjgjgkhcbbirdrfdnlnghhfgrtnnlgedjlftrbdeut";
const NONCE: &str = "aef3a7835277a28da831005c2ae3b919e2076a62";

#[derive(Arbitrary, Debug)]
enum Signature {
    Ours,
    OtherKey(Vec<u8>),
    Given(String),
    None,
}

#[derive(Arbitrary, Debug)]
struct Fields {
    status: String,
    /// Which of `otp` and `nonce` to echo: `None` leaves the field out, `Some(true)`
    /// echoes what was sent, `Some(false)` the text of `other`.
    otp: Option<bool>,
    nonce: Option<bool>,
    other: String,
    extra: Vec<(String, String)>,
    signature: Signature,
    crlf: bool,
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else { return };
    let (body, signed_by_us) = if mode & 1 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else { return };
        (text.to_string(), false)
    } else {
        let Ok(fields) = Fields::arbitrary_take_rest(Unstructured::new(rest)) else { return };
        let Fields { status, otp, nonce, other, extra, signature, crlf } = fields;
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        // Keys with `=` or line breaks would not survive as one line; the raw input covers them.
        for (k, v) in extra {
            if !k.contains(['=', '\n', '\r']) && !v.contains(['\n', '\r']) && !k.trim().is_empty() {
                fields.insert(k, v);
            }
        }
        let echo =
            |sent: &str, choice: Option<bool>| choice.map(|same| if same { sent.to_string() } else { other.clone() });
        if let Some(v) = echo(OTP, otp).filter(|v| !v.contains(['\n', '\r'])) {
            fields.insert("otp".into(), v);
        }
        if let Some(v) = echo(NONCE, nonce).filter(|v| !v.contains(['\n', '\r'])) {
            fields.insert("nonce".into(), v);
        }
        if !status.contains(['\n', '\r']) {
            fields.insert("status".into(), status);
        }
        fields.remove("h");
        let text: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let h = match &signature {
            Signature::Ours => Some(STANDARD.encode(hmac_sha1(KEY, text.join("&").as_bytes()))),
            Signature::OtherKey(key) => Some(STANDARD.encode(hmac_sha1(key, text.join("&").as_bytes()))),
            Signature::Given(h) if !h.contains(['\n', '\r']) => Some(h.clone()),
            Signature::Given(_) | Signature::None => None,
        };
        let signed_by_us = matches!(signature, Signature::Ours)
            || matches!(&signature, Signature::OtherKey(k) if hmac_sha1(k, b"x") == hmac_sha1(KEY, b"x"));
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut body = String::new();
        if let Some(h) = h {
            body.push_str(&format!("h={h}{eol}"));
        }
        for (k, v) in &fields {
            body.push_str(&format!("{k}={v}{eol}"));
        }
        (body, signed_by_us)
    };
    let otp = Otp::parse(OTP).expect("a valid OTP");

    match judge(&body, KEY, &otp, NONCE) {
        Ok(outcome) => {
            assert!(signed_by_us, "an answer not signed with our key gave {outcome:?}: {body:?}");
            let fields: BTreeMap<&str, &str> =
                body.lines().filter_map(|l| l.trim_end_matches('\r').split_once('=')).collect();
            let status = fields.get("status").map(|s| s.trim()).unwrap_or_default();
            match outcome {
                Outcome::Valid => {
                    assert_eq!(status, "OK");
                    assert_eq!(fields.get("otp").copied(), Some(OTP), "OK for another OTP");
                    assert_eq!(fields.get("nonce").copied(), Some(NONCE), "OK for another nonce");
                }
                Outcome::Replayed => assert!(matches!(status, "REPLAYED_OTP" | "REPLAYED_REQUEST"), "{status:?}"),
                Outcome::Invalid => assert_eq!(status, "BAD_OTP"),
            }
        }
        Err(why) => assert!(!why.chars().any(is_unsafe), "reason not printable: {why:?}"),
    }
});
