//! A loopback stand-in for YubiCloud, and YubiKeys made of software, for the `yubikey`
//! second factor.
//!
//! [`ValidationServer`] speaks Yubico's validation protocol 2.0 over plain HTTP on
//! 127.0.0.1, as a self-hosted `yubikey-val` would: it checks the request's `h` signature
//! (BAD_SIGNATURE otherwise), decrypts the OTP with the AES key of the key it belongs to,
//! checks its CRC and private id (BAD_OTP otherwise), keeps the last (usage, session)
//! counter pair per key (REPLAYED_OTP for one not greater) and the requests it has seen
//! (REPLAYED_REQUEST), and answers `key=value` lines signed with HMAC-SHA1 over every
//! field, echoing `otp` and `nonce`. Switches make it sign with a wrong key, forget what
//! it saw, or stop (the service down).
//!
//! [`SoftYubiKey`] types OTPs with the real Yubico OTP layout: a 16-byte token (private
//! id, usage counter, timestamp, session counter, random, CRC-16/ISO 13239), encrypted as
//! one AES-128 block, in modhex after the public id.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes::Aes128;
use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::random_suffix;

const MODHEX: &[u8; 16] = b"cbdefghijklnrtuv";
/// What the CRC-16 of a whole token (its CRC included) must be.
const CRC_RESIDUE: u16 = 0xf0b8;

/// Modhex of `bytes`, high nibble first.
pub fn modhex(bytes: &[u8]) -> String {
    bytes.iter().flat_map(|b| [MODHEX[usize::from(b >> 4)] as char, MODHEX[usize::from(b & 15)] as char]).collect()
}

/// The bytes of a modhex string, if it is one.
pub fn from_modhex(text: &str) -> Option<Vec<u8>> {
    let nibbles: Option<Vec<u8>> = text.bytes().map(|c| MODHEX.iter().position(|&m| m == c).map(|p| p as u8)).collect();
    let nibbles = nibbles?;
    if nibbles.len() % 2 != 0 {
        return None;
    }
    Some(nibbles.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

/// CRC-16 as YubiKeys compute it (ISO 13239: init 0xffff, reflected polynomial 0x8408).
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xffff;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            let carry = crc & 1;
            crc >>= 1;
            if carry != 0 {
                crc ^= 0x8408;
            }
        }
    }
    crc
}

/// `n` pseudo-random bytes (tests need unpredictable, not cryptographic, values).
fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < n {
        let hex = random_suffix();
        out.extend((0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)));
    }
    out.truncate(n);
    out
}

/// A YubiKey in software: a public id, a secret private id and AES key, and the counters a
/// real key keeps (the usage counter goes up at each plug-in, the session counter at each
/// touch).
#[derive(Clone)]
pub struct SoftYubiKey {
    pub public_id: String,
    private_id: [u8; 6],
    aes_key: [u8; 16],
    usage: u16,
    session: u8,
    timestamp: u32,
}

impl SoftYubiKey {
    /// A new key with a random 12-character public id (starting `cc`, as Yubico's own do).
    pub fn new() -> SoftYubiKey {
        let id = random_bytes(6);
        let mut public_id = modhex(&id);
        public_id.replace_range(..2, "cc");
        let mut private_id = [0u8; 6];
        private_id.copy_from_slice(&random_bytes(6));
        let mut aes_key = [0u8; 16];
        aes_key.copy_from_slice(&random_bytes(16));
        let t = random_bytes(3);
        SoftYubiKey {
            public_id,
            private_id,
            aes_key,
            usage: 1,
            session: 0,
            timestamp: u32::from_le_bytes([t[0], t[1], t[2], 0]),
        }
    }

    /// The next OTP, as a touch of the key types it.
    pub fn otp(&mut self) -> String {
        if self.session == 0xff {
            self.replug();
        }
        let token = self.token(self.usage, self.session);
        self.session += 1;
        self.timestamp = (self.timestamp + 8) & 0x00ff_ffff;
        self.encrypt(token)
    }

    /// Plugs the key in again: a new usage counter, the session counter from 0.
    pub fn replug(&mut self) {
        self.usage += 1;
        self.session = 0;
    }

    /// An OTP with the key's real layout but `usage` and `session` chosen (for replays of
    /// old counter values).
    pub fn otp_with_counters(&self, usage: u16, session: u8) -> String {
        self.encrypt(self.token(usage, session))
    }

