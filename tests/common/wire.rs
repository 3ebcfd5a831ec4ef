//! An SSH client at the level of single messages, for attacks no library client will
//! make: a channel opened or a forwarding asked for before the login is complete (russh's
//! client refuses to send those), a keyboard-interactive answer larger than any packet the
//! server takes, thousands of responses in one message, bytes that are not UTF-8 in a
//! user name or an answer.
//!
//! It speaks just enough SSH-2 to get there: `curve25519-sha256` key exchange,
//! `aes256-gcm@openssh.com` both ways, no compression, and it trusts any host key (the
//! gateway under test is on loopback). Everything after the key exchange is a message the
//! test builds with [`Msg`] and sends with [`Wire::send`]; what the server sends back is
//! read with [`Wire::recv`], one message at a time, unparsed but for the helpers below.

use std::time::Duration;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::agreement::{EphemeralPrivateKey, UnparsedPublicKey, X25519, agree_ephemeral};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// SSH message numbers this client uses (RFC 4250 §4.1).
pub mod msg {
    pub const DISCONNECT: u8 = 1;
    pub const IGNORE: u8 = 2;
    pub const UNIMPLEMENTED: u8 = 3;
    pub const DEBUG: u8 = 4;
    pub const SERVICE_REQUEST: u8 = 5;
    pub const SERVICE_ACCEPT: u8 = 6;
    pub const EXT_INFO: u8 = 7;
    pub const KEXINIT: u8 = 20;
    pub const NEWKEYS: u8 = 21;
    pub const KEX_ECDH_INIT: u8 = 30;
    pub const KEX_ECDH_REPLY: u8 = 31;
    pub const USERAUTH_REQUEST: u8 = 50;
    pub const USERAUTH_FAILURE: u8 = 51;
    pub const USERAUTH_SUCCESS: u8 = 52;
    pub const USERAUTH_BANNER: u8 = 53;
    pub const USERAUTH_INFO_REQUEST: u8 = 60;
    pub const USERAUTH_INFO_RESPONSE: u8 = 61;
    pub const GLOBAL_REQUEST: u8 = 80;
    pub const REQUEST_SUCCESS: u8 = 81;
    pub const REQUEST_FAILURE: u8 = 82;
    pub const CHANNEL_OPEN: u8 = 90;
    pub const CHANNEL_OPEN_CONFIRMATION: u8 = 91;
    pub const CHANNEL_OPEN_FAILURE: u8 = 92;
    pub const CHANNEL_WINDOW_ADJUST: u8 = 93;
    pub const CHANNEL_DATA: u8 = 94;
    pub const CHANNEL_EXTENDED_DATA: u8 = 95;
    pub const CHANNEL_EOF: u8 = 96;
    pub const CHANNEL_CLOSE: u8 = 97;
    pub const CHANNEL_REQUEST: u8 = 98;
    pub const CHANNEL_SUCCESS: u8 = 99;
    pub const CHANNEL_FAILURE: u8 = 100;
}

/// The window and the largest packet this client offers on the channels it opens.
pub const WINDOW: u32 = 2 * 1024 * 1024;
pub const MAX_PACKET: u32 = 32 * 1024;

/// One message to send, built field by field in SSH's encoding (RFC 4251 §5).
#[derive(Debug, Clone)]
pub struct Msg(pub Vec<u8>);

impl Msg {
    pub fn new(kind: u8) -> Msg {
        Msg(vec![kind])
    }

    pub fn u8(mut self, v: u8) -> Msg {
        self.0.push(v);
        self
    }

    pub fn bool(self, v: bool) -> Msg {
        self.u8(v as u8)
    }

