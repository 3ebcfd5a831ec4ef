//! A RADIUS client over UDP: one Access-Request, tried on each configured server in order,
//! retransmitted on silence, answered only by a response that passes every check.

use std::time::Duration;

use rand::Rng;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::packet::{self, PacketError, Request, RequestFields, Response};
use crate::config::RadiusConfig;

/// The server's answer to an Access-Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Reject,
    /// Another round: show `message` and send `state` back with the next answer.
    Challenge {
        message: String,
        state: Vec<u8>,
    },
}

/// Why no server gave an answer. The caller refuses the login in every case.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no RADIUS server is configured")]
    NotConfigured,
    #[error("the request could not be built: {0}")]
    Request(#[from] PacketError),
    #[error("no RADIUS server answered ({0})")]
    NoAnswer(String),
}

/// Sends one Access-Request (PAP) and waits for its verified answer.
pub async fn authenticate(
    config: &RadiusConfig,
    user_name: &str,
    password: &[u8],
    state: Option<&[u8]>,
) -> Result<Answer, ClientError> {
    if config.servers.is_empty() || config.secret.is_empty() {
        return Err(ClientError::NotConfigured);
    }
    let secret = config.secret.as_bytes();
    let mut authenticator = [0u8; 16];
    rand::rng().fill_bytes(&mut authenticator);
    let identifier = (rand::rng().next_u32() & 0xff) as u8;
    let fields = RequestFields { user_name, password, nas_identifier: &config.nas_identifier, state };
    let request = packet::access_request(fields, secret, identifier, authenticator)?;
    let timeout = Duration::from_secs(config.timeout_secs.max(1));

    let mut problems = Vec::new();
    for server in &config.servers {
        match ask_server(server, &request, secret, timeout, config.retries).await {
            Ok(response) => return Ok(interpret(&response)),
            Err(why) => {
                tracing::warn!(server = %server, reason = %why, "RADIUS server gave no usable answer");
                problems.push(format!("{server}: {why}"));
            }
        }
    }
    Err(ClientError::NoAnswer(problems.join("; ")))
}

fn interpret(response: &Response) -> Answer {
    match response.code {
        packet::ACCESS_ACCEPT => Answer::Accept,
        packet::ACCESS_CHALLENGE => Answer::Challenge {
            message: response.reply_message(),
            state: response.get(packet::STATE).unwrap_or_default().to_vec(),
        },
        // Access-Reject, and (unreachable after the check) anything else.
        _ => Answer::Reject,
    }
}

/// One server: send, wait `timeout` for a valid answer, resend up to `retries` times.
/// Packets that fail the checks are dropped (they may be forged) and the wait goes on.
async fn ask_server(
    server: &str,
    request: &Request,
    secret: &[u8],
    timeout: Duration,
    retries: u32,
) -> Result<Response, String> {
    let addr = tokio::net::lookup_host(server)
        .await
        .map_err(|e| format!("cannot resolve: {e}"))?
        .next()
        .ok_or_else(|| "cannot resolve".to_string())?;
    let local = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let socket = UdpSocket::bind(local).await.map_err(|e| format!("cannot bind: {e}"))?;
    socket.connect(addr).await.map_err(|e| format!("cannot connect: {e}"))?;
    let mut buf = vec![0u8; packet::MAX_PACKET];
    let mut last = "timed out".to_string();
    for _ in 0..=retries {
        socket.send(&request.bytes).await.map_err(|e| format!("cannot send: {e}"))?;
        let deadline = Instant::now() + timeout;
        loop {
            let received = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_) => break,
                // ICMP port unreachable shows up as a receive error on a connected socket.
                Ok(Err(e)) => {
                    last = format!("receive failed: {e}");
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
                Ok(Ok(n)) => n,
            };
            match packet::check_response(&buf[..received], request, secret, true) {
                Ok(response) => return Ok(response),
                Err(e) => {
                    tracing::warn!(server = %server, reason = %e, "dropped a RADIUS response");
                    last = format!("invalid response: {e}");
                }
            }
        }
    }
    Err(last)
}