    fn token(&self, usage: u16, session: u8) -> [u8; 16] {
        let mut t = [0u8; 16];
        t[..6].copy_from_slice(&self.private_id);
        t[6..8].copy_from_slice(&usage.to_le_bytes());
        t[8..11].copy_from_slice(&self.timestamp.to_le_bytes()[..3]);
        t[11] = session;
        t[12..14].copy_from_slice(&random_bytes(2));
        let crc = !crc16(&t[..14]);
        t[14..].copy_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(crc16(&t), CRC_RESIDUE);
        t
    }

    fn encrypt(&self, token: [u8; 16]) -> String {
        let cipher = Aes128::new(&Array::from(self.aes_key));
        let mut block = Array::from(token);
        cipher.encrypt_block(&mut block);
        format!("{}{}", self.public_id, modhex(&block))
    }
}

impl Default for SoftYubiKey {
    fn default() -> Self {
        SoftYubiKey::new()
    }
}

/// What the stand-in knows of a key: its secrets and the last counters it accepted.
struct KnownKey {
    private_id: [u8; 6],
    aes_key: [u8; 16],
    last: Option<(u16, u8)>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, KnownKey>,
    /// (otp, nonce) pairs already answered.
    seen: HashSet<(String, String)>,
    /// The status of every answer, in order.
    answered: Vec<String>,
    /// Whether each request carried an `h`.
    signed_requests: Vec<bool>,
}