    pub fn u32(mut self, v: u32) -> Msg {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A `string`: any bytes, with their length first.
    pub fn string(mut self, v: impl AsRef<[u8]>) -> Msg {
        let v = v.as_ref();
        self.0.extend_from_slice(&(v.len() as u32).to_be_bytes());
        self.0.extend_from_slice(v);
        self
    }

    /// Bytes as they are, without a length.
    pub fn raw(mut self, v: &[u8]) -> Msg {
        self.0.extend_from_slice(v);
        self
    }

    /// `SSH_MSG_CHANNEL_OPEN` of `kind` with this client's window; `extra` are the
    /// type-specific fields.
    pub fn channel_open(kind: &str, sender: u32, extra: Msg) -> Msg {
        Msg::new(msg::CHANNEL_OPEN).string(kind).u32(sender).u32(WINDOW).u32(MAX_PACKET).raw(&extra.0[1..])
    }

    /// `SSH_MSG_CHANNEL_REQUEST` of `kind` on `recipient`, asking for a reply.
    pub fn channel_request(recipient: u32, kind: &str, extra: Msg) -> Msg {
        Msg::new(msg::CHANNEL_REQUEST).u32(recipient).string(kind).bool(true).raw(&extra.0[1..])
    }

    /// `SSH_MSG_GLOBAL_REQUEST` named `name`, asking for a reply.
    pub fn global_request(name: &str, extra: Msg) -> Msg {
        Msg::new(msg::GLOBAL_REQUEST).string(name).bool(true).raw(&extra.0[1..])
    }

    /// The fields of a request, without a message number (for the `extra` arguments).
    pub fn fields() -> Msg {
        Msg(vec![0])
    }
}

/// Reads the fields of a received message.
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    /// The fields after the message number.
    pub fn of(message: &'a [u8]) -> Fields<'a> {
        Fields { rest: message.get(1..).unwrap_or_default() }
    }

    pub fn u8(&mut self) -> Option<u8> {
        let (&v, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(v)
    }

    pub fn bool(&mut self) -> Option<bool> {
        self.u8().map(|v| v != 0)
    }

    pub fn u32(&mut self) -> Option<u32> {
        let v = self.rest.get(..4)?;
        self.rest = &self.rest[4..];
        Some(u32::from_be_bytes(v.try_into().ok()?))
    }

    pub fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        let v = self.rest.get(..n)?;
        self.rest = &self.rest[n..];
        Some(v)
    }

    pub fn text(&mut self) -> Option<String> {
        self.string().map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// What the server answered to an authentication request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Success,
    /// Refused; `partial` when the step passed but more is required.
    Failure {
        methods: String,
        partial: bool,
    },
    /// A keyboard-interactive round: the instruction and the prompts.
    Info {
        instruction: String,
        prompts: Vec<String>,
    },
    /// The server closed the connection (or sent `SSH_MSG_DISCONNECT`).
    Closed,
    /// Nothing within the wait.
    Silence,
}

/// What [`Wire::recv`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recv {
    /// One message, its number first.
    Message(Vec<u8>),
    /// Nothing within the wait.
    Silence,
    /// The server closed the connection (or it broke).
    Closed,
}

/// Keys of one direction: AES-256-GCM with the OpenSSH nonce (a fixed part and a packet
/// counter).
struct Direction {
    key: LessSafeKey,
    iv: [u8; 12],
}

impl Direction {
    fn new(key: &[u8], iv: &[u8]) -> Direction {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key[..32]).expect("an AES-256 key"));
        let mut fixed = [0u8; 12];
        fixed.copy_from_slice(&iv[..12]);
        Direction { key, iv: fixed }
    }

    /// The nonce of the next packet; counts the invocation.
    fn next_nonce(&mut self) -> Nonce {
        let nonce = Nonce::assume_unique_for_key(self.iv);
        let counter = u64::from_be_bytes(self.iv[4..].try_into().expect("8 bytes")).wrapping_add(1);
        self.iv[4..].copy_from_slice(&counter.to_be_bytes());
        nonce
    }
}

/// One connection at the level of messages, past the key exchange.
pub struct Wire {
    stream: TcpStream,
    send_keys: Option<Direction>,
    recv_keys: Option<Direction>,
    /// Bytes read but not yet used.
    buffer: Vec<u8>,
    closed: bool,
    /// The exchange hash of the key exchange, which names this session.
    session_id: Vec<u8>,
}

