//! RADIUS (core/src/factors/radius/packet.rs): what a RADIUS server, or anyone who can
//! put a datagram on the path, sends back to the gateway.
//!
//! Two kinds of input: raw datagrams, which must never be accepted (they cannot carry a
//! valid Response Authenticator); and responses built and signed with the shared secret
//! as a server would, with fuzzed code, attributes, Message-Authenticator, padding and
//! one optional corrupted octet. Asserts: a correctly signed, well-formed response is
//! accepted with its code and attributes exactly when its code is a response code, it
//! fits the size limit, and it has a Message-Authenticator where one is required; any
//! changed octet within its length is refused; padding past the length is ignored;
//! Reply-Message decoding never panics. For requests: the User-Password hides to a
//! multiple of 16 octets that the secret reveals again (RFC 2865 §5.2), and a built
//! Access-Request parses back with a valid Message-Authenticator. No panic.

#![no_main]

use arbitrary::Arbitrary;
use gatehouse_core::factors::radius::packet::{
    ACCESS_ACCEPT, ACCESS_CHALLENGE, ACCESS_REJECT, MAX_PACKET, MAX_PASSWORD, MESSAGE_AUTHENTICATOR, PacketError,
    Request, RequestFields, USER_PASSWORD, access_request, attributes, check_response, hide_password,
};
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use md5::{Digest, Md5};

#[derive(Arbitrary, Debug)]
enum Reply {
    /// A datagram as it arrives, signed by no one.
    Raw(Vec<u8>),
    /// A response signed with the secret.
    Signed { code: u8, attrs: Vec<(u8, Vec<u8>)>, with_ma: bool, padding: Vec<u8>, corrupt: Option<(u16, u8)> },
}

