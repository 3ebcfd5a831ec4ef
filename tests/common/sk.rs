//! [`SoftSk`], a software FIDO security key as OpenSSH uses one (`sk-ssh-ed25519@openssh.com`,
//! `sk-ecdsa-sha2-nistp256@openssh.com`): a fresh key pair made with `ring`, an application
//! string, and signatures laid out as OpenSSH's PROTOCOL.u2f says, over
//! sha256(application) || flags || counter (u32, big-endian) || sha256(message), with the
//! flags and the counter the test chooses. [`SoftSk::sign_in`] sends the signed public-key
//! request on a [`Wire`] connection (its session id is what the message starts with).

use std::time::Duration;

use base64::Engine;
use ring::digest::{SHA256, digest};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};

use super::wire::{Auth, Msg, Wire, msg};

/// User presence: the key was touched.
pub const UP: u8 = 0x01;
/// User verification: the key checked its PIN.
pub const UV: u8 = 0x04;

enum Pair {
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair),
}

/// A software security key.
pub struct SoftSk {
    pair: Pair,
    /// The application the public key names (OpenSSH: `ssh:`).
    pub application: String,
}

fn string(v: &[u8]) -> Vec<u8> {
    let mut out = (v.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(v);
    out
}

/// `k` as an SSH `mpint` with its length.
fn mpint(k: &[u8]) -> Vec<u8> {
    let start = k.iter().position(|&b| b != 0).unwrap_or(k.len());
    let mut v = Vec::new();
    if k.get(start).is_some_and(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend_from_slice(&k[start..]);
    string(&v)
}

impl SoftSk {
    /// A new `sk-ssh-ed25519@openssh.com` key for `application`.
    pub fn ed25519(application: &str) -> SoftSk {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("ed25519 key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("ed25519 key");
        SoftSk { pair: Pair::Ed25519(pair), application: application.to_string() }
    }

    /// A new `sk-ecdsa-sha2-nistp256@openssh.com` key for `application`.
    pub fn ecdsa(application: &str) -> SoftSk {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("p256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("p256 key");
        SoftSk { pair: Pair::Ecdsa(pair), application: application.to_string() }
    }

    /// The key type's name.
    pub fn algorithm(&self) -> &'static str {
        match self.pair {
            Pair::Ed25519(_) => "sk-ssh-ed25519@openssh.com",
            Pair::Ecdsa(_) => "sk-ecdsa-sha2-nistp256@openssh.com",
        }
    }

    /// The public key blob (wire encoding).
    pub fn blob(&self) -> Vec<u8> {
        let mut out = string(self.algorithm().as_bytes());
        match &self.pair {
            Pair::Ed25519(p) => out.extend(string(p.public_key().as_ref())),
            Pair::Ecdsa(p) => {
                out.extend(string(b"nistp256"));
                out.extend(string(p.public_key().as_ref()));
            }
        }
        out.extend(string(self.application.as_bytes()));
        out
    }

    /// The OpenSSH public key line, as in a `.pub` file.
    pub fn line(&self, comment: &str) -> String {
        format!("{} {} {comment}", self.algorithm(), base64::engine::general_purpose::STANDARD.encode(self.blob()))
    }

    /// The signature blob over `message` with `flags` and `counter`, the application
    /// hash taken of `application` (the key's own, unless a test signs for another).
    pub fn signature(&self, message: &[u8], flags: u8, counter: u32, application: &str) -> Vec<u8> {
        let mut signed = digest(&SHA256, application.as_bytes()).as_ref().to_vec();
        signed.push(flags);
        signed.extend_from_slice(&counter.to_be_bytes());
        signed.extend_from_slice(digest(&SHA256, message).as_ref());
        let mut out = string(self.algorithm().as_bytes());
        match &self.pair {
            Pair::Ed25519(p) => out.extend(string(p.sign(&signed).as_ref())),
            Pair::Ecdsa(p) => {
                let sig = p.sign(&SystemRandom::new(), &signed).expect("p256 signature");
                let (r, s) = sig.as_ref().split_at(32);
                let mut inner = mpint(r);
                inner.extend(mpint(s));
                out.extend(string(&inner));
            }
        }
        out.push(flags);
        out.extend_from_slice(&counter.to_be_bytes());
        out
    }

    /// Sends a signed `publickey` request for `user` on `wire` with this key, `flags`
    /// and `counter`, and returns the server's answer.
    pub async fn sign_in(&self, wire: &mut Wire, user: &str, flags: u8, counter: u32) -> Auth {
        let application = self.application.clone();
        self.sign_in_for(wire, user, flags, counter, &application).await
    }

    /// [`SoftSk::sign_in`] with the application hash of `application`.
    pub async fn sign_in_for(&self, wire: &mut Wire, user: &str, flags: u8, counter: u32, application: &str) -> Auth {
        let request = Msg::new(msg::USERAUTH_REQUEST)
            .string(user)
            .string("ssh-connection")
            .string("publickey")
            .bool(true)
            .string(self.algorithm())
            .string(self.blob());
        let mut message = string(wire.session_id());
        message.extend_from_slice(&request.0);
        let signed = request.string(self.signature(&message, flags, counter, application));
        if wire.send(&signed).await.is_err() {
            return Auth::Closed;
        }
        wire.auth_reply(Duration::from_secs(30)).await
    }
}
