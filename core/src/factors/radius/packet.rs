//! The RADIUS wire format (RFC 2865) with the Message-Authenticator of RFC 3579: building
//! an Access-Request and checking a response to it.
//!
//! Only what a PAP client needs: User-Name, User-Password (hidden with the shared secret,
//! RFC 2865 §5.2), NAS-Identifier, State, Reply-Message and Message-Authenticator.

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

/// Packet codes (RFC 2865 §3).
pub const ACCESS_REQUEST: u8 = 1;
pub const ACCESS_ACCEPT: u8 = 2;
pub const ACCESS_REJECT: u8 = 3;
pub const ACCESS_CHALLENGE: u8 = 11;

/// Attribute types (RFC 2865 §5, RFC 3579 §3.2).
pub const USER_NAME: u8 = 1;
pub const USER_PASSWORD: u8 = 2;
pub const REPLY_MESSAGE: u8 = 18;
pub const STATE: u8 = 24;
pub const NAS_IDENTIFIER: u8 = 32;
pub const MESSAGE_AUTHENTICATOR: u8 = 80;

/// The longest packet RFC 2865 allows.
pub const MAX_PACKET: usize = 4096;
/// The longest User-Password (RFC 2865 §5.2: 128 octets once padded).
pub const MAX_PASSWORD: usize = 128;

const HEADER: usize = 20;

/// Why a packet could not be built or a response was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("the answer is longer than RADIUS allows ({MAX_PASSWORD} bytes)")]
    PasswordTooLong,
    #[error("attribute {0} is too long")]
    AttributeTooLong(u8),
    #[error("malformed packet")]
    Malformed,
    #[error("response to another request (identifier)")]
    OtherRequest,
    #[error("unexpected packet code {0}")]
    UnexpectedCode(u8),
    #[error("wrong Response Authenticator")]
    BadResponseAuthenticator,
    #[error("missing or wrong Message-Authenticator")]
    BadMessageAuthenticator,
}

/// One attribute as found in a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub kind: u8,
    pub value: Vec<u8>,
}

/// An Access-Request ready to send, with what is needed to check its response.
#[derive(Debug, Clone)]
pub struct Request {
    pub identifier: u8,
    pub authenticator: [u8; 16],
    pub bytes: Vec<u8>,
}