#[derive(Arbitrary, Debug)]
struct Input {
    secret: Vec<u8>,
    identifier: u8,
    authenticator: [u8; 16],
    user_name: String,
    password: Vec<u8>,
    nas_identifier: String,
    state: Option<Vec<u8>>,
    require_ma: bool,
    reply: Reply,
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn hmac_md5(secret: &[u8], data: &[u8]) -> [u8; 16] {
    let mut mac = <Hmac<Md5> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// RFC 2865 §5.2 read backwards, as the server does.
fn reveal(hidden: &[u8], secret: &[u8], authenticator: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut previous = authenticator.to_vec();
    for block in hidden.chunks(16) {
        let key = md5(&[secret, &previous]);
        out.extend(block.iter().zip(key).map(|(b, k)| b ^ k));
        previous = block.to_vec();
    }
    out
}

/// A response as a server signs it (RFC 2865 §3, RFC 3579 §3.2); attribute values are
/// cut to what one attribute holds.
fn sign(request: &Request, secret: &[u8], code: u8, attrs: &[(u8, Vec<u8>)], with_ma: bool) -> Vec<u8> {
    let mut buf = vec![code, request.identifier, 0, 0];
    buf.extend_from_slice(&request.authenticator);
    let mut ma_at = None;
    if with_ma {
        ma_at = Some(buf.len() + 2);
        buf.extend_from_slice(&[MESSAGE_AUTHENTICATOR, 18]);
        buf.extend_from_slice(&[0; 16]);
    }
    for (kind, value) in attrs {
        let value = &value[..value.len().min(253)];
        buf.push(*kind);
        buf.push(value.len() as u8 + 2);
        buf.extend_from_slice(value);
    }
    let len = (buf.len().min(u16::MAX as usize)) as u16;
    buf[2..4].copy_from_slice(&len.to_be_bytes());
    if let Some(at) = ma_at {
        let mac = hmac_md5(secret, &buf);
        buf[at..at + 16].copy_from_slice(&mac);
    }
    let auth = md5(&[&buf[..4], &request.authenticator, &buf[20..], secret]);
    buf[4..20].copy_from_slice(&auth);
    buf
}

fuzz_target!(|input: Input| {
    match hide_password(&input.password, &input.secret, &input.authenticator) {
        Ok(hidden) => {
            assert!(input.password.len() <= MAX_PASSWORD);
            assert!(!hidden.is_empty() && hidden.len() % 16 == 0 && hidden.len() <= MAX_PASSWORD);
            let shown = reveal(&hidden, &input.secret, &input.authenticator);
            assert_eq!(&shown[..input.password.len()], &input.password[..]);
            assert!(shown[input.password.len()..].iter().all(|&b| b == 0), "padding is not zeros");
        }
        Err(e) => {
            assert!(input.password.len() > MAX_PASSWORD, "refused a password of {} octets", input.password.len());
            assert_eq!(e, PacketError::PasswordTooLong);
        }
    }

    let fields = RequestFields {
        user_name: &input.user_name,
        password: &input.password,
        nas_identifier: &input.nas_identifier,
        state: input.state.as_deref(),
    };
    let request = match access_request(fields, &input.secret, input.identifier, input.authenticator) {
        Ok(request) => {
            let b = &request.bytes;
            assert!(b.len() >= 20 && b.len() <= MAX_PACKET);
            assert_eq!(usize::from(u16::from_be_bytes([b[2], b[3]])), b.len());
            let attrs = attributes(&b[20..]).expect("a built request parses");
            assert_eq!(attrs[0].kind, MESSAGE_AUTHENTICATOR);
            assert!(attrs.iter().any(|a| a.kind == USER_PASSWORD));
            let mut zeroed = b.clone();
            zeroed[22..38].fill(0);
            assert_eq!(&b[22..38], &hmac_md5(&input.secret, &zeroed), "bad Message-Authenticator");
            request
        }
        // A field too long for RADIUS; check responses against a request of our own.
        Err(_) => Request { identifier: input.identifier, authenticator: input.authenticator, bytes: Vec::new() },
    };

    match input.reply {
        Reply::Raw(bytes) => {
            if let Ok(r) = check_response(&bytes, &request, &input.secret, input.require_ma) {
                panic!("an unsigned datagram was accepted: {r:?}");
            }
        }
        Reply::Signed { code, attrs, with_ma, padding, corrupt } => {
            // The Message-Authenticator is placed by `with_ma` alone.
            let attrs: Vec<(u8, Vec<u8>)> = attrs.into_iter().filter(|(k, _)| *k != MESSAGE_AUTHENTICATOR).collect();
            let mut bytes = sign(&request, &input.secret, code, &attrs, with_ma);
            let len = bytes.len();
            let mut changed = false;
            if let Some((at, xor)) = corrupt {
                let at = usize::from(at) % len;
                bytes[at] ^= xor;
                changed = xor != 0;
            }
            bytes.extend_from_slice(&padding);
            let result = check_response(&bytes, &request, &input.secret, input.require_ma);
            let fits = len <= MAX_PACKET;
            let response_code = matches!(code, ACCESS_ACCEPT | ACCESS_REJECT | ACCESS_CHALLENGE);
            let expect_ok = !changed && fits && response_code && (with_ma || !input.require_ma);
            match result {
                Ok(r) => {
                    assert!(expect_ok, "accepted: changed {changed}, fits {fits}, code {code}, ma {with_ma}");
                    assert_eq!(r.code, code);
                    let got: Vec<(u8, Vec<u8>)> = r
                        .attributes
                        .iter()
                        .filter(|a| a.kind != MESSAGE_AUTHENTICATOR)
                        .map(|a| (a.kind, a.value.clone()))
                        .collect();
                    let sent: Vec<(u8, Vec<u8>)> =
                        attrs.iter().map(|(k, v)| (*k, v[..v.len().min(253)].to_vec())).collect();
                    assert_eq!(got, sent, "attributes changed on the way");
                    let _ = r.reply_message();
                }
                Err(e) => assert!(!expect_ok, "refused a valid response: {e}"),
            }
        }
    }
});
