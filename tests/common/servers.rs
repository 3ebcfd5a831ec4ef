//! What every throwaway server the harness starts needs from the host: a free port on
//! loopback to listen on, and its log read back. On their own, so that a harness module
//! included by another crate's tests (`#[path]`) brings these two and nothing else.

use std::net::TcpListener;
use std::path::Path;

/// A TCP port on 127.0.0.1 that was free a moment ago. Another process may take it before
/// we bind it again; `Gw::start` and `Sshd::start` retry with new ports when that happens.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    listener.local_addr().expect("local address of a bound listener").port()
}

/// Reads `path` as text, or "" when it does not exist.
pub fn read_or_empty(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