/// What goes into an Access-Request.
#[derive(Debug, Clone, Copy)]
pub struct RequestFields<'a> {
    pub user_name: &'a str,
    pub password: &'a [u8],
    pub nas_identifier: &'a str,
    /// The State of the Access-Challenge this request answers.
    pub state: Option<&'a [u8]>,
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn hmac_md5(secret: &[u8], data: &[u8]) -> [u8; 16] {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <Hmac<Md5> as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Hides a User-Password (RFC 2865 §5.2): padded with zeros to a multiple of 16, each
/// block XORed with MD5(secret + previous ciphertext block), the first with the Request
/// Authenticator.
pub fn hide_password(password: &[u8], secret: &[u8], authenticator: &[u8; 16]) -> Result<Vec<u8>, PacketError> {
    if password.len() > MAX_PASSWORD {
        return Err(PacketError::PasswordTooLong);
    }
    let padded_len = password.len().div_ceil(16).max(1) * 16;
    let mut out = password.to_vec();
    out.resize(padded_len, 0);
    let mut previous: Vec<u8> = authenticator.to_vec();
    for block in out.chunks_mut(16) {
        let key = md5(&[secret, &previous]);
        for (b, k) in block.iter_mut().zip(key) {
            *b ^= k;
        }
        previous = block.to_vec();
    }
    Ok(out)
}

fn push_attribute(buf: &mut Vec<u8>, kind: u8, value: &[u8]) -> Result<(), PacketError> {
    if value.len() > 253 {
        return Err(PacketError::AttributeTooLong(kind));
    }
    buf.push(kind);
    buf.push(value.len() as u8 + 2);
    buf.extend_from_slice(value);
    Ok(())
}

/// Builds an Access-Request with a Message-Authenticator (first attribute, as RFC 3579
/// recommends against BlastRADIUS-style forgery).
pub fn access_request(
    fields: RequestFields<'_>,
    secret: &[u8],
    identifier: u8,
    authenticator: [u8; 16],
) -> Result<Request, PacketError> {
    let mut buf = vec![ACCESS_REQUEST, identifier, 0, 0];
    buf.extend_from_slice(&authenticator);
    let ma_at = buf.len() + 2;
    push_attribute(&mut buf, MESSAGE_AUTHENTICATOR, &[0; 16])?;
    push_attribute(&mut buf, USER_NAME, fields.user_name.as_bytes())?;
    push_attribute(&mut buf, USER_PASSWORD, &hide_password(fields.password, secret, &authenticator)?)?;
    if !fields.nas_identifier.is_empty() {
        push_attribute(&mut buf, NAS_IDENTIFIER, fields.nas_identifier.as_bytes())?;
    }
    if let Some(state) = fields.state {
        push_attribute(&mut buf, STATE, state)?;
    }
    if buf.len() > MAX_PACKET {
        return Err(PacketError::Malformed);
    }
    let len = buf.len() as u16;
    buf[2..4].copy_from_slice(&len.to_be_bytes());
    let mac = hmac_md5(secret, &buf);
    buf[ma_at..ma_at + 16].copy_from_slice(&mac);
    Ok(Request { identifier, authenticator, bytes: buf })
}

/// Splits the attributes of a packet body.
pub fn attributes(mut body: &[u8]) -> Result<Vec<Attribute>, PacketError> {
    let mut out = Vec::new();
    while !body.is_empty() {
        if body.len() < 2 {
            return Err(PacketError::Malformed);
        }
        let len = body[1] as usize;
        if len < 2 || len > body.len() {
            return Err(PacketError::Malformed);
        }
        out.push(Attribute { kind: body[0], value: body[2..len].to_vec() });
        body = &body[len..];
    }
    Ok(out)
}

/// A response that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub code: u8,
    pub attributes: Vec<Attribute>,
}

impl Response {
    /// The first value of attribute `kind`.
    pub fn get(&self, kind: u8) -> Option<&[u8]> {
        self.attributes.iter().find(|a| a.kind == kind).map(|a| a.value.as_slice())
    }

    /// All Reply-Message attributes joined, as text (RFC 2865 §5.18 allows several).
    pub fn reply_message(&self) -> String {
        let parts: Vec<String> = self
            .attributes
            .iter()
            .filter(|a| a.kind == REPLY_MESSAGE)
            .map(|a| String::from_utf8_lossy(&a.value).into_owned())
            .collect();
        parts.concat()
    }
}

