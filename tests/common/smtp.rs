//! [`SmtpSink`]: an SMTP server on loopback that accepts every mail and keeps it for the
//! test to read, the stand-in for a mail relay (which cannot be reached from here). It
//! speaks plain RFC 5321 (EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP,
//! QUIT), so the gateway's real SMTP client code is what the tests exercise.
//!
//! ```ignore
//! let smtp = SmtpSink::start();
//! let gw = Gw::with_config(backend, &smtp.config());
//! let mail = smtp.wait_for("alice@example.com", 1);
//! let code = mail.code();
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One mail as the sink received it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The DATA section, headers and body, CRLF line ends, dot-unstuffed.
    pub data: String,
}

impl Mail {
    /// The value of header `name` (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut out: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = out.as_mut() {
                    v.push_str(line.trim_start());
                }
                continue;
            }
            if out.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                out = Some(v.trim().to_string());
            }
        }
        out
    }

    /// The body as text: quoted-printable and base64 transfer encodings undone.
    pub fn body(&self) -> String {
        let raw = self.data.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        match self.header("Content-Transfer-Encoding").map(|e| e.to_ascii_lowercase()).as_deref() {
            Some("quoted-printable") => decode_qp(raw),
            Some("base64") => {
                use base64::Engine;
                let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
                let bytes = base64::engine::general_purpose::STANDARD.decode(compact).expect("a base64 body");
                String::from_utf8(bytes).expect("a UTF-8 body")
            }
            _ => raw.to_string(),
        }
    }

    /// The first run of exactly six digits in the body (a mailed code).
    pub fn code(&self) -> String {
        let body = self.body();
        let re = regex::Regex::new(r"(?m)\b(\d{6})\b").unwrap();
        re.captures(&body).map(|c| c[1].to_string()).unwrap_or_else(|| panic!("no code in the mail:\n{body}"))
    }

    /// The first `http(s)://…/authorize/…` link in the body.
    pub fn authorize_link(&self) -> String {
        let body = self.body();
        let re = regex::Regex::new(r"https?://\S+/authorize/[0-9a-f]+").unwrap();
        re.find(&body)
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| panic!("no Authorize link in the mail:\n{body}"))
    }
}

fn decode_qp(s: &str) -> String {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes[i + 1..].starts_with(b"\r\n") => i += 3,
            b'=' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'=');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The SMTP stand-in. Stops when dropped.
pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    stop: Arc<AtomicBool>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the SMTP sink");
        let port = listener.local_addr().expect("the sink's address").port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (mails.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Acquire) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let m = m.clone();
                std::thread::spawn(move || {
                    let _ = session(conn, &m);
                });
            }
        });
        SmtpSink { port, mails, stop }
    }

    /// An `[email]` config table that sends through this sink (no TLS: loopback only).
    pub fn config(&self) -> String {
        format!(
            "[email]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\ntls = \"none\"\nfrom = \"Gatehouse <gatehouse@test.invalid>\"\ntimeout_secs = 5\n",
            self.port
        )
    }

    /// Every mail so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// Mails so far to `to`.
    pub fn mails_to(&self, to: &str) -> Vec<Mail> {
        self.mails().into_iter().filter(|m| m.to.iter().any(|t| t == to)).collect()
    }

    /// Waits (up to 30 s) until `count` mails went to `to` and returns the last of them.
    pub fn wait_for(&self, to: &str, count: usize) -> Mail {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.mails_to(to);
            if got.len() >= count {
                return got[count - 1].clone();
            }
            assert!(Instant::now() < until, "mail #{count} to {to} never came; the sink has {:?}", self.mails());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops accepting connections (the relay is down).
    pub fn shut_down(&self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop so it sees the flag and drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port)).map(|s| s.shutdown(Shutdown::Both));
        let until = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn session(conn: TcpStream, mails: &Mutex<Vec<Mail>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = conn.try_clone()?;
    let mut lines = BufReader::new(conn);
    out.write_all(b"220 sink.test ESMTP ready\r\n")?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end();
        let upper = cmd.to_ascii_uppercase();
        let verb = upper.split(' ').next().unwrap_or("");
        match verb {
            "EHLO" => out.write_all(b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")?,
            "HELO" => out.write_all(b"250 sink.test\r\n")?,
            "MAIL" => {
                from = angle(cmd);
                to.clear();
                out.write_all(b"250 OK\r\n")?;
            }
            "RCPT" => {
                to.push(angle(cmd));
                out.write_all(b"250 OK\r\n")?;
            }
            "DATA" => {
                if to.is_empty() {
                    out.write_all(b"503 RCPT first\r\n")?;
                    continue;
                }
                out.write_all(b"354 go ahead\r\n")?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    let l = line.strip_prefix('.').unwrap_or(&line);
                    data.push_str(l);
                }
                mails.lock().unwrap().push(Mail { from: from.clone(), to: to.clone(), data });
                out.write_all(b"250 queued\r\n")?;
            }
            "RSET" => {
                from.clear();
                to.clear();
                out.write_all(b"250 OK\r\n")?;
            }
            "NOOP" => out.write_all(b"250 OK\r\n")?,
            "QUIT" => {
                out.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => out.write_all(b"502 not implemented\r\n")?,
        }
    }
}

/// The address between angle brackets of `MAIL FROM:<a@b>` / `RCPT TO:<a@b>`.
fn angle(cmd: &str) -> String {
    match (cmd.find('<'), cmd.find('>')) {
        (Some(a), Some(b)) if b > a => cmd[a + 1..b].to_string(),
        _ => String::new(),
    }
}