/// A running stand-in validation server; dropping it stops it.
pub struct ValidationServer {
    pub port: u16,
    client_id: String,
    api_key: Vec<u8>,
    state: Arc<Mutex<State>>,
    wrong_signature: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ValidationServer {
    /// The client id the gateway must use.
    pub const CLIENT_ID: &'static str = "4711";

    /// Starts a server on a free port of 127.0.0.1 with a fresh API key.
    pub fn start() -> ValidationServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0 for the validation server");
        let port = listener.local_addr().expect("local address of a bound listener").port();
        let state = Arc::new(Mutex::new(State::default()));
        let wrong_signature = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        let api_key = random_bytes(20);
        let shared = Shared {
            client_id: Self::CLIENT_ID.to_string(),
            api_key: api_key.clone(),
            state: state.clone(),
            wrong_signature: wrong_signature.clone(),
        };
        let stop = stopped.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || shared.serve(stream));
            }
        });
        ValidationServer {
            port,
            client_id: Self::CLIENT_ID.to_string(),
            api_key,
            state,
            wrong_signature,
            stopped,
            thread: Some(thread),
        }
    }

    /// The verify URL, as `[yubikey] api_urls` takes it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/wsapi/2.0/verify", self.port)
    }

    /// The API key, base64, as `GATEHOUSE_YUBIKEY__SECRET_KEY` takes it.
    pub fn secret_key(&self) -> String {
        STANDARD.encode(&self.api_key)
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Makes `key`'s OTPs known to the server (as a key registered at YubiCloud).
    pub fn register(&self, key: &SoftYubiKey) {
        self.lock()
            .keys
            .insert(key.public_id.clone(), KnownKey { private_id: key.private_id, aes_key: key.aes_key, last: None });
    }

    /// From now on, sign answers with a wrong key (a forged or misconfigured server).
    pub fn sign_with_wrong_key(&self, on: bool) {
        self.wrong_signature.store(on, Ordering::SeqCst);
    }

    /// Forgets every counter and request seen (a server restored from an old backup).
    pub fn forget(&self) {
        let mut state = self.lock();
        state.seen.clear();
        for key in state.keys.values_mut() {
            key.last = None;
        }
    }

    /// The status of every answer so far, in order.
    pub fn answered(&self) -> Vec<String> {
        self.lock().answered.clone()
    }

    /// Whether every request so far carried an `h` signature.
    pub fn all_requests_signed(&self) -> bool {
        self.lock().signed_requests.iter().all(|s| *s)
    }

    /// Stops listening: from now on connections are refused (the service is down).
    pub fn stop(&mut self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the accept loop so that it sees the flag and drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for ValidationServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a connection's thread needs.
#[derive(Clone)]
struct Shared {
    client_id: String,
    api_key: Vec<u8>,
    state: Arc<Mutex<State>>,
    wrong_signature: Arc<AtomicBool>,
}

impl Shared {
    /// One HTTP/1.1 exchange: read the request head, answer, close.
    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = BufReader::new(match stream.try_clone() {
            Ok(s) => s,
            Err(_) => return,
        });
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        loop {
            let mut header = String::new();
            match reader.read_line(&mut header) {
                Ok(0) | Err(_) => break,
                Ok(_) if header.trim().is_empty() => break,
                Ok(_) => {}
            }
        }
        let mut parts = request_line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let (status, body) = if method != "GET" || path != "/wsapi/2.0/verify" {
            ("404 Not Found", "not found\n".to_string())
        } else {
            ("200 OK", self.verify(&parse_query(query)))
        };
        let mut stream = stream;
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.flush();
    }

    /// The answer to one verify request, as `key=value` lines.
    fn verify(&self, params: &BTreeMap<String, String>) -> String {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.signed_requests.push(params.contains_key("h"));
        let otp = params.get("otp").cloned().unwrap_or_default();
        let nonce = params.get("nonce").cloned().unwrap_or_default();
        let mut extra = vec![("otp", otp.clone()), ("nonce", nonce.clone())];
        let status = self.status(&mut state, params, &otp, &nonce);
        if status == "OK" {
            extra.push(("sl", "100".to_string()));
        }
        state.answered.push(status.to_string());
        // yubikey-val signs an unknown client's answer with an empty key.
        let key: &[u8] = if status == "NO_SUCH_CLIENT" { b"" } else { &self.api_key };
        let key = if self.wrong_signature.load(Ordering::SeqCst) { b"not the api key".as_slice() } else { key };
        let mut fields: BTreeMap<&str, String> = extra.into_iter().collect();
        fields.insert("status", status.to_string());
        fields.insert("t", timestamp());
        let h = sign(key, fields.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let mut out = format!("h={h}\r\n");
        for (k, v) in &fields {
            out.push_str(&format!("{k}={v}\r\n"));
        }
        out + "\r\n"
    }

    fn status(&self, state: &mut State, params: &BTreeMap<String, String>, otp: &str, nonce: &str) -> &'static str {
        let Some(id) = params.get("id") else { return "MISSING_PARAMETER" };
        if otp.is_empty() || nonce.is_empty() {
            return "MISSING_PARAMETER";
        }
        if *id != self.client_id {
            return "NO_SUCH_CLIENT";
        }
        if let Some(h) = params.get("h") {
            let rest = params.iter().filter(|(k, _)| k.as_str() != "h").map(|(k, v)| (k.clone(), v.clone()));
            if sign(&self.api_key, rest) != *h {
                return "BAD_SIGNATURE";
            }
        }
        if !(16..=40).contains(&nonce.len()) || !nonce.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return "MISSING_PARAMETER";
        }
        if !(32..=48).contains(&otp.len()) {
            return "BAD_OTP";
        }
        let (public_id, encrypted) = otp.split_at(otp.len() - 32);
        let Some(key) = state.keys.get_mut(public_id) else { return "BAD_OTP" };
        let Some(block) = from_modhex(encrypted) else { return "BAD_OTP" };
        let cipher = Aes128::new(&Array::from(key.aes_key));
        let mut block: Array<u8, _> = Array::try_from(block.as_slice()).expect("16 bytes from 32 modhex characters");
        cipher.decrypt_block(&mut block);
        let token: &[u8] = block.as_slice();
        if crc16(token) != CRC_RESIDUE || token[..6] != key.private_id {
            return "BAD_OTP";
        }
        if !state.seen.insert((otp.to_string(), nonce.to_string())) {
            return "REPLAYED_REQUEST";
        }
        let counters = (u16::from_le_bytes([token[6], token[7]]), token[11]);
        if key.last.is_some_and(|last| counters <= last) {
            return "REPLAYED_OTP";
        }
        key.last = Some(counters);
        "OK"
    }
}

/// base64(HMAC-SHA1(key, "k=v&…")) over `fields` sorted by key.
fn sign(key: &[u8], fields: impl Iterator<Item = (String, String)>) -> String {
    let sorted: BTreeMap<String, String> = fields.collect();
    let text: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut mac = <Hmac<Sha1> as hmac::KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(text.join("&").as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The query's parameters, percent-decoded.
fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        match (bytes[i], escaped) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The answer's `t`: UTC time as `YYYY-MM-DDTHH:MM:SSZ` followed by milliseconds
/// (`2024-05-06T07:08:09Z0123`), as the protocol documents it.
fn timestamp() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z0{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}