/// Checks a response to `request`: length, identifier, code, the Response Authenticator
/// (RFC 2865 §3) and the Message-Authenticator (RFC 3579 §3.2), both compared in constant
/// time. With `require_message_authenticator` a response without one is refused.
pub fn check_response(
    bytes: &[u8],
    request: &Request,
    secret: &[u8],
    require_message_authenticator: bool,
) -> Result<Response, PacketError> {
    if bytes.len() < HEADER {
        return Err(PacketError::Malformed);
    }
    let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
    if len < HEADER || len > bytes.len() || len > MAX_PACKET {
        return Err(PacketError::Malformed);
    }
    // Octets past Length are padding (RFC 2865 §3).
    let bytes = &bytes[..len];
    let code = bytes[0];
    if bytes[1] != request.identifier {
        return Err(PacketError::OtherRequest);
    }
    if !matches!(code, ACCESS_ACCEPT | ACCESS_REJECT | ACCESS_CHALLENGE) {
        return Err(PacketError::UnexpectedCode(code));
    }
    let expected = md5(&[&bytes[..4], &request.authenticator, &bytes[HEADER..], secret]);
    if !bool::from(expected[..].ct_eq(&bytes[4..HEADER])) {
        return Err(PacketError::BadResponseAuthenticator);
    }
    let attrs = attributes(&bytes[HEADER..])?;
    // Find the Message-Authenticator's offset to zero it for the check.
    let mut offset = HEADER;
    let mut ma_at = None;
    for a in &attrs {
        if a.kind == MESSAGE_AUTHENTICATOR {
            if a.value.len() != 16 || ma_at.is_some() {
                return Err(PacketError::BadMessageAuthenticator);
            }
            ma_at = Some(offset + 2);
        }
        offset += a.value.len() + 2;
    }
    match ma_at {
        Some(at) => {
            let mut copy = bytes.to_vec();
            copy[4..HEADER].copy_from_slice(&request.authenticator);
            copy[at..at + 16].fill(0);
            let mac = hmac_md5(secret, &copy);
            if !bool::from(mac[..].ct_eq(&bytes[at..at + 16])) {
                return Err(PacketError::BadMessageAuthenticator);
            }
        }
        None if require_message_authenticator => return Err(PacketError::BadMessageAuthenticator),
        None => {}
    }
    Ok(Response { code, attributes: attrs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        ::hex::decode(s).unwrap()
    }

    // RFC 2865 §7.1: user nemo, password arctangent, secret xyzzy5461.
    const SECRET: &[u8] = b"xyzzy5461";
    const REQUEST_AUTH: &str = "0f403f9473978057bd83d5cb98f4227a";

    fn rfc_authenticator() -> [u8; 16] {
        hex(REQUEST_AUTH).try_into().unwrap()
    }

    #[test]
    fn hides_the_password_as_in_rfc_2865_section_7_1() {
        let hidden = hide_password(b"arctangent", SECRET, &rfc_authenticator()).unwrap();
        assert_eq!(hidden, hex("0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee"));
    }

    #[test]
    fn longer_passwords_chain_blocks_and_are_bounded() {
        let a = rfc_authenticator();
        let hidden = hide_password(&[b'x'; 20], SECRET, &a).unwrap();
        assert_eq!(hidden.len(), 32);
        // The second block is keyed with the first ciphertext block.
        let key2 = md5(&[SECRET, &hidden[..16]]);
        let plain2: Vec<u8> = hidden[16..].iter().zip(key2).map(|(c, k)| c ^ k).collect();
        assert_eq!(&plain2[..4], b"xxxx");
        assert!(plain2[4..].iter().all(|b| *b == 0));
        assert_eq!(hide_password(b"", SECRET, &a).unwrap().len(), 16);
        assert_eq!(hide_password(&[0; 129], SECRET, &a), Err(PacketError::PasswordTooLong));
    }

    #[test]
    fn checks_the_rfc_2865_section_7_1_response() {
        // The Access-Accept of the example (no Message-Authenticator in 2000).
        let response = hex("02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf 9b 55 e0 b2
             06 06 00 00 00 01 0f 06 00 00 00 00 0e 06 c0 a8 01 03");
        let request = Request { identifier: 0, authenticator: rfc_authenticator(), bytes: vec![] };
        let r = check_response(&response, &request, SECRET, false).unwrap();
        assert_eq!(r.code, ACCESS_ACCEPT);
        assert_eq!(r.attributes.len(), 3);
        assert_eq!(r.get(6), Some(&[0, 0, 0, 1][..]));
        // A client that requires the Message-Authenticator refuses it.
        assert_eq!(check_response(&response, &request, SECRET, true), Err(PacketError::BadMessageAuthenticator));
        // The wrong secret, a changed byte, another identifier: all refused.
        assert_eq!(check_response(&response, &request, b"other", false), Err(PacketError::BadResponseAuthenticator));
        let mut tampered = response.clone();
        tampered[37] ^= 1;
        assert_eq!(check_response(&tampered, &request, SECRET, false), Err(PacketError::BadResponseAuthenticator));
        let other = Request { identifier: 1, ..request.clone() };
        assert_eq!(check_response(&response, &other, SECRET, false), Err(PacketError::OtherRequest));
    }

    fn request(state: Option<&[u8]>) -> Request {
        let fields = RequestFields { user_name: "nemo", password: b"arctangent", nas_identifier: "gw1", state };
        access_request(fields, SECRET, 7, rfc_authenticator()).unwrap()
    }

    #[test]
    fn builds_an_access_request_with_a_message_authenticator() {
        let r = request(Some(b"st"));
        let b = &r.bytes;
        assert_eq!(b[0], ACCESS_REQUEST);
        assert_eq!(b[1], 7);
        assert_eq!(u16::from_be_bytes([b[2], b[3]]) as usize, b.len());
        assert_eq!(&b[4..20], &rfc_authenticator());
        let attrs = attributes(&b[20..]).unwrap();
        let kinds: Vec<u8> = attrs.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, [MESSAGE_AUTHENTICATOR, USER_NAME, USER_PASSWORD, NAS_IDENTIFIER, STATE]);
        assert_eq!(attrs[1].value, b"nemo");
        assert_eq!(attrs[2].value, hex("0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee"));
        assert_eq!(attrs[4].value, b"st");
        // The MAC is over the packet with its own value zeroed.
        let mut zeroed = b.clone();
        zeroed[22..38].fill(0);
        assert_eq!(&b[22..38], &hmac_md5(SECRET, &zeroed));
    }

    /// A response as a server builds it: Message-Authenticator over the packet with the
    /// Request Authenticator, then the Response Authenticator over the result.
    fn server_response(request: &Request, code: u8, attrs: &[(u8, &[u8])], with_ma: bool) -> Vec<u8> {
        let mut buf = vec![code, request.identifier, 0, 0];
        buf.extend_from_slice(&request.authenticator);
        let mut ma_at = None;
        if with_ma {
            ma_at = Some(buf.len() + 2);
            push_attribute(&mut buf, MESSAGE_AUTHENTICATOR, &[0; 16]).unwrap();
        }
        for (k, v) in attrs {
            push_attribute(&mut buf, *k, v).unwrap();
        }
        let len = buf.len() as u16;
        buf[2..4].copy_from_slice(&len.to_be_bytes());
        if let Some(at) = ma_at {
            let mac = hmac_md5(SECRET, &buf);
            buf[at..at + 16].copy_from_slice(&mac);
        }
        let auth = md5(&[&buf[..4], &request.authenticator, &buf[20..], SECRET]);
        buf[4..20].copy_from_slice(&auth);
        buf
    }

    #[test]
    fn verifies_the_message_authenticator_of_a_challenge() {
        let req = request(None);
        let bytes = server_response(
            &req,
            ACCESS_CHALLENGE,
            &[(REPLY_MESSAGE, b"Enter "), (REPLY_MESSAGE, b"PIN: "), (STATE, b"xyz")],
            true,
        );
        let r = check_response(&bytes, &req, SECRET, true).unwrap();
        assert_eq!(r.code, ACCESS_CHALLENGE);
        assert_eq!(r.reply_message(), "Enter PIN: ");
        assert_eq!(r.get(STATE), Some(&b"xyz"[..]));

        // A forged Message-Authenticator with a valid Response Authenticator is refused.
        let mut forged = bytes.clone();
        forged[22] ^= 0xff;
        let auth = md5(&[&forged[..4], &req.authenticator, &forged[20..], SECRET]);
        forged[4..20].copy_from_slice(&auth);
        assert_eq!(check_response(&forged, &req, SECRET, true), Err(PacketError::BadMessageAuthenticator));

        let without = server_response(&req, ACCESS_REJECT, &[], false);
        assert_eq!(check_response(&without, &req, SECRET, true), Err(PacketError::BadMessageAuthenticator));
        assert_eq!(check_response(&without, &req, SECRET, false).unwrap().code, ACCESS_REJECT);
    }

    #[test]
    fn malformed_packets_are_refused() {
        let req = request(None);
        assert_eq!(check_response(&[2, 7, 0], &req, SECRET, false), Err(PacketError::Malformed));
        let mut bytes = server_response(&req, ACCESS_ACCEPT, &[(REPLY_MESSAGE, b"hi")], false);
        bytes[21] = 0; // attribute length 0
        let auth = md5(&[&bytes[..4], &req.authenticator, &bytes[20..], SECRET]);
        bytes[4..20].copy_from_slice(&auth);
        assert_eq!(check_response(&bytes, &req, SECRET, false), Err(PacketError::Malformed));
        let req_as_response = request(None).bytes;
        assert_eq!(
            check_response(&req_as_response, &req, SECRET, false),
            Err(PacketError::UnexpectedCode(ACCESS_REQUEST))
        );
    }
}