impl Wire {
    /// Connects to `127.0.0.1:port`, exchanges keys and asks for the `ssh-userauth`
    /// service: the next message may be an authentication request, or anything else.
    pub async fn connect(port: u16) -> Wire {
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(("127.0.0.1", port)))
            .await
            .expect("connecting timed out")
            .expect("connecting to the gateway");
        let mut wire = Wire {
            stream,
            send_keys: None,
            recv_keys: None,
            buffer: Vec::new(),
            closed: false,
            session_id: Vec::new(),
        };
        tokio::time::timeout(Duration::from_secs(20), wire.handshake()).await.expect("the SSH handshake timed out");
        wire
    }

    async fn handshake(&mut self) {
        let ours = b"SSH-2.0-GatehouseWireTest_1.0".to_vec();
        self.stream.write_all(&[&ours[..], b"\r\n"].concat()).await.expect("sending the version line");
        let theirs = self.version_line().await;

        let server_kexinit = self.expect(msg::KEXINIT).await;
        let mut f = Fields::of(&server_kexinit);
        f.rest = &f.rest[16..];
        let _kex = f.text();
        let host_key_algorithms = f.text().expect("the server's host key algorithms");
        let rng = SystemRandom::new();
        let mut cookie = [0u8; 16];
        rng.fill(&mut cookie).expect("randomness");
        let kexinit = Msg::new(msg::KEXINIT)
            .raw(&cookie)
            .string("curve25519-sha256")
            .string(&host_key_algorithms)
            .string("aes256-gcm@openssh.com")
            .string("aes256-gcm@openssh.com")
            .string("hmac-sha2-256")
            .string("hmac-sha2-256")
            .string("none")
            .string("none")
            .string("")
            .string("")
            .bool(false)
            .u32(0);
        self.send(&kexinit).await.expect("sending KEXINIT");

        let secret = EphemeralPrivateKey::generate(&X25519, &rng).expect("an X25519 key");
        let q_c = secret.compute_public_key().expect("the X25519 public key").as_ref().to_vec();
        self.send(&Msg::new(msg::KEX_ECDH_INIT).string(&q_c)).await.expect("sending KEX_ECDH_INIT");
        let reply = self.expect(msg::KEX_ECDH_REPLY).await;
        let mut f = Fields::of(&reply);
        let k_s = f.string().expect("K_S").to_vec();
        let q_s = f.string().expect("Q_S").to_vec();
        let shared = agree_ephemeral(secret, &UnparsedPublicKey::new(&X25519, &q_s), |k| k.to_vec())
            .expect("the X25519 agreement");
        let k = mpint(&shared);
        let exchange = Msg(Vec::new())
            .string(&ours)
            .string(&theirs)
            .string(&kexinit.0)
            .string(&server_kexinit)
            .string(&k_s)
            .string(&q_c)
            .string(&q_s)
            .raw(&k);
        let h = digest(&SHA256, &exchange.0).as_ref().to_vec();
        self.session_id = h.clone();
        let derive = |letter: u8| digest(&SHA256, &[&k[..], &h[..], &[letter], &h[..]].concat()).as_ref().to_vec();

        self.send(&Msg::new(msg::NEWKEYS)).await.expect("sending NEWKEYS");
        self.expect(msg::NEWKEYS).await;
        self.send_keys = Some(Direction::new(&derive(b'C'), &derive(b'A')));
        self.recv_keys = Some(Direction::new(&derive(b'D'), &derive(b'B')));

        self.send(&Msg::new(msg::SERVICE_REQUEST).string("ssh-userauth")).await.expect("sending SERVICE_REQUEST");
        self.expect(msg::SERVICE_ACCEPT).await;
    }

    /// The session id: the exchange hash of the key exchange (what a server signs to
    /// prove it holds a host key, `hostkeys-prove-00@openssh.com`).
    pub fn session_id(&self) -> &[u8] {
        &self.session_id
    }

    async fn version_line(&mut self) -> Vec<u8> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                let line = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
                if line.starts_with(b"SSH-") {
                    return line;
                }
                continue;
            }
            assert!(self.fill().await, "the server closed the connection before its version line");
        }
    }

    /// Reads until a message of `kind`, skipping `IGNORE` and `DEBUG`; panics on anything
    /// else (for the handshake, where nothing else may come).
    async fn expect(&mut self, kind: u8) -> Vec<u8> {
        loop {
            match self.recv(Duration::from_secs(15)).await {
                Recv::Message(m) if m[0] == kind => return m,
                Recv::Message(m) if matches!(m[0], msg::IGNORE | msg::DEBUG | msg::EXT_INFO) => continue,
                other => panic!("expected message {kind}, got {other:?}"),
            }
        }
    }

    /// Reads more bytes; false when the connection is closed.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                self.closed = true;
                false
            }
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Sends one message (encrypted once keys are in place). An error means the server
    /// closed the connection, possibly while the message was still being written.
    pub async fn send(&mut self, message: &Msg) -> std::io::Result<()> {
        let payload = &message.0;
        let block = if self.send_keys.is_some() { 16 } else { 8 };
        // The length field stays outside the padded part with GCM.
        let outside = if self.send_keys.is_some() { 0 } else { 4 };
        let mut padding = block - ((outside + 1 + payload.len()) % block);
        if padding < 4 {
            padding += block;
        }
        let mut body = Vec::with_capacity(1 + payload.len() + padding + 16);
        body.push(padding as u8);
        body.extend_from_slice(payload);
        body.resize(body.len() + padding, 0);
        let length = (body.len() as u32).to_be_bytes();
        let mut packet = length.to_vec();
        match self.send_keys.as_mut() {
            None => packet.extend_from_slice(&body),
            Some(keys) => {
                let nonce = keys.next_nonce();
                let tag =
                    keys.key.seal_in_place_separate_tag(nonce, Aad::from(length), &mut body).expect("AES-GCM sealing");
                packet.extend_from_slice(&body);
                packet.extend_from_slice(tag.as_ref());
            }
        }
        self.stream.write_all(&packet).await
    }

    /// The next message within `wait`.
    pub async fn recv(&mut self, wait: Duration) -> Recv {
        match tokio::time::timeout(wait, self.read_packet()).await {
            Err(_) => Recv::Silence,
            Ok(None) => Recv::Closed,
            Ok(Some(m)) => Recv::Message(m),
        }
    }

    async fn read_packet(&mut self) -> Option<Vec<u8>> {
        if self.closed {
            return None;
        }
        while self.buffer.len() < 4 {
            if !self.fill().await {
                return None;
            }
        }
        let length = u32::from_be_bytes(self.buffer[..4].try_into().ok()?) as usize;
        assert!(length < 1024 * 1024, "a packet of {length} bytes from the server");
        let tag = if self.recv_keys.is_some() { 16 } else { 0 };
        while self.buffer.len() < 4 + length + tag {
            if !self.fill().await {
                return None;
            }
        }
        let header: [u8; 4] = self.buffer[..4].try_into().ok()?;
        let mut body: Vec<u8> = self.buffer.drain(..4 + length + tag).skip(4).collect();
        let plain: &[u8] = match self.recv_keys.as_mut() {
            None => &body,
            Some(keys) => {
                let nonce = keys.next_nonce();
                keys.key.open_in_place(nonce, Aad::from(header), &mut body).expect("a packet that does not decrypt")
            }
        };
        let padding = *plain.first()? as usize;
        Some(plain.get(1..plain.len().checked_sub(padding)?)?.to_vec())
    }

    /// Every message within `wait` (less as soon as the connection closes), skipping
    /// `IGNORE` and `DEBUG`. The bool says whether the connection was closed.
    pub async fn drain(&mut self, wait: Duration) -> (Vec<Vec<u8>>, bool) {
        let until = tokio::time::Instant::now() + wait;
        let mut got = Vec::new();
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return (got, false);
            }
            match self.recv(left).await {
                Recv::Message(m) if matches!(m[0], msg::IGNORE | msg::DEBUG) => {}
                Recv::Message(m) => got.push(m),
                Recv::Silence => return (got, false),
                Recv::Closed => return (got, true),
            }
        }
    }

    /// The server's answer to an authentication request, skipping banners and noise.
    pub async fn auth_reply(&mut self, wait: Duration) -> Auth {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            let m = match self.recv(left).await {
                Recv::Silence => return Auth::Silence,
                Recv::Closed => return Auth::Closed,
                Recv::Message(m) => m,
            };
            let mut f = Fields::of(&m);
            match m[0] {
                msg::USERAUTH_SUCCESS => return Auth::Success,
                msg::USERAUTH_FAILURE => {
                    let methods = f.text().unwrap_or_default();
                    return Auth::Failure { methods, partial: f.bool().unwrap_or(false) };
                }
                msg::USERAUTH_INFO_REQUEST => {
                    let _name = f.text();
                    let instruction = f.text().unwrap_or_default();
                    let _language = f.text();
                    let mut prompts = Vec::new();
                    for _ in 0..f.u32().unwrap_or(0) {
                        let Some(prompt) = f.text() else { break };
                        let _echo = f.bool();
                        prompts.push(prompt);
                    }
                    return Auth::Info { instruction, prompts };
                }
                msg::DISCONNECT => return Auth::Closed,
                _ => continue,
            }
        }
    }

    /// `password` for `user` (any bytes).
    pub async fn password(&mut self, user: &[u8], password: &[u8]) -> Auth {
        let m = Msg::new(msg::USERAUTH_REQUEST)
            .string(user)
            .string("ssh-connection")
            .string("password")
            .bool(false)
            .string(password);
        if self.send(&m).await.is_err() {
            return Auth::Closed;
        }
        self.auth_reply(Duration::from_secs(30)).await
    }

    /// Starts keyboard-interactive for `user`.
    pub async fn kbd_start(&mut self, user: &[u8]) -> Auth {
        let m = Msg::new(msg::USERAUTH_REQUEST)
            .string(user)
            .string("ssh-connection")
            .string("keyboard-interactive")
            .string("")
            .string("");
        if self.send(&m).await.is_err() {
            return Auth::Closed;
        }
        self.auth_reply(Duration::from_secs(30)).await
    }

    /// Answers a keyboard-interactive round with `answers` (any bytes, any number).
    pub async fn kbd_answer(&mut self, answers: &[&[u8]]) -> Auth {
        let mut m = Msg::new(msg::USERAUTH_INFO_RESPONSE).u32(answers.len() as u32);
        for a in answers {
            m = m.string(a);
        }
        if self.send(&m).await.is_err() {
            return Auth::Closed;
        }
        self.auth_reply(Duration::from_secs(60)).await
    }

    /// Opens a session channel (sender id `id`) and runs `command` on it; returns what
    /// came back on stdout and the exit status, or `None` when the channel or the request
    /// was refused. For a connection that is logged in.
    pub async fn exec(&mut self, id: u32, command: &str) -> Option<(String, Option<u32>)> {
        self.send(&Msg::channel_open("session", id, Msg::fields())).await.ok()?;
        let remote = loop {
            match self.recv(Duration::from_secs(30)).await {
                Recv::Message(m) if m[0] == msg::CHANNEL_OPEN_CONFIRMATION => {
                    let mut f = Fields::of(&m);
                    if f.u32()? == id {
                        break f.u32()?;
                    }
                }
                Recv::Message(m) if m[0] == msg::CHANNEL_OPEN_FAILURE => return None,
                Recv::Message(_) => {}
                _ => return None,
            }
        };
        self.send(&Msg::channel_request(remote, "exec", Msg::fields().string(command))).await.ok()?;
        let mut out = Vec::new();
        let mut status = None;
        let mut confirmed = false;
        loop {
            let m = match self.recv(Duration::from_secs(60)).await {
                Recv::Message(m) => m,
                _ => return None,
            };
            let mut f = Fields::of(&m);
            if f.u32() != Some(id) {
                continue;
            }
            match m[0] {
                msg::CHANNEL_SUCCESS => confirmed = true,
                msg::CHANNEL_FAILURE => return None,
                msg::CHANNEL_DATA => out.extend_from_slice(f.string().unwrap_or_default()),
                msg::CHANNEL_REQUEST if f.text().as_deref() == Some("exit-status") => {
                    let _want_reply = f.bool();
                    status = f.u32();
                }
                msg::CHANNEL_CLOSE => break,
                _ => {}
            }
        }
        let _ = self.send(&Msg::new(msg::CHANNEL_CLOSE).u32(remote)).await;
        confirmed.then(|| (String::from_utf8_lossy(&out).into_owned(), status))
    }
}

/// `K` as an SSH `mpint`: big-endian, no leading zeros, a zero byte first when the high
/// bit is set; with its length.
fn mpint(k: &[u8]) -> Vec<u8> {
    let start = k.iter().position(|&b| b != 0).unwrap_or(k.len());
    let mut v = Vec::new();
    if k.get(start).is_some_and(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend_from_slice(&k[start..]);
    let mut out = (v.len() as u32).to_be_bytes().to_vec();
    out.extend(v);
    out
}
