//! The one end-to-end harness: every test in `tests/` drives the real `gatehouse` binary,
//! the real OpenSSH client and real sshd targets through these helpers, so each test reads
//! like a user story.
//!
//! # Layout
//!
//! - [`process`]: child processes with deadlines, output as text.
//! - [`postgres`]: which database backends to run against, fresh PostgreSQL databases.
//! - [`servers`]: free loopback ports and log files, for every server below.
//! - [`keys`]: [`ClientKey`], ed25519 key pairs from `ssh-keygen`.
//! - [`gateway`]: [`Gw`], a gateway in a temp dir (config, CLI, `serve`, log).
//! - [`master`]: [`Master`], a real OpenSSH connection held open in the background.
//! - [`ssh`]: [`Ssh`], the OpenSSH client answering prompts through a logging askpass.
//! - [`raw`]: [`raw::RawClient`], an SSH client (russh's) that does what OpenSSH will not:
//!   any user name, any keyboard-interactive answers, logins held at a prompt.
//! - [`wire`]: [`wire::Wire`], an SSH client at the level of single messages, for what no
//!   client library sends: channels before the login, oversized or malformed answers.
//! - [`sk`]: [`sk::SoftSk`], a software FIDO security key (ed25519 and P-256) that signs
//!   public-key requests as OpenSSH's security keys do, with chosen flags and counters.
//! - [`sshd`]: [`Sshd`], a throwaway OpenSSH server to use as a target.
//! - [`radius`]: [`Radius`], a throwaway FreeRADIUS server for the RADIUS factor.
//! - [`ldap`]: [`Slapd`], a throwaway OpenLDAP server (StartTLS and ldaps with a throwaway
//!   CA, memberOf, ppolicy locks, openssh-lpk keys, AD-shaped accounts) for directory
//!   accounts.
//! - [`samba`]: [`SambaDc`], a throwaway Samba Active Directory domain controller on a
//!   loopback address of its own, for nested groups resolved by the server.
//! - [`certs`]: throwaway CAs and server certificates (`openssl`) for the directory servers.
//! - [`duo`]: [`Duo`], a loopback stand-in for Duo's Auth API that checks signatures as Duo
//!   does, for the Duo factor.
//! - [`smtp`]: [`SmtpSink`], an SMTP server on loopback that keeps the mails it gets;
//!   [`links`] opens the links of its mails and presses the buttons they lead to.
//! - [`s3`]: [`S3Server`], a throwaway S3-compatible store (moto) that checks request
//!   signatures, for recordings moved to a bucket.
//! - [`totp`]: TOTP codes from `oathtool`, an implementation independent of the one under
//!   test.
//! - [`yubico`]: [`ValidationServer`], a loopback stand-in for YubiCloud, and
//!   [`SoftYubiKey`], OTPs with the real Yubico layout, for the YubiKey factor.
//!
//! Every helper works when tests run in parallel (each in its own process under nextest,
//! or as threads under `cargo test`): ports come from the kernel, files from temp dirs.

#![allow(dead_code, unused_imports)]

pub mod certs;
pub mod duo;
pub mod gateway;
pub mod keys;
pub mod ldap;
pub mod links;
pub mod master;
pub mod postgres;
pub mod process;
pub mod radius;
pub mod raw;
pub mod s3;
pub mod samba;
pub mod servers;
pub mod sk;
pub mod smtp;
pub mod ssh;
pub mod sshd;
pub mod totp;
pub mod wire;
pub mod yubico;

use std::path::PathBuf;

pub use duo::Duo;
pub use gateway::Gw;
pub use keys::ClientKey;
pub use ldap::Slapd;
pub use master::Master;
pub use postgres::{Backend, backends, fresh_postgres_url};
pub use process::{describe, random_suffix, run_with_timeout, stderr, stdout};
pub use radius::Radius;
pub use s3::S3Server;
pub use samba::SambaDc;
pub use servers::{free_port, read_or_empty};
pub use smtp::SmtpSink;
pub use ssh::Ssh;
pub use sshd::Sshd;
pub use totp::{TotpDevice, totp_at, totp_now};
pub use yubico::{SoftYubiKey, ValidationServer};

/// The `gatehouse` binary cargo built for this test run.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gatehouse"))
}
