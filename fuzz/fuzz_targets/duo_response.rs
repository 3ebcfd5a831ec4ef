//! Duo's JSON answers (core/src/factors/duo/client.rs): the envelope (`interpret`) and
//! the `preauth`, `auth`/`auth_status` and push answers inside it, as a Duo endpoint, a
//! proxy on the way or a misconfigured `api_host` may send them.
//!
//! The input's first two octets are the HTTP status (little-endian) and the third picks
//! the body: the rest as it is (even), or an envelope built from fuzzed fields (odd), so
//! the parsers behind the envelope are reached often. Asserts: only HTTP 200 with `stat: OK` yields a
//! response; 5xx and 429 are outages and nothing else is read; a refusal or a
//! misunderstanding is never an outage (it must not open `fail_open`); every error's text,
//! which reaches the logs and the health page, has no control or bidi character and a
//! refusal's message at most 200 characters; a push's transaction id is 1-128 letters,
//! digits or `-`; no panic.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use gatehouse_core::factors::duo::client::{DuoError, interpret, parse_decision, parse_preauth, parse_txid};
use gatehouse_core::text::is_unsafe;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

#[derive(Arbitrary, Debug)]
struct Device {
    device: String,
    kind: String,
    name: String,
    display_name: String,
    capabilities: Vec<String>,
}

#[derive(Arbitrary, Debug)]
struct Envelope {
    stat: String,
    code: u32,
    message: String,
    result: String,
    status: String,
    status_msg: String,
    enroll_portal_url: String,
    txid: String,
    devices: Vec<Device>,
    /// Leave `response` out.
    bare: bool,
}

fn check_error(e: &DuoError) {
    let text = e.to_string();
    assert!(!text.chars().any(is_unsafe), "error text not printable: {text:?}");
    if let DuoError::Refused { message, .. } = e {
        assert!(message.chars().count() <= 200, "refusal message of {} characters", message.chars().count());
    }
    if matches!(e, DuoError::Refused { .. } | DuoError::Unexpected(_)) {
        assert!(!e.is_outage(), "{e:?} counted as an outage");
    }
}

fuzz_target!(|data: &[u8]| {
    let [low, high, mode, rest @ ..] = data else { return };
    let http_status = u16::from_le_bytes([*low, *high]);
    let body = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let Ok(envelope) = Envelope::arbitrary_take_rest(Unstructured::new(rest)) else { return };
        let Envelope { stat, code, message, result, status, status_msg, enroll_portal_url, txid, devices, bare } =
            envelope;
        let devices: Vec<Value> = devices
            .into_iter()
            .map(|d| {
                json!({"device": d.device, "type": d.kind, "name": d.name,
                           "display_name": d.display_name, "capabilities": d.capabilities})
            })
            .collect();
        let mut envelope = json!({"stat": stat, "code": code, "message": message});
        if !bare {
            envelope["response"] = json!({"result": result, "status": status, "status_msg": status_msg,
                    "enroll_portal_url": enroll_portal_url, "txid": txid, "devices": devices});
        }
        serde_json::to_vec(&envelope).expect("a Value serialises")
    };

    let response = match interpret(http_status, &body) {
        Ok(v) => {
            assert_eq!(http_status, 200, "a response under HTTP {}", http_status);
            v
        }
        Err(e) => {
            if http_status >= 500 || http_status == 429 {
                assert_eq!(e, DuoError::ServerError(http_status));
            }
            check_error(&e);
            return;
        }
    };
    if let Err(e) = parse_preauth(response.clone()) {
        check_error(&e);
    }
    if let Err(e) = parse_decision(response.clone()) {
        check_error(&e);
    }
    match parse_txid(response) {
        Ok(txid) => {
            assert!((1..=128).contains(&txid.len()), "txid of {} bytes", txid.len());
            assert!(txid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "txid {txid:?}");
        }
        Err(e) => check_error(&e),
    }
});
